"""Pages for saved insights: the workspace dashboard, and saving from an analysis's page."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from accounts import selectors as ws_selectors
from behaviour import insights
from behaviour import services as bs
from behaviour.models import BehaviourAnalysis, SavedInsight


def _chart_data(state: insights.InsightState) -> dict[str, Any]:
    a = state.shown
    return {"id": state.insight.pk, "kind": state.insight.kind,
            "result": a.result if a is not None else {}}


@login_required
def insight_dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    if request.method == "POST":
        if not membership.can("define"):
            raise PermissionDenied
        insight = get_object_or_404(SavedInsight, workspace=workspace,
                                    pk=request.POST.get("insight"))
        action = request.POST.get("action", "")
        try:
            if action == "rename":
                insights.insight_rename(insight=insight, name=request.POST.get("name", ""))
                messages.success(request, f"Renamed to '{insight.name}'.")
            elif action in ("up", "down"):
                insights.insight_move(insight=insight, offset=-1 if action == "up" else 1)
            elif action == "remove":
                insights.insight_delete(insight=insight)
                messages.success(request, f"Removed '{insight.name}' from the dashboard.")
            else:
                messages.error(request, "action: must be rename, up, down or remove")
        except bs.AnalysisInvalid as exc:
            messages.error(request, f"{exc.field}: {exc.message}")
        return redirect("insights", slug=slug)
    states = insights.insights_for(workspace, start=membership.can("define"))
    return render(request, "behaviour/insights.html", {
        "workspace": workspace, "membership": membership, "states": states,
        "charts": [_chart_data(s) for s in states],
        "can_edit": membership.can("define"),
    })


@login_required
def insight_save_view(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """POST: pin the analysis ``pk`` (its kind and inputs) to the dashboard."""
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    analysis = get_object_or_404(BehaviourAnalysis, workspace=workspace, pk=pk)
    if request.method != "POST" or not membership.can("define"):
        raise PermissionDenied
    try:
        insight = insights.insight_save(analysis=analysis, name=request.POST.get("name", ""),
                                        user=request.user)
    except bs.AnalysisInvalid as exc:
        messages.error(request, f"{exc.field}: {exc.message}")
        return redirect("analysis", slug=slug, pk=pk)
    messages.success(request, f"Saved '{insight.name}' to the insights dashboard.")
    return redirect("insights", slug=slug)
