"""Planner reads, scoped to the user's workspaces; the ranked backlog."""

from __future__ import annotations

from django.db.models import Case, ExpressionWrapper, F, FloatField, QuerySet, Value, When

from accounts.selectors import workspaces_for

from .models import Decision, Investment, OptimizationRun, Scenario, ValueModel

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
        .select_related("workspace", "owner", "value_model")
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


def scenarios_for(user: object) -> QuerySet[Scenario]:
    return Scenario.objects.filter(workspace__in=workspaces_for(user)).select_related("workspace")


def runs_for(user: object) -> QuerySet[OptimizationRun]:
    return OptimizationRun.objects.filter(workspace__in=workspaces_for(user)).select_related(
        "scenario", "workspace", "job")


def decisions_for(user: object) -> QuerySet[Decision]:
    return Decision.objects.filter(workspace__in=workspaces_for(user)).select_related(
        "investment", "decided_by", "run")




def value_models_for(user: object) -> QuerySet[ValueModel]:
    return ValueModel.objects.filter(workspace__in=workspaces_for(user)).select_related(
        "workspace", "segment")
