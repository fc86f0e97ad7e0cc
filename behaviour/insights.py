"""Saved insights: a behaviour analysis's inputs pinned to the workspace dashboard, re-read
on the dataset's newest version (when the dashboard is read, and by a job after each import)."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Max

from accounts.models import Workspace
from behaviour import services as bs
from behaviour.models import BehaviourAnalysis, SavedInsight
from events.models import Dataset
from jobs.services import Job, job_create, job_handler, job_progress

log = logging.getLogger(__name__)


def _next_position(workspace: Workspace) -> int:
    top = SavedInsight.objects.filter(workspace=workspace).aggregate(m=Max("position"))["m"]
    return 0 if top is None else top + 1


def _name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise bs.AnalysisInvalid("name", "give the insight a name")
    if len(name) > 200:
        raise bs.AnalysisInvalid("name", "at most 200 characters")
    return name


def insight_save(*, analysis: BehaviourAnalysis, name: str,
                 user: object | None = None) -> SavedInsight:
    """Pin an analysis (its kind and inputs) to its workspace's dashboard, last."""
    return SavedInsight.objects.create(
        workspace=analysis.workspace, dataset=analysis.dataset, name=_name(name),
        kind=analysis.kind, params=analysis.params, analysis=analysis,
        position=_next_position(analysis.workspace),
        created_by=user if getattr(user, "is_authenticated", False) else None)


def insight_create(*, workspace: Workspace, dataset: Dataset, name: str, kind: str,
                   params: dict[str, Any], user: object | None = None) -> SavedInsight:
    """An insight from its inputs (the API): checked as an analysis, started, pinned last."""
    if dataset.workspace_id != workspace.pk:
        raise bs.AnalysisInvalid("dataset", f"{dataset.pk} is not in this workspace")
    analysis = bs.analysis_start(dataset=dataset, kind=kind, params=params, user=user)
    return insight_save(analysis=analysis, name=name, user=user)


def insight_rename(*, insight: SavedInsight, name: str) -> SavedInsight:
    insight.name = _name(name)
    insight.save(update_fields=["name"])
    return insight


def insight_move(*, insight: SavedInsight, offset: int) -> None:
    """Move an insight up (-1) or down (+1) on its dashboard."""
    ids = list(SavedInsight.objects.filter(workspace_id=insight.workspace_id)
               .order_by("position", "id").values_list("pk", flat=True))
    insight_place(insight=insight, index=ids.index(insight.pk) + offset)


def insight_place(*, insight: SavedInsight, index: int) -> None:
    """Put an insight at ``index`` (0 = first, clipped to the list) on its dashboard; the
    positions are renumbered 0..n-1."""
    with transaction.atomic():
        rows = list(SavedInsight.objects.select_for_update()
                    .filter(workspace_id=insight.workspace_id).order_by("position", "id"))
        i = [r.pk for r in rows].index(insight.pk)
        j = max(0, min(len(rows) - 1, int(index)))
        rows.insert(j, rows.pop(i))
        for pos, row in enumerate(rows):
            if row.position != pos:
                SavedInsight.objects.filter(pk=row.pk).update(position=pos)
    insight.refresh_from_db(fields=["position"])


def insight_delete(*, insight: SavedInsight) -> None:
    insight.delete()


@dataclass
class InsightState:
    """What the dashboard shows: the result (possibly of an older version) and whether a
    newer one is being computed."""

    insight: SavedInsight
    shown: BehaviourAnalysis | None
    updating_to: int | None = None  # the dataset version being computed
    error: str = ""
    behind: int | None = None  # a newer version nobody is computing yet (a viewer's read)


def _input_key(dataset: Dataset, kind: str, clean: dict[str, Any]) -> str:
    # The same key as ``analysis_start`` (the cache of one input on one version).
    return hashlib.sha256(json.dumps([dataset.pk, dataset.version, kind, clean],
                                     sort_keys=True).encode()).hexdigest()


def _reread_key(dataset: Dataset) -> str:
    """The input hash of the ``insights`` job that re-reads a dataset's insights on its version."""
    return hashlib.sha256(f"insights:{dataset.pk}:{dataset.version}".encode()).hexdigest()


