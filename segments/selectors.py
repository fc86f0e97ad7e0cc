"""Reads, always scoped to the requesting user's workspaces."""

from __future__ import annotations

from django.db.models import OuterRef, Prefetch, QuerySet, Subquery

from accounts.selectors import workspaces_for

from .models import Refresh, Segment, SegmentSnapshot


def segments_for(user: object) -> QuerySet[Segment]:
    """Segments in the user's workspaces, each with its latest snapshot prefetched (only that
    one: a Subquery picks it, so the page does not load every snapshot ever taken)."""
    newest = (SegmentSnapshot.objects.filter(segment=OuterRef("segment"))
              .order_by("-computed_at", "-id").values("pk")[:1])
    latest = Prefetch("snapshots", queryset=SegmentSnapshot.objects.filter(pk=Subquery(newest)),
                      to_attr="_snapshots")
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
        "segment").order_by("-computed_at", "-id")
