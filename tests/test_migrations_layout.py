"""Rows survive the app restructure: fill every model at the old layout, migrate, compare.

The planned restructure moves models between apps with SeparateDatabaseAndState (the tables are
kept, then renamed with AlterModelTable) and renames their content types. This test runs the
real migrations on the test database:

1. migrate back to OLD_NODES (the layout before the move; contrib apps stay at their leaves,
   apps that only exist after the move are unapplied),
2. fill one row of every model of the project's apps through the historical models of that
   state (FK targets first; every FK, nullable or not, and every M2M points at a filled row),
3. migrate forward to the latest leaves and check, through the new state's models, that every
   row is there under its new (app, model) with the same field values, FK targets and M2M sets,
   and that the content type rows of moved models carry the new app label.

Until the move lands, MOVED names apps that are not installed: the lookup falls back to the old
(app, model) and the forward migration is a no-op. test_checker_reports_loss makes sure the
checker is not vacuous.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from django.apps import apps as installed_apps
from django.core.exceptions import ObjectDoesNotExist
from django.db import connection, models
from django.db.migrations.executor import MigrationExecutor

Key = tuple[str, str]  # (app_label, model_name), lower case
Problem = tuple[str, str, str]  # (kind, "app.model", detail)

# Old (app_label, model_name) -> new (app_label, model_name). Models not listed keep their place.
MOVED: dict[Key, Key] = {
    ("segments", "workspace"): ("accounts", "workspace"),
    ("segments", "membership"): ("accounts", "membership"),
    ("segments", "apitoken"): ("accounts", "apitoken"),
    ("segments", "job"): ("jobs", "job"),
    ("segments", "dataset"): ("events", "dataset"),
    ("segments", "import"): ("events", "import"),
    ("segments", "erasure"): ("events", "erasure"),
    ("segments", "behaviouranalysis"): ("behaviour", "behaviouranalysis"),
    ("planner", "hypothesis"): ("experiments", "hypothesis"),
    ("planner", "hypothesisstatuschange"): ("experiments", "hypothesisstatuschange"),
    ("planner", "experiment"): ("experiments", "experiment"),
    ("planner", "armsummary"): ("experiments", "armsummary"),
    ("planner", "learning"): ("experiments", "learning"),
}

# The layout before the move: the project's leaf migrations today.
OLD_NODES: list[Key] = [
    ("segments", "0003_privacy"),
    ("planner", "0003_backlog_version_indexes"),
    ("audit", "0001_initial"),
    ("integrations", "0001_initial"),
]

OLD_APPS = {app for app, _ in OLD_NODES}
NEW_APPS = {app for app, _ in MOVED.values()} - OLD_APPS
PROJECT_APPS = OLD_APPS | NEW_APPS

pytestmark = pytest.mark.django_db(transaction=True)

BASE_TIME = dt.datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)


def _key(model: type[models.Model]) -> Key:
    return (model._meta.app_label, model._meta.model_name)


def _label(key: Key) -> str:
    return f"{key[0]}.{key[1]}"


# --- migrating -------------------------------------------------------------------------------


def _old_targets(executor: MigrationExecutor) -> tuple[list[Key], list[tuple[str, str | None]]]:
    """(nodes of the old layout, migrate targets reaching it).

    The project's apps go to OLD_NODES, other apps (contrib) stay at their leaves, apps that only
    exist after the move are unapplied entirely.
    """
    graph = executor.loader.graph
    missing = [n for n in OLD_NODES if n not in graph.nodes]
    assert not missing, f"old nodes not in the migration graph (squashed?): {missing}"
    leaves = graph.leaf_nodes()
    others = [n for n in leaves if n[0] not in PROJECT_APPS]
    old_closure = {m for n in OLD_NODES for m in graph.forwards_plan(n)}
    for leaf in others:
        ahead = [m for m in graph.forwards_plan(leaf)
                 if m[0] in PROJECT_APPS and m not in old_closure]
        assert not ahead, f"{leaf} depends on migrations after the old layout: {ahead}"
    unapply = sorted({app for app, _ in leaves if app in NEW_APPS})
    nodes = OLD_NODES + others
    return nodes, [*nodes, *((app, None) for app in unapply)]


def _migrate_to_latest() -> list[Key]:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    leaves = executor.loader.graph.leaf_nodes()
    executor.migrate(leaves)
    return leaves


def _roundtrip(mutate: Callable[[Any, dict], None] | None = None) -> tuple[dict, list[Problem]]:
    """Old layout -> fill -> (mutate) -> latest; returns (records, problems)."""
    try:
        executor = MigrationExecutor(connection)
        old_nodes, targets = _old_targets(executor)
        executor.migrate(targets)
        executor.loader.build_graph()
        old_apps = executor.loader.project_state(old_nodes).apps
        records = fill_all(old_apps)
        if mutate is not None:
            mutate(old_apps, records)

        leaves = _migrate_to_latest()
        executor = MigrationExecutor(connection)
        new_apps = executor.loader.project_state(leaves).apps
        return records, check_all(records, new_apps, MOVED)
    finally:
        # Leave the schema as the rest of the suite expects it, whatever happened above.
        _migrate_to_latest()


# --- filling ---------------------------------------------------------------------------------


def _text(model: type[models.Model], field: models.Field, ordinal: int, max_length: int | None,
          slug: bool = False) -> str:
    sep = "-" if slug else " "
    base = f"{model._meta.model_name}{sep}{field.name}{sep}"
    if not slug:
        base += "é✓ "  # non-ASCII survives too
    suffix = f"{ordinal}"
    if max_length is not None:
        base = base[: max(0, max_length - len(suffix))]
    return (base + suffix).replace("_", "-") if slug else base + suffix


def _domain(model: type[models.Model], field: models.Field) -> tuple[float, float] | None:
    """The (min, max) range of today's field (the model where the row ends up), from its
    validators; None when it has none."""
    key = MOVED.get(_key(model), _key(model))
    try:
        current = installed_apps.get_model(*key)._meta.get_field(field.name)
    except LookupError:
        return None
    limits = {type(v).__name__: v.limit_value for v in current.validators
              if type(v).__name__ in ("MinValueValidator", "MaxValueValidator")}
    if len(limits) < 2:
        return None
    return limits["MinValueValidator"], limits["MaxValueValidator"]


def value_for(model: type[models.Model], field: models.Field, index: int, ordinal: int) -> Any:
    """A valid, non-default value for a concrete non-relational field.

    Values differ per field (index) and per row (ordinal), so swapped columns or rows show.
    """
    max_length = getattr(field, "max_length", None)
    if field.choices:
        values = [v for v, _ in field.flatchoices if v not in ("", None)]
        default = field.get_default()
        preferred = [v for v in values if v != default] or values
        return preferred[(index + ordinal) % len(preferred)]
    if isinstance(field, models.BooleanField):
        return not field.get_default() if field.has_default() else True
    if isinstance(field, models.JSONField):
        payload = {"field": field.name, "n": ordinal, "items": [1, 2.5, "é ✓", None, True],
                   "nested": {"k": [index]}}
        return [payload] if field.default is list else payload
    if isinstance(field, models.UUIDField):
        return uuid.UUID(int=(index << 64) + ordinal + 1)
    if isinstance(field, models.DateTimeField):
        return BASE_TIME + dt.timedelta(days=index, seconds=ordinal)
    if isinstance(field, models.DateField):
        return BASE_TIME.date() + dt.timedelta(days=index + ordinal)
    if isinstance(field, models.TimeField):
        return dt.time(3, index % 60, ordinal % 60)
    if isinstance(field, models.DurationField):
        return dt.timedelta(hours=index, seconds=ordinal)
    if isinstance(field, models.DecimalField):
        whole = 10 ** max(0, min(6, field.max_digits - field.decimal_places) - 1)
        return decimal.Decimal(whole + index + ordinal).quantize(
            decimal.Decimal(1).scaleb(-field.decimal_places))
    domain = _domain(model, field)
    if isinstance(field, models.FloatField):
        if domain is not None:  # inside today's range (README "Number domains"), per field
            low, high = domain
            return low + (high - low) * (0.5 - 0.01 * (index % 40) - ordinal / 1000)
        return 1000.25 + index + ordinal / 8
    if isinstance(field, models.IntegerField):  # Small/Big/Positive* too
        low, high = connection.ops.integer_field_range(field.get_internal_type())
        if domain is not None and (domain[0] > (low or -2**63) or domain[1] < (high or 2**63)):
            # a field with a domain: near its top, so a clamp or a narrowing still shows
            return int(domain[1]) - index % 7 - ordinal
        return high - 7 - index - ordinal  # near the top: a narrowed column would show
    if isinstance(field, models.BinaryField):
        return bytes([0, 1, index % 256, ordinal % 256])
    if isinstance(field, models.GenericIPAddressField):
        return f"10.0.{index % 256}.{ordinal % 256}"
    if isinstance(field, models.EmailField):
        return f"{model._meta.model_name}.{field.name}.{ordinal}@example.com"
    if isinstance(field, models.URLField):
        return f"https://example.com/{model._meta.model_name}/{field.name}/{ordinal}"
    if isinstance(field, models.SlugField):
        return _text(model, field, ordinal, max_length, slug=True)
    if isinstance(field, models.CharField | models.TextField):
        return _text(model, field, ordinal, max_length)
    raise TypeError(f"no test value for {model._meta.label}.{field.name} "
                    f"({type(field).__name__}): teach value_for about it")


def _fill_order(state_apps: Any) -> list[type[models.Model]]:
    """Project models plus every model they point to, targets of non-null FKs first."""
    todo = [m for m in state_apps.get_models()
            if m._meta.app_label in PROJECT_APPS and not m._meta.proxy and m._meta.managed]
    chosen: dict[Key, type[models.Model]] = {}
    while todo:
        model = todo.pop()
        if _key(model) in chosen:
            continue
        chosen[_key(model)] = model
        todo.extend(f.related_model for f in model._meta.concrete_fields if f.is_relation)
    order: list[type[models.Model]] = []
    placed: set[Key] = set()
    pending = sorted(chosen.values(), key=lambda m: m._meta.label)
    while pending:
        ready = [m for m in pending
                 if all(_key(f.related_model) in placed or f.related_model is m
                        for f in m._meta.concrete_fields if f.is_relation and not f.null)]
        assert ready, f"non-null FK cycle among {[m._meta.label for m in pending]}"
        order.extend(ready)
        placed.update(_key(m) for m in ready)
        pending = [m for m in pending if _key(m) not in placed]
    return order


def _create_row(model: type[models.Model], ordinal: int, rows: dict[Key, models.Model]
                ) -> tuple[models.Model, list[models.Field]]:
    """A row with every field set; returns it and the nullable FKs still to point (targets
    created later, self-FKs)."""
    kwargs: dict[str, Any] = {}
    later: list[models.Field] = []
    for index, field in enumerate(model._meta.concrete_fields):
        if isinstance(field, models.AutoField):
            continue
        if not field.is_relation:
            kwargs[field.attname] = value_for(model, field, index, ordinal)
            continue
        target = rows.get(_key(field.related_model))
        if ordinal and field.unique:  # a second row cannot share a one-to-one target
            assert field.null, f"{model._meta.label}.{field.name}: unique non-null FK"
            kwargs[field.name] = None
        elif target is not None and field.related_model is not model:
            kwargs[field.name] = target
        else:
            assert field.null, f"{model._meta.label}.{field.name}: no target for non-null FK"
            later.append(field)
    return model._default_manager.create(**kwargs), later


def _point_later(obj: models.Model, fields: list[models.Field],
                 rows: dict[Key, models.Model]) -> None:
    for field in fields:  # a self-FK points at the row itself
        target = obj if field.related_model is type(obj) else rows[_key(field.related_model)]
        setattr(obj, field.name, target)
    if fields:
        obj.save(update_fields=[f.name for f in fields])


def fill_all(state_apps: Any) -> dict[Key, dict[Any, dict]]:
    """One row of every project model (plus FK targets such as auth.User), FKs and M2Ms set.

    Returns {(app, model): {pk: {"fields": {attname: value}, "fks": {name: ((app, model), pk)},
    "m2m": {name: ((app, model), {pk, ...})}, "content_type": id}}}, read back from the
    database after everything was written.
    """
    order = _fill_order(state_apps)
    rows: dict[Key, models.Model] = {}
    pending: list[tuple[models.Model, list[models.Field]]] = []
    for model in order:
        obj, later = _create_row(model, 0, rows)
        rows[_key(model)] = obj
        pending.append((obj, later))
    for obj, later in pending:  # nullable FKs to models created after them, self-FKs
        _point_later(obj, later, rows)

    extra: list[models.Model] = []
    for model in order:
        if model._meta.app_label not in PROJECT_APPS:
            continue  # auth.User's groups and permissions are not ours
        obj = rows[_key(model)]
        for field in model._meta.many_to_many:
            if not field.remote_field.through._meta.auto_created:
                continue  # an explicit through model (Membership) is filled as a model
            if field.related_model is model:
                # A self M2M (Investment.depends_on) points at a second row, so from/to
                # columns cannot swap unseen.
                target, later = _create_row(model, 1, rows)
                _point_later(target, later, rows)
                extra.append(target)
            else:
                target = rows[_key(field.related_model)]
            getattr(obj, field.name).add(target)

    content_type = state_apps.get_model("contenttypes", "ContentType")
    records: dict[Key, dict[Any, dict]] = {}
    for obj in [*rows.values(), *extra]:
        model = type(obj)
        fresh = model._base_manager.get(pk=obj.pk)
        ct, _ = content_type._default_manager.get_or_create(
            app_label=model._meta.app_label, model=model._meta.model_name)
        records.setdefault(_key(model), {})[obj.pk] = {
            "fields": {f.attname: getattr(fresh, f.attname) for f in model._meta.concrete_fields},
            "fks": {f.name: (_key(f.related_model), getattr(fresh, f.attname))
                    for f in model._meta.concrete_fields if f.is_relation},
            "m2m": {f.name: (_key(f.related_model),
                             set(getattr(fresh, f.name).values_list("pk", flat=True)))
                    for f in model._meta.many_to_many},
            "content_type": ct.pk,
        }
    return records


# --- checking --------------------------------------------------------------------------------


def _app_installed(label: str) -> bool:
    try:
        installed_apps.get_app_config(label)
    except LookupError:
        return False
    return True


def _in_state(state_apps: Any, key: Key) -> bool:
    try:
        state_apps.get_model(*key)
    except LookupError:
        return False
    return True


def resolve(key: Key, state_apps: Any, moved: dict[Key, Key]) -> Key:
    """Where an old model lives in the new state: its MOVED place once that app exists."""
    new = moved.get(key)
    if new is not None and _app_installed(new[0]) and _in_state(state_apps, new):
        return new
    return key


def check_all(records: dict[Key, dict[Any, dict]], state_apps: Any,
              moved: dict[Key, Key]) -> list[Problem]:
    problems: list[Problem] = []
    content_type = state_apps.get_model("contenttypes", "ContentType")
    for old_key, by_pk in sorted(records.items()):
        new_key = resolve(old_key, state_apps, moved)
        where = _label(new_key) if new_key == old_key else f"{_label(old_key)} -> {_label(new_key)}"
        try:
            model = state_apps.get_model(*new_key)
        except LookupError:
            problems.append(("model", where, "not in the new state"))
            continue
        by_attname = {f.attname: f for f in model._meta.concrete_fields}
        m2m_fields = {f.name: f for f in model._meta.many_to_many}
        for pk, record in sorted(by_pk.items()):
            obj = model._base_manager.filter(pk=pk).first()
            if obj is None:
                problems.append(("row", where, f"pk={pk} missing"))
                continue
            for attname, old_value in record["fields"].items():
                if attname not in by_attname:
                    problems.append(("field", where, f"pk={pk} {attname} gone"))
                elif (new_value := getattr(obj, attname)) != old_value:
                    problems.append(("value", where,
                                     f"pk={pk} {attname}: {old_value!r} -> {new_value!r}"))
            for name, (old_target, target_pk) in record["fks"].items():
                problems.extend(_check_fk(obj, name, old_target, target_pk, state_apps, moved,
                                          where))
            for name, (old_target, pks) in record["m2m"].items():
                field = m2m_fields.get(name)
                if field is None:
                    problems.append(("m2m", where, f"pk={pk} {name} gone"))
                    continue
                if _key(field.related_model) != resolve(old_target, state_apps, moved):
                    problems.append(("m2m", where, f"{name} now points at "
                                     f"{field.related_model._meta.label_lower}"))
                new_pks = set(getattr(obj, name).values_list("pk", flat=True))
                if new_pks != pks:
                    problems.append(("m2m", where, f"pk={pk} {name}: {pks} -> {new_pks}"))
        # The content type row keeps its id (permissions, admin log point at it) and, for a
        # moved model whose new app is installed, now names the new app.
        ct_id = next(iter(by_pk.values()))["content_type"]
        ct = content_type._default_manager.filter(pk=ct_id).values("app_label", "model").first()
        if ct is None:
            problems.append(("content_type", where, f"id={ct_id} missing"))
        elif (ct["app_label"], ct["model"]) != new_key:
            problems.append(("content_type", where,
                             f"id={ct_id} is {ct['app_label']}.{ct['model']}, "
                             f"expected {_label(new_key)}"))
    return problems


def _check_fk(obj: models.Model, name: str, old_target: Key, target_pk: Any, state_apps: Any,
              moved: dict[Key, Key], where: str) -> Iterable[Problem]:
    if target_pk is None:
        return
    try:
        target = getattr(obj, name)
    except (ObjectDoesNotExist, AttributeError) as exc:  # target row gone, field renamed
        yield ("fk", where, f"pk={obj.pk} {name}: {type(exc).__name__}: {exc}")
        return
    expected = resolve(old_target, state_apps, moved)
    if (_key(type(target)), target.pk) != (expected, target_pk):
        yield ("fk", where, f"pk={obj.pk} {name} -> {target._meta.label_lower} "
                            f"pk={target.pk}, expected {_label(expected)} pk={target_pk}")


# --- tests -----------------------------------------------------------------------------------


def _summary(records: dict[Key, dict[Any, dict]]) -> dict[str, Any]:
    project = {k: by_pk for k, by_pk in records.items() if k[0] in PROJECT_APPS}
    links = [(k, pk, name, pks) for k, by_pk in project.items() for pk, r in by_pk.items()
             for name, (_, pks) in r["m2m"].items()]
    return {
        "models": len(records),
        "project_models": len(project),
        "rows": sum(len(by_pk) for by_pk in records.values()),
        "m2m_fields": len({(k, name) for k, _, name, _ in links}),
        "m2m_links": sum(len(pks) for *_, pks in links),
        # the first row of each model fills every M2M (the second one is only a target)
        "unfilled_m2m": [(k, name) for k, pk, name, pks in links
                         if not pks and pk == min(project[k])],
        "null_fields": [(k, a) for k, by_pk in records.items() for pk, r in by_pk.items()
                        for a, v in r["fields"].items() if v is None and pk == min(by_pk)],
    }


def test_every_row_survives_the_restructure(transactional_db: None) -> None:
    records, problems = _roundtrip()

    summary = _summary(records)
    print(f"filled {summary}")
    assert set(MOVED) <= set(records), sorted(set(MOVED) - set(records))
    assert summary["project_models"] == len(records) - 1  # all of them, and auth.User
    assert ("auth", "user") in records
    assert summary["m2m_links"] and not summary["unfilled_m2m"], summary
    assert not summary["null_fields"], "fields left null are not tested"
    assert not problems, "\n".join(" | ".join(p) for p in problems)


def test_checker_reports_loss(transactional_db: None) -> None:
    """Damage done between fill and check is reported: the main test cannot pass vacuously."""

    def damage(old_apps: Any, records: dict[Key, dict[Any, dict]]) -> None:
        learning = old_apps.get_model("planner", "Learning")
        learning._base_manager.filter(pk__in=list(records["planner", "learning"])).delete()
        old_apps.get_model("segments", "Dataset")._base_manager.update(total_events=1)
        for inv in old_apps.get_model("planner", "Investment")._base_manager.all():
            inv.depends_on.clear()
        content_type = old_apps.get_model("contenttypes", "ContentType")
        ct_id = next(iter(records["audit", "auditentry"].values()))["content_type"]
        content_type._default_manager.filter(pk=ct_id).delete()

    _, problems = _roundtrip(damage)

    report = "\n".join(" | ".join(p) for p in problems)
    found = {(kind, where.split(" -> ")[0]) for kind, where, _ in problems}
    assert ("row", "planner.learning") in found, report
    assert ("value", "segments.dataset") in found, report
    assert any("total_events" in detail for _, _, detail in problems), report
    assert ("m2m", "planner.investment") in found, report
    assert ("content_type", "audit.auditentry") in found, report
    assert len(problems) == 4, report  # the untouched rows still check clean
