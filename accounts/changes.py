"""Per-workspace write counts (``WorkspaceVersion``) for the page caches' stamps.

``touch`` runs in the transaction of a write: saves and deletes through model signals (each
app connects its own models), queryset ``update()`` calls by hand. Only a save makes a
missing row (``create``): a delete may be part of deleting the workspace itself, whose rows
are gone by then and must not come back.
"""

from __future__ import annotations

from typing import Any

from django.db.models import F, Model, QuerySet

from .models import WorkspaceVersion


def bump(rows: QuerySet[Any], new: Model, *, create: bool) -> None:
    """Add one to the ``version`` of the counter row ``rows`` selects; when there is none,
    make it from ``new`` first, but only if ``create`` (see the module)."""
    if rows.update(version=F("version") + 1) or not create:
        return
    type(new)._default_manager.bulk_create([new], ignore_conflicts=True)
    rows.update(version=F("version") + 1)


def touch(workspace_id: int, topic: str, *, create: bool = False) -> None:
    """Count one more committed write on ``topic`` in the workspace."""
    bump(WorkspaceVersion.objects.filter(workspace_id=workspace_id, topic=topic),
         WorkspaceVersion(workspace_id=workspace_id, topic=topic), create=create)


def toucher(topic: str) -> Any:
    """A ``post_save`` / ``post_delete`` receiver counting writes of a model with a
    ``workspace_id`` on ``topic`` (only ``post_save`` passes ``created``)."""
    def receiver(sender: object, instance: Any, **kwargs: object) -> None:
        if kwargs.get("raw"):
            return  # rows loaded as they were (a restore, fixtures): their counts come along
        touch(instance.workspace_id, topic, create="created" in kwargs)
    return receiver
