"""Reads, always scoped to the requesting user's workspaces."""

from __future__ import annotations

from django.db.models import OuterRef, Prefetch, QuerySet, Subquery

from accounts.selectors import workspaces_for
from events.models import Dataset, Import, ImportStatus

from .analytics.freshness import Freshness, freshness
from .models import Refresh, Segment, SegmentSnapshot


def segments_for(user: object) -> QuerySet[Segment]:
    """Segments in the user's workspaces, each with its latest snapshot prefetched (only that
    one: a Subquery picks it, so the page does not load every snapshot ever taken)."""
    newest = (SegmentSnapshot.objects.filter(segment=OuterRef("segment"))
              .order_by("-computed_at", "-id").values("pk")[:1])
    latest = Prefetch("snapshots", queryset=SegmentSnapshot.objects.filter(pk=Subquery(newest))
                      .select_related("refresh"), to_attr="_snapshots")
    qs = Segment.objects.filter(workspace__in=workspaces_for(user)).select_related(
        "workspace", "owner", "dataset").prefetch_related(latest).order_by("name", "id")
    return qs


def latest_snapshot(segment: Segment) -> SegmentSnapshot | None:
    snaps = getattr(segment, "_snapshots", None)
    if snaps is not None:
        return snaps[0] if snaps else None
    return segment.snapshots.order_by("-computed_at", "-id").first()


def refreshes_for(user: object) -> QuerySet[Refresh]:
    return Refresh.objects.filter(workspace__in=workspaces_for(user)).order_by("-created_at", "-id")


def snapshots_for(user: object) -> QuerySet[SegmentSnapshot]:
    return SegmentSnapshot.objects.filter(workspace__in=workspaces_for(user)).select_related(
        "segment", "segment__dataset", "refresh").order_by("-computed_at", "-id")


def users_at_version(dataset: Dataset, version: int) -> int | None:
    """The dataset's user count when ``version`` was published (from that import's report)."""
    report = (Import.objects.filter(dataset=dataset, dataset_version=version,
                                    status=ImportStatus.SUCCEEDED)
              .order_by("-id").values_list("report", flat=True).first())
    users = ((report or {}).get("summary") or {}).get("total_users")
    return int(users) if users is not None else None


def result_freshness(*, dataset: Dataset, dataset_version: int,
                     memo: dict[tuple[int, int], int | None] | None = None) -> Freshness:
    """Whether a result computed on ``dataset_version`` still matches the dataset: the one
    staleness rule every page and payload uses (snapshots, analyses). ``memo``: users per
    (dataset, version) shared across a list's rows, so the queries do not grow with the rows."""
    current = freshness(dataset_version=dataset_version, current_version=dataset.version)
    if not current.stale:
        return current
    key = (dataset.pk, dataset_version)
    if memo is not None and key in memo:
        users_then = memo[key]
    else:
        users_then = users_at_version(dataset, dataset_version)
        if memo is not None:
            memo[key] = users_then
    return freshness(dataset_version=dataset_version, current_version=dataset.version,
                     users_then=users_then, users_now=dataset.total_users)


def snapshot_freshness(snapshot: SegmentSnapshot, dataset: Dataset | None = None,
                       memo: dict[tuple[int, int], int | None] | None = None) -> Freshness:
    """A snapshot's freshness against its segment's dataset (``memo``: users per (dataset,
    version) shared across a page's rows, so the queries do not grow with the rows)."""
    dataset = dataset or snapshot.segment.dataset
    current = freshness(dataset_version=snapshot.dataset_version,
                        current_version=dataset.version)
    if not current.stale:  # nothing to count: no query
        return current
    key = (dataset.pk, snapshot.dataset_version)
    if memo is not None and key in memo:
        users_then = memo[key]
    else:
        users_then = users_at_version(dataset, snapshot.dataset_version)
        if users_then is None:  # no import record (an erasure's version): the refresh's count
            users_then = (snapshot.refresh.summary or {}).get("users")
        if memo is not None:
            memo[key] = users_then
    return freshness(dataset_version=snapshot.dataset_version, current_version=dataset.version,
                     users_then=users_then, users_now=dataset.total_users)


def stale_notes(workspace: object) -> list[dict[str, object]]:
    """Per dataset of the workspace whose segments' latest snapshots are on an older version:
    the dataset and the freshness of its oldest latest snapshot (pages put these up top)."""
    newest = (SegmentSnapshot.objects.filter(segment=OuterRef("pk"))
              .order_by("-computed_at", "-id").values("dataset_version")[:1])
    oldest: dict[int, int] = {}
    for dataset_id, version in (Segment.objects.filter(workspace=workspace, archived=False)
                                .annotate(v=Subquery(newest)).values_list("dataset_id", "v")):
        if version is not None:
            oldest[dataset_id] = min(version, oldest.get(dataset_id, version))
    notes = []
    for dataset in Dataset.objects.filter(pk__in=oldest).order_by("name"):
        fr = result_freshness(dataset=dataset, dataset_version=oldest[dataset.pk])
        if fr.stale:
            notes.append({"dataset": dataset, "freshness": fr})
    return notes
