"""Roadmap pages: the timeline of a version (quarters x team swimlanes, now / next / later,
what changed since the version before, council decisions), compare two versions, adopt a
run."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from accounts import selectors as ws_selectors

from . import roadmap
from .models import Allocation, Investment, ItemState, OptimizationRun, RoadmapVersion, Verdict
from .roadmap_timeline import horizons, layout
from .services import PlannerInvalid, runs_follow_jobs


class RoadmapDecisionForm(forms.Form):
    investment = forms.IntegerField(widget=forms.HiddenInput())
    verdict = forms.ChoiceField(choices=Verdict.choices)
    rationale = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=5000)


class AdoptForm(forms.Form):
    items = forms.TypedMultipleChoiceField(coerce=int, required=False,
                                           widget=forms.CheckboxSelectMultiple)
    note = forms.CharField(required=False, max_length=5000,
                           widget=forms.Textarea(attrs={"rows": 2}))


def base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def timeline_context(version: RoadmapVersion | None, today: Any = None) -> dict[str, Any]:
    """Everything the timeline partial shows for a version (its changes since the one
    before, the grid, now / next / later); empty before the first adoption."""
    if version is None:
        return {"version": None}
    base_label, changes = roadmap.diff_from_previous(version)
    items = roadmap.timeline_items(version, changes)
    grid = layout(items)
    return {"version": version, "base_label": base_label, "changes": changes, "grid": grid,
            "columns_count": len(grid["columns"]),
            "horizons": horizons(items, (today or timezone.now()).date()),
            "rejected": list(version.items.filter(state=ItemState.REJECT).order_by("title"))}


@login_required
def roadmap_page(request: HttpRequest, slug: str, number: int | None = None) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    versions = list(RoadmapVersion.objects.filter(workspace=workspace)
                    .select_related("adopted_by").order_by("-number"))
    current = versions[0] if versions else None
    if number is None:
        version = current
    else:
        version = next((v for v in versions if v.number == number), None)
        if version is None:
            raise Http404("No such roadmap version")
    form = RoadmapDecisionForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if not membership.can("decide"):
            raise PermissionDenied
        if version is None:
            raise Http404("No roadmap version yet")
        if form.is_valid():
            investment = Investment.objects.filter(workspace=workspace,
                                                   pk=form.cleaned_data["investment"]).first()
            try:
                if investment is None:
                    raise PlannerInvalid("investment", f"#{form.cleaned_data['investment']} is "
                                                       "not an investment of this workspace")
                roadmap.roadmap_decide(version=version, investment=investment,
                                       verdict=form.cleaned_data["verdict"],
                                       rationale=form.cleaned_data["rationale"],
                                       user=request.user, base_url=base_url(request))
                messages.success(request, f"Recorded: {form.cleaned_data['verdict']} "
                                          f"{investment.label} on v{version.number}.")
                return redirect(request.path)
            except PlannerInvalid as exc:
                form.add_error(None, f"{exc.field}: {exc.message}")
        status = 400
    items = list(version.items.select_related("investment").order_by("roadmap", "-value"))\
        if version else []
    return render(request, "planner/roadmap.html", {
        "workspace": workspace, "membership": membership, "versions": versions,
        "current": current, "form": form, "items": items,
        "can_decide": membership.can("decide") and version is not None and version == current,
        "verdicts": Verdict.choices, **timeline_context(version)}, status=status)


@login_required
def roadmap_compare(request: HttpRequest, slug: str) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    versions = {v.number: v for v in RoadmapVersion.objects.filter(workspace=workspace)}
    errors = {}
    picked = {}
    for key in ("a", "b"):
        raw = request.GET.get(key, "")
        if not raw:
            continue
        if not raw.isdigit() or int(raw) not in versions:
            errors[key] = f"{raw!r} is not a version of this roadmap"
        else:
            picked[key] = versions[int(raw)]
    changes = None
    if "a" in picked and "b" in picked and not errors:
        changes = roadmap.diff_versions(picked["a"], picked["b"])
    return render(request, "planner/roadmap_compare.html", {
        "workspace": workspace, "membership": membership,
        "versions": sorted(versions.values(), key=lambda v: -v.number), "picked": picked,
        "errors": errors, "changes": changes}, status=400 if errors else 200)


@login_required
def roadmap_adopt_page(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    runs_follow_jobs(OptimizationRun.objects.filter(workspace=workspace, pk=run_id))
    run = get_object_or_404(OptimizationRun.objects.select_related("scenario"),
                            workspace=workspace, pk=run_id)
    allocations = list(Allocation.objects.filter(run=run).select_related("investment")
                       .order_by("-chosen", "-value", "investment_id"))
    form = AdoptForm(request.POST or None,
                     initial={"items": [a.investment_id for a in allocations if a.chosen]})
    form.fields["items"].choices = [(a.investment_id, a.investment.title) for a in allocations]
    status = 200
    if request.method == "POST":
        if not membership.can("decide"):
            raise PermissionDenied
        if form.is_valid() and not form.cleaned_data["items"]:
            form.add_error("items", "items: choose at least one item of the run to adopt")
        if form.is_valid():
            try:
                version = roadmap.roadmap_adopt(
                    run=run, user=request.user, items=form.cleaned_data["items"],
                    note=form.cleaned_data["note"], base_url=base_url(request))
                messages.success(request, f"Adopted run #{run.pk} as roadmap "
                                          f"v{version.number}.")
                return redirect("roadmap", slug=slug)
            except PlannerInvalid as exc:
                form.add_error(exc.field if exc.field in form.fields else None,
                               f"{exc.field}: {exc.message}")
        status = 400
    current = roadmap.current_version(workspace)
    return render(request, "planner/roadmap_adopt.html", {
        "workspace": workspace, "membership": membership, "run": run, "form": form,
        "allocations": allocations, "current": current,
        "changes": roadmap.diff_run(run, current), "stale": roadmap.run_is_stale(run),
        "checked": set(form.cleaned_data["items"]) if form.is_bound and form.is_valid()
        else {a.investment_id for a in allocations if a.chosen}}, status=status)