def insight_current(insight: SavedInsight, *, start: bool = True) -> InsightState:
    """The insight on its dataset's current version: adopt a finished result, else queue the
    analysis (once: a failed run is reported, not retried on every read). ``start=False`` (a
    viewer's read) queues nothing: "updating" only when a job is already on its way (the
    analysis's own, or the re-read the import queued), else ``behind`` names the newer
    version."""
    dataset = Dataset.objects.get(pk=insight.dataset_id)
    shown = insight.analysis
    if shown is not None and shown.dataset_version >= dataset.version and shown.result:
        return InsightState(insight, shown)
    if dataset.version == 0:
        return InsightState(insight, shown, error="the dataset has no events")
    try:
        clean = bs.clean_params(dataset, insight.kind, insight.params)
    except bs.AnalysisInvalid as exc:
        return InsightState(insight, shown, error=f"{exc.field}: {exc.message} (on "
                                                  f"v{dataset.version})")
    latest = (BehaviourAnalysis.objects.filter(dataset=dataset,
                                               input_hash=_input_key(dataset, insight.kind, clean))
              .select_related("job").order_by("-id").first())
    if latest is not None and latest.job is not None and latest.job.state == "failed":
        return InsightState(insight, shown, updating_to=None,
                            error=f"v{dataset.version} failed: {latest.job.error}")
    if latest is None and not start:
        queued = Job.objects.filter(workspace_id=insight.workspace_id, kind="insights",
                                    input_hash=_reread_key(dataset),
                                    state__in=["queued", "running"]).exists()
        return InsightState(insight, shown, updating_to=dataset.version if queued else None,
                            behind=None if queued else dataset.version)
    if latest is None:
        latest = bs.analysis_start(dataset=dataset, kind=insight.kind, params=insight.params)
        latest.refresh_from_db()  # a job run at once (no worker, tests) has stored its result
    if latest.result:
        SavedInsight.objects.filter(pk=insight.pk).update(analysis=latest)
        insight.analysis = latest
        return InsightState(insight, latest)
    return InsightState(insight, shown, updating_to=dataset.version)


def insights_for(workspace: Workspace, *, start: bool = True) -> list[InsightState]:
    """Every insight of the workspace in dashboard order, each on its dataset's newest version
    (``start=False``: a viewer's read, which queues no compute)."""
    rows = SavedInsight.objects.filter(workspace=workspace).select_related(
        "analysis", "analysis__job", "dataset").order_by("position", "id")
    return [insight_current(row, start=start) for row in rows]


# ----- after an import: re-read the dataset's insights, as a job ---------------------------------
def insights_after_import(dataset_id: int, **kwargs: Any) -> None:
    """Queue the re-read of a dataset's saved insights (a receiver of
    ``events.signals.import_succeeded``; idempotent per version)."""
    dataset = Dataset.objects.filter(pk=dataset_id).select_related("workspace").first()
    if dataset is None or not SavedInsight.objects.filter(dataset=dataset).exists():
        return
    job_create(workspace=dataset.workspace, kind="insights",
               params={"dataset_id": dataset.pk, "version": dataset.version},
               input_hash=_reread_key(dataset))


@job_handler("insights")
def insights_refresh(job: Job) -> dict[str, Any]:
    """Start (or adopt) each saved insight's analysis on the dataset's current version."""
    rows = list(SavedInsight.objects.filter(dataset_id=job.params["dataset_id"])
                .select_related("analysis").order_by("position", "id"))
    states = []
    for i, row in enumerate(rows):
        job_progress(job, int(100 * i / max(1, len(rows))), f"insight {row.name}")
        states.append(insight_current(row))
    return {"insights": len(rows),
            "current": sum(1 for s in states if s.updating_to is None and not s.error),
            "queued": sum(1 for s in states if s.updating_to is not None),
            "errors": [f"{s.insight.name}: {s.error}" for s in states if s.error]}


def register() -> None:
    """Hook the re-read into import completion (from the app's ``ready()``)."""
    from events.signals import import_succeeded

    import_succeeded.connect(insights_after_import, dispatch_uid="behaviour-insights-reread")

