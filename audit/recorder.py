"""Diffs of tracked models as JSON-safe dicts, written as AuditEntry rows."""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import math
import uuid
from collections.abc import Iterable
from typing import Any

from django.db import models, transaction

from . import context
from .models import Action, AuditEntry

# app_label.model -> fields that are computed elsewhere (and have their own history) or are
# bookkeeping: left out of the diff.
TRACKED: dict[str, frozenset[str]] = {
    "experiments.hypothesis": frozenset({"updated_at"}),
    "experiments.experiment": frozenset({"result", "analyzed_at", "design", "analysis_job",
                                     "updated_at"}),
    "planner.investment": frozenset({"expected_value", "value_low", "value_high",
                                     "value_sources", "reach_users", "effort_total",
                                     "value_computed_at", "updated_at", "changed_at",
                                     "rank"}),
    "planner.decision": frozenset(),
    "planner.roadmapversion": frozenset({"context"}),
    "segments.segment": frozenset({"updated_at"}),
}
# (model label, m2m field) pairs whose membership changes are recorded.
TRACKED_M2M = (("planner.investment", "target_segments"), ("planner.investment", "hypotheses"),
               ("planner.investment", "depends_on"), ("experiments.hypothesis", "segments"))


def label(model: type[models.Model] | models.Model) -> str:
    return model._meta.label_lower


def _quoted(text: object, limit: int = 80) -> str:
    text = " ".join(str(text).split())
    return f"'{text if len(text) <= limit else text[:limit - 1] + '…'}'"


def _decision(d: Any) -> str:
    try:
        title = _quoted(d.investment.title)
    except models.ObjectDoesNotExist:  # deleted with its investment
        title = f"investment #{d.investment_id}"
    where = (f" (v{d.version.number})" if d.version_id else
             f" (run #{d.run_id})" if d.run_id else "")
    return f"Decision: {d.verdict} {title}{where}"


# What the audit list names each tracked model by (the history says "Decision: approve
# 'Mobile checklist' (v2)", never "Decision object (1)"). Read by attribute: audit sits below
# planner and experiments and imports neither.
DESCRIBE: dict[str, Any] = {
    "experiments.hypothesis": lambda h: f"Hypothesis: {_quoted(h.statement)}",
    "experiments.experiment": lambda x: f"Experiment: {_quoted(x.name)}",
    "planner.investment": lambda i: f"Investment: {_quoted(i.title)}",
    "planner.decision": _decision,
    "planner.roadmapversion": lambda v: f"Roadmap version: v{v.number}",
    "segments.segment": lambda s: f"Segment: {_quoted(s.name)}",
}


def describe(instance: models.Model) -> str:
    """The readable label an audit row keeps for its object, written with the row."""
    build = DESCRIBE.get(label(instance))
    if build is not None:
        with contextlib.suppress(Exception):  # a label must never block the write it records
            return build(instance)[:200]
    return f"{instance._meta.verbose_name.capitalize()}: {instance}"[:200]


def tracked_fields(model: type[models.Model]) -> list[models.Field]:
    skip = TRACKED.get(label(model), frozenset())
    return [f for f in model._meta.concrete_fields
            if not f.primary_key and f.name not in skip and f.name != "workspace"]


def json_safe(value: Any) -> Any:
    """A value JSONField (and PostgreSQL's jsonb) can store: no NaN, datetimes as ISO text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [json_safe(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if isinstance(value, models.Model):
        return value.pk
    return str(value)


def _field_value(field: models.Field, value: Any) -> Any:
    if not isinstance(field, models.JSONField | models.ForeignKey):
        # an unparsable value is recorded as given
        with contextlib.suppress(Exception):
            value = field.to_python(value)
    return json_safe(value)


def snapshot(instance: models.Model, fields: Iterable[models.Field] | None = None
             ) -> dict[str, Any]:
    """The tracked fields of an instance: name -> JSON-safe value (foreign keys as ids)."""
    fields = tracked_fields(type(instance)) if fields is None else fields
    return {f.name: _field_value(f, getattr(instance, f.attname)) for f in fields}


def stored_snapshot(model: type[models.Model], pk: Any, fields: list[models.Field]
                    ) -> dict[str, Any] | None:
    row = model._base_manager.filter(pk=pk).values(*[f.attname for f in fields]).first()
    if row is None:
        return None
    return {f.name: _field_value(f, row[f.attname]) for f in fields}


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [k for k in after if before.get(k) != after[k]]


def write(*, workspace_id: int, action: str, obj: models.Model | None, model_label: str,
          object_id: Any, object_repr: str, before: dict[str, Any], after: dict[str, Any],
          changed: list[str], user: Any = None, use_context_user: bool = True) -> AuditEntry:
    """One entry, attributed to the current actor (or `user` when given)."""
    who = context.current()
    actor = user if user is not None else (who.user if use_context_user else None)
    actor_pk = getattr(actor, "pk", None)
    return AuditEntry.objects.create(
        workspace_id=workspace_id, actor_id=actor_pk,
        actor_name=(getattr(actor, "get_username", lambda: "")() if actor_pk else "")[:150],
        action=action, object_type=model_label, object_id=str(object_id),
        object_repr=object_repr[:200], before=before, after=after, changed_fields=changed,
        source=who.source, request_id=who.request_id[:64])


def record_bulk(queryset: Any, changes: dict[str, Any], actor: Any = None) -> int:
    """Apply the update and record, per row whose tracked fields change, a bulk_update entry."""
    model = queryset.model
    if label(model) not in TRACKED:
        return queryset.update(**changes)
    fields = [f for f in tracked_fields(model) if f.name in changes or f.attname in changes]
    with transaction.atomic():
        rows = list(queryset)
        count = queryset.update(**changes)
        for obj in rows:
            before = snapshot(obj, fields)
            for f in fields:
                setattr(obj, f.attname, changes.get(f.name, changes.get(f.attname)))
            after = snapshot(obj, fields)
            changed = diff(before, after)
            if changed:
                write(workspace_id=obj.workspace_id, action=Action.BULK_UPDATE, obj=obj,
                      model_label=label(model), object_id=obj.pk, object_repr=describe(obj),
                      before={k: before[k] for k in changed},
                      after={k: after[k] for k in changed}, changed=changed, user=actor)
    return count


def register_erasure_hook() -> None:
    """The history's before/after may hold an erased id (member lists; the erasure's own
    change too, so this hook runs last: audit is the last app)."""
    from events.privacy_services import ErasureHook
    from events.privacy_services import register_erasure_hook as register

    register(ErasureHook(scrub=lambda dataset, scrubber: scrubber.rows(
        AuditEntry.objects.filter(workspace=dataset.workspace), ("before", "after"),
        "audit_entries")))
