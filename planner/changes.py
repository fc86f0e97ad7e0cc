"""The investments' change feed: ``changed_at`` moves whenever anything the investment API
returns changes (an edit, a re-valuation triggered from anywhere, a decision's status, a
dependency removed with its item) and ``rank`` is kept, so the items whose place in the backlog
moved are in the feed too."""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from django.utils import timezone

from accounts.changes import bump

from .models import BacklogVersion, Investment


def backlog_touched(workspace_id: int, *, create: bool = False) -> None:
    """Count one more change to the workspace's investments (``BacklogVersion``). Called in
    the transaction of every write to them: a save or delete (a signal), and each bulk
    ``update()`` below and in ``planner.services``, which send none.

    The row is made with the workspace (``workspace_created``; migration 0013 for older
    ones). Only a save (``create``) makes a missing one: a delete may be part of deleting the
    workspace itself, whose row is already gone then and must not come back."""
    bump(BacklogVersion.objects.filter(workspace_id=workspace_id),
         BacklogVersion(workspace_id=workspace_id), create=create)


def investment_written(sender: object, instance: Investment, **kwargs: object) -> None:
    """``post_save`` / ``post_delete`` of an investment (only ``post_save`` has
    ``created``); not for rows loaded as they were (a restore, fixtures)."""
    if kwargs.get("raw"):
        return
    backlog_touched(instance.workspace_id, create="created" in kwargs)


def workspace_created(sender: object, instance: object, created: bool = False,
                      **kwargs: object) -> None:
    """``post_save`` of a workspace: its ``BacklogVersion`` row, at 0."""
    if created and not kwargs.get("raw"):
        BacklogVersion.objects.get_or_create(workspace_id=instance.pk)  # type: ignore[attr-defined]


def investments_rerank(*, workspace_id: int, now: datetime.datetime | None = None) -> list[int]:
    """Store each investment's place in its workspace's backlog (value per cost, best first,
    ties by id: the API's default order) and move the change time of every one whose place
    moved; the ids moved. Two queries and one bulk update of the moved rows."""
    now = now or timezone.now()
    rows = list(Investment.objects.filter(workspace_id=workspace_id).order_by()
                .values_list("pk", "expected_value", "cost", "rank"))
    # The database divides the same doubles (selectors.backlog's value_per_cost).
    rows.sort(key=lambda r: (-(r[1] / r[2]), r[0]))
    moved = [Investment(pk=pk, rank=place, changed_at=now)
             for place, (pk, _value, _cost, rank) in enumerate(rows, start=1) if rank != place]
    if moved:
        Investment.objects.bulk_update(moved, ["rank", "changed_at"], batch_size=500)
        backlog_touched(workspace_id)
    return [inv.pk for inv in moved]


def investments_changed(*, workspace_id: int, ids: Iterable[int], rerank: bool = True,
                        now: datetime.datetime | None = None) -> datetime.datetime:
    """Move the change time of these investments (and, with ``rerank``, of those whose rank
    moved as a result); the time written."""
    now = now or timezone.now()
    ids = list(ids)
    if ids:
        Investment.objects.filter(pk__in=ids).update(changed_at=now)
        backlog_touched(workspace_id)
    if rerank:
        investments_rerank(workspace_id=workspace_id, now=now)
    return now


def linked_deleted(sender: object, instance: object, **kwargs: object) -> None:
    """Before a hypothesis, segment or value model is deleted, move the change time of the
    investments that list it: their id lists (or value model) change without a save of theirs,
    and the change feed and the API list cache (``planner.api_cache``) follow ``changed_at``."""
    relation = {"Hypothesis": "hypotheses", "Segment": "target_segments",
                "ValueModel": "value_model"}.get(type(instance).__name__)
    if relation is None:
        return
    rows = list(Investment.objects.filter(**{relation: instance})
                .values_list("pk", "workspace_id"))
    if rows:
        Investment.objects.filter(pk__in=[pk for pk, _ws in rows]).update(
            changed_at=timezone.now())
        for workspace_id in sorted({ws for _pk, ws in rows}):
            backlog_touched(workspace_id)
