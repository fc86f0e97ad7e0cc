"""Planner reads, scoped to the user's workspaces; the ranked backlog."""

from __future__ import annotations

from django.db.models import Case, ExpressionWrapper, F, FloatField, QuerySet, Value, When

from accounts.selectors import workspaces_for

from .models import (
    Decision,
    Experiment,
    Hypothesis,
    Investment,
    Learning,
    OptimizationRun,
    Scenario,
)

RANKINGS = {
    "value_per_cost": "risk-adjusted expected value per unit cost",
    "expected_value": "risk-adjusted expected value",
    "rice": "RICE: reach x impact x confidence / effort",
    "ice": "ICE: impact x confidence x ease",
}


def backlog(user: object) -> QuerySet[Investment]:
    """Investments with their ranking scores as annotations (one query, any size)."""
    # RICE divides by effort (team effort units); without any recorded effort it is undefined.
    effort = Case(When(effort_total__gt=0, then=F("effort_total")), default=Value(None),
                  output_field=FloatField())
    return (
        Investment.objects.filter(workspace__in=workspaces_for(user))
        .select_related("workspace", "owner")
        .prefetch_related("target_segments", "hypotheses")
        .annotate(
            value_per_cost=ExpressionWrapper(F("expected_value") / F("cost"),
                                             output_field=FloatField()),
            rice=ExpressionWrapper(
                F("reach_users") * F("impact") * F("confidence") / effort,
                output_field=FloatField()),
            ice=ExpressionWrapper(F("impact") * F("confidence") * F("ease"),
                                  output_field=FloatField()),
        )
    )


def hypotheses_for(user: object) -> QuerySet[Hypothesis]:
    return Hypothesis.objects.filter(workspace__in=workspaces_for(user)).select_related(
        "workspace", "owner").prefetch_related("segments")


def scenarios_for(user: object) -> QuerySet[Scenario]:
    return Scenario.objects.filter(workspace__in=workspaces_for(user)).select_related("workspace")


def runs_for(user: object) -> QuerySet[OptimizationRun]:
    return OptimizationRun.objects.filter(workspace__in=workspaces_for(user)).select_related(
        "scenario", "workspace", "job")


def decisions_for(user: object) -> QuerySet[Decision]:
    return Decision.objects.filter(workspace__in=workspaces_for(user)).select_related(
        "investment", "decided_by", "run")


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
    if segment:
        qs = qs.filter(segments=segment)
    if outcome:
        qs = qs.filter(outcome=outcome)
    if since:
        qs = qs.filter(created_at__gte=since)
    if until:
        qs = qs.filter(created_at__lt=until)
    return qs.distinct().order_by("-created_at", "-id")
