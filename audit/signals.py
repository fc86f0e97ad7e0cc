"""Signal receivers recording changes of the tracked models (see recorder.TRACKED).

QuerySet.update() sends no signals: user-driven bulk writes call audit.record_bulk instead.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db import models
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save

from . import recorder
from .models import Action


def _tracked(sender: Any) -> bool:
    return isinstance(sender, type) and recorder.label(sender) in recorder.TRACKED


def _before_save(sender: Any, instance: models.Model, raw: bool = False,
                 update_fields: Any = None, **kwargs: Any) -> None:
    if raw or not _tracked(sender) or instance._state.adding or instance.pk is None:
        instance._audit_before = None  # type: ignore[attr-defined]
        return
    fields = recorder.tracked_fields(sender)
    if update_fields is not None:
        fields = [f for f in fields if f.name in update_fields or f.attname in update_fields]
    instance._audit_fields = fields  # type: ignore[attr-defined]
    instance._audit_before = (  # type: ignore[attr-defined]
        recorder.stored_snapshot(sender, instance.pk, fields) if fields else {})


def _after_save(sender: Any, instance: models.Model, created: bool, raw: bool = False,
                **kwargs: Any) -> None:
    if raw or not _tracked(sender):
        return
    if created:
        after = recorder.snapshot(instance)
        recorder.write(workspace_id=instance.workspace_id, action=Action.CREATE, obj=instance,
                       model_label=recorder.label(sender), object_id=instance.pk,
                       object_repr=recorder.describe(instance), before={}, after=after,
                       changed=list(after))
        return
    before = getattr(instance, "_audit_before", None)
    if before is None:
        return
    after = recorder.snapshot(instance, instance._audit_fields)  # type: ignore[attr-defined]
    changed = recorder.diff(before, after)
    instance._audit_before = None  # type: ignore[attr-defined]
    if changed:
        recorder.write(workspace_id=instance.workspace_id, action=Action.UPDATE, obj=instance,
                       model_label=recorder.label(sender), object_id=instance.pk,
                       object_repr=recorder.describe(instance),
                       before={k: before.get(k) for k in changed},
                       after={k: after[k] for k in changed}, changed=changed)


def _after_delete(sender: Any, instance: models.Model, origin: Any = None,
                  **kwargs: Any) -> None:
    if not _tracked(sender):
        return
    # Deleting a whole workspace removes its history with it: nothing to record there.
    Workspace = apps.get_model("accounts", "Workspace")
    if isinstance(origin, Workspace) or getattr(origin, "model", None) is Workspace:
        return
    before = recorder.snapshot(instance)
    recorder.write(workspace_id=instance.workspace_id, action=Action.DELETE, obj=instance,
                   model_label=recorder.label(sender), object_id=instance.pk,
                   object_repr=recorder.describe(instance), before=before, after={},
                   changed=list(before))


def _m2m_receiver(owner: type[models.Model], field_name: str) -> Any:
    field = owner._meta.get_field(field_name)
    through = field.remote_field.through
    source, target = field.m2m_field_name(), field.m2m_reverse_field_name()

    def current(owner_pk: Any) -> list[Any]:
        return sorted(through.objects.filter(**{f"{source}_id": owner_pk})
                      .values_list(f"{target}_id", flat=True))

    def record(obj: models.Model, before: list[Any], after: list[Any], action: str) -> None:
        if before == after:
            return
        recorder.write(workspace_id=obj.workspace_id, action=action, obj=obj,
                       model_label=recorder.label(owner), object_id=obj.pk,
                       object_repr=recorder.describe(obj), before={field_name: before},
                       after={field_name: after}, changed=[field_name])

    def receiver(sender: Any, instance: models.Model, action: str, reverse: bool,
                 model: Any, pk_set: set[Any] | None, **kwargs: Any) -> None:
        if kwargs.get("raw"):  # a fixture or backup load restores links: not a change
            return
        if action == "pre_clear":
            if reverse:
                owners = list(through.objects.filter(**{f"{target}_id": instance.pk})
                              .values_list(f"{source}_id", flat=True))
                instance._audit_clear = {  # type: ignore[attr-defined]
                    pk: current(pk) for pk in owners}
            else:
                instance._audit_clear = current(instance.pk)  # type: ignore[attr-defined]
            return
        if action == "post_clear":
            saved = getattr(instance, "_audit_clear", None)
            if reverse and saved:
                for obj in owner._base_manager.filter(pk__in=list(saved)):
                    record(obj, saved[obj.pk], current(obj.pk), Action.UNLINK)
            elif not reverse and saved is not None:
                record(instance, saved, [], Action.UNLINK)
            return
        if action not in ("post_add", "post_remove") or not pk_set:
            return
        verb = Action.LINK if action == "post_add" else Action.UNLINK

        def before_of(after: list[Any], changed: set[Any]) -> list[Any]:
            return sorted(set(after) - changed) if verb == Action.LINK else sorted(
                set(after) | changed)

        if not reverse:
            after = current(instance.pk)
            record(instance, before_of(after, set(pk_set)), after, verb)
        else:
            for obj in owner._base_manager.filter(pk__in=pk_set):
                after = current(obj.pk)
                record(obj, before_of(after, {instance.pk}), after, verb)

    return through, receiver


_connected: list[Any] = []


def connect() -> None:
    """Connect the receivers (once; AppConfig.ready)."""
    if _connected:
        return
    for model_label in recorder.TRACKED:
        model = apps.get_model(model_label)
        uid = f"audit:{model_label}"
        pre_save.connect(_before_save, sender=model, dispatch_uid=uid)
        post_save.connect(_after_save, sender=model, dispatch_uid=uid)
        post_delete.connect(_after_delete, sender=model, dispatch_uid=uid)
    for model_label, field_name in recorder.TRACKED_M2M:
        through, receiver = _m2m_receiver(apps.get_model(model_label), field_name)
        m2m_changed.connect(receiver, sender=through, weak=False,
                            dispatch_uid=f"audit:{model_label}.{field_name}")
        _connected.append(receiver)
    _connected.append(True)
