"""Hypothesis, experiment and learning reads, scoped to the user's workspaces."""


from __future__ import annotations

from django.db.models import QuerySet

from accounts.selectors import filter_given, workspaces_for
from experiments.models import Experiment, Hypothesis, Learning


def hypotheses_for(user: object) -> QuerySet[Hypothesis]:
    return Hypothesis.objects.filter(workspace__in=workspaces_for(user)).select_related(
        "workspace", "owner").prefetch_related("segments")


def experiments_for(user: object) -> QuerySet[Experiment]:
    return Experiment.objects.filter(workspace__in=workspaces_for(user)).select_related(
        "workspace", "hypothesis", "segment", "dataset").prefetch_related("breakdown_segments")


def learnings_for(user: object, *, query: str = "", segment: int | None = None,
                  outcome: str = "", since: object = None,
                  until: object = None) -> QuerySet[Learning]:
    """The learnings library: failures listed as prominently as successes (newest first)."""
    qs = Learning.objects.filter(workspace__in=workspaces_for(user)).select_related(
        "workspace", "hypothesis", "experiment", "created_by").prefetch_related("segments")
    if query:
        from django.db.models import Q

        qs = qs.filter(Q(hypothesis__statement__icontains=query) | Q(happened__icontains=query)
                       | Q(now_believe__icontains=query) | Q(decision__icontains=query)
                       | Q(believed__icontains=query) | Q(tags__icontains=query))
    qs = filter_given(qs, segments=segment, outcome=outcome, created_at__gte=since,
                      created_at__lt=until)
    return qs.distinct().order_by("-created_at", "-id")
