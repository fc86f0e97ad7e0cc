"""Planner pages: ranked backlog, investments, scenarios, runs with decisions."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from accounts import selectors as ws_selectors
from experiments import calibration as calibration_core
from experiments import selectors as experiment_selectors
from jobs.services import JobFailed
from segments.models import Refresh, Segment

from . import page_cache, selectors, services, stale
from .forms import DecisionForm, InvestmentForm, ScenarioForm, ValueModelForm
from .models import Investment, OptimizationRun, Roadmap, Scenario, ValueModel

SORTS = {"value_per_cost": "-value_per_cost", "expected_value": "-expected_value",
         "rice": "-rice", "ice": "-ice", "cost": "cost"}
BACKLOG_PAGE = 100


def _stale_flags(inv: Investment, latest_refresh_by_dataset: dict[int, int]) -> list[str]:
    flags = []
    sources = inv.value_sources or {}
    for key in ("reach", "value_per_user", "lift"):
        src = sources.get(key) or {}
        if src.get("stale"):
            flags.append(f"{key.replace('_', ' ')}: {src.get('source', '')[:80]}")
        if str(src.get("source", "")).startswith("missing"):
            flags.append(src["source"])
    if any(h.status == "invalidated" for h in inv.hypotheses.all()):
        flags.append("a linked hypothesis was invalidated")
    return flags


@login_required
def backlog(request: HttpRequest, slug: str) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    return page_cache.cached(request, workspace, membership.role,
                             lambda: _backlog(request, workspace, membership))


def _backlog(request: HttpRequest, workspace: Any, membership: Any) -> HttpResponse:
    sort = request.GET.get("sort", "value_per_cost")
    qs = selectors.backlog(request.user).filter(workspace=workspace)
    if roadmap := request.GET.get("roadmap"):
        qs = qs.filter(roadmap=roadmap)
    if status := request.GET.get("status"):
        qs = qs.filter(status=status)
    if segment := request.GET.get("segment"):
        # A subquery, not a join: no duplicate rows, so no DISTINCT over every column.
        qs = qs.filter(pk__in=Investment.target_segments.through.objects.filter(
            segment_id=segment).values("investment_id"))
    # Pages of BACKLOG_PAGE rows; one row more tells whether a next page exists (no COUNT).
    try:
        page = max(1, min(int(request.GET.get("page") or 1), 10_000))
    except ValueError:
        page = 1
    start = (page - 1) * BACKLOG_PAGE
    qs = qs.order_by(SORTS.get(sort, "-value_per_cost"), "id")[
        start:start + BACKLOG_PAGE + 1]
    latest = dict(Refresh.objects.filter(workspace=workspace).values_list("dataset_id", "id"))
    items = list(qs)
    rows = [{"inv": inv, "rank": n, "flags": _stale_flags(inv, latest)}
            for n, inv in enumerate(items[:BACKLOG_PAGE], start=start + 1)]
    query = request.GET.copy()
    query.pop("page", None)
    pager = {"page": page, "previous": page - 1 if page > 1 else None,
             "next": page + 1 if len(items) > BACKLOG_PAGE else None, "query": query.urlencode()}
    return render(request, "planner/backlog.html", {
        "workspace": workspace, "membership": membership, "rows": rows, "sort": sort,
        "rankings": selectors.RANKINGS, "roadmaps": Roadmap.choices,
        "segments": Segment.objects.filter(workspace=workspace).order_by("name"),
        "filters": request.GET, "pager": pager,
    })


@login_required
def investment_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    inv = get_object_or_404(selectors.backlog(request.user).filter(workspace=workspace), pk=pk)
    better = selectors.backlog(request.user).filter(
        workspace=workspace, value_per_cost__gt=inv.value_per_cost).count()
    sources = inv.value_sources or {}
    trace = [(label, sources.get(key) or {}) for key, label in (
        ("reach", "Reach (users in the target segments)"),
        ("value_per_user", "Value per user"),
        ("lift", "Lift on the hypothesis's metric"),
        ("mapping", "Value mapping (value's change per metric change)"),
        ("value_lift", "Lift on value (lift x mapping, simulated)"),
        ("probability_of_success", "Probability of success"),
    ) if key in sources]
    # Reach counts users: shown whole (646, not 646.000) when its figures are whole numbers.
    trace = [(label, {**t, "whole": True} if label.startswith("Reach") and _whole(t) else t)
             for label, t in trace]
    snapshot_notes = _snapshot_notes(inv)
    if snapshot_notes:  # the figures read from a segment snapshot say they are stale now
        trace = [(label, {**t, "stale": True} if label.startswith(("Reach", "Value per user"))
                  else t) for label, t in trace]
    return render(request, "planner/investment.html", {
        "workspace": workspace, "membership": membership, "inv": inv, "rank": better + 1,
        "trace": trace, "sources": sources, "history": inv.estimates.all()[:20],
        "allocations": inv.allocations.select_related("run__scenario").order_by("-run__created_at")[:10],
        "decisions": inv.decisions.select_related("decided_by").all()[:10],
        "flags": _stale_flags(inv, {}) + _mapping_flags(sources),
        "snapshot_notes": snapshot_notes,
        "mapping": sources.get("mapping") or {}, "shrink": sources.get("forecast_shrink") or {},
        "interval": sources.get("interval") or {},
    })


def _whole(figure: dict[str, Any]) -> bool:
    values = [figure.get(k) for k in ("estimate", "low", "high")]
    return all(isinstance(v, int | float) and float(v).is_integer() for v in values)


def _snapshot_notes(inv: Investment) -> list[str]:
    """The target segments whose latest snapshot (the one the reach and value per user come
    from) is on an older dataset version than the data now (segments' one staleness rule)."""
    from segments.models import SegmentSnapshot
    from segments.selectors import snapshot_freshness

    notes = []
    memo: dict[tuple[int, int], int | None] = {}
    for seg in inv.target_segments.select_related("dataset").order_by("name"):
        snap = (SegmentSnapshot.objects.filter(segment=seg).select_related("refresh")
                .order_by("-computed_at", "-id").first())
        if snap is None:
            continue
        fr = snapshot_freshness(snap, seg.dataset, memo)
        if fr.stale:
            notes.append(f"'{seg.name}' (snapshot #{snap.pk}): {fr.sentence()}")
    return notes


def _mapping_flags(sources: dict[str, Any]) -> list[str]:
    mapping = sources.get("mapping") or {}
    if mapping.get("unmapped"):
        return [f"The lift is on '{mapping.get('metric')}', not on value, and no value model "
                "maps it: it is taken one to one. Choose or create a value model."]
    if mapping.get("missing"):
        return ["The value model has no measured mapping yet: the lift adds no value."]
    if mapping.get("kind") == "measured" and mapping.get("holdout_agrees") is False:
        return ["The measured value model does not hold out of sample (the holdout slope "
                "differs from the calibration slope): treat the mapping with caution."]
    return []


@login_required
def investment_form(request: HttpRequest, slug: str, pk: int | None = None) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug, "define")
    instance = get_object_or_404(Investment, workspace=workspace, pk=pk) if pk else None
    form = InvestmentForm(request.POST or None, instance=instance, workspace=workspace)
    if request.method == "POST" and form.is_valid():
        inv = form.save_owned(request.user)
        services.investment_revalue(investment=inv, reason="edited" if instance else "created",
                                    edited=True)
        return redirect("investment", slug=slug, pk=inv.pk)
    return render(request, "planner/investment_form.html", {
        "workspace": workspace, "membership": membership, "form": form, "inv": instance})


@login_required
def scenarios(request: HttpRequest, slug: str) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    form = ScenarioForm(request.POST or None, workspace=workspace)
    error = ""
    if request.method == "POST":
        if not membership.can("define"):
            raise PermissionDenied
        if "run" in request.POST:
            scenario = get_object_or_404(Scenario, workspace=workspace, pk=request.POST["run"])
            try:
                run = services.run_start(scenario=scenario, user=request.user)
                return redirect("run", slug=slug, pk=run.pk)
            except services.PlannerInvalid as exc:
                error = f"{scenario.name}: {exc.field}: {exc.message}"
            except JobFailed as exc:
                error = str(exc)
        elif form.is_valid():
            scenario = form.save(commit=False)
            scenario.workspace = workspace
            scenario.created_by = request.user
            try:
                scenario.save()
                return redirect("scenarios", slug=slug)
            except IntegrityError:
                form.add_error("name", "a scenario with this name exists")
    services.runs_follow_jobs(OptimizationRun.objects.filter(workspace=workspace))
    items = []
    for sc in Scenario.objects.filter(workspace=workspace).order_by("name"):
        run = sc.runs.order_by("-created_at").first()
        items.append({"scenario": sc, "run": run,
                      "staleness": stale.run_staleness(run) if run else None})
    return render(request, "planner/scenarios.html", {
        "workspace": workspace, "membership": membership, "items": items, "form": form,
        "error": error})


def binding_context(plan: dict[str, Any], allocations: list[Any]) -> dict[str, Any]:
    """What binds for the run page: the plan's records with titles, its words, each item's
    reason. The words are the records' own (planner/optimizer/binding.py), so they agree."""
    titles = {str(a.investment_id): a.investment.title for a in allocations}
    rows = []
    for record in plan.get("binding") or []:
        rows.append({**record, "forces_in_titles": [titles.get(i, i)
                                                     for i in record.get("forces_in", [])]})
    reasons = []
    for item_id, reason in (plan.get("reasons") or {}).items():
        reasons.append({"title": titles.get(item_id, item_id), "chosen": reason.get("chosen"),
                        "words": reason.get("words", "")})
    reasons.sort(key=lambda r: (not r["chosen"], r["title"]))
    return {"rows": rows, "words": [r["words"] for r in rows if r.get("binds")],
            "reasons": reasons}


def _run_context(run: OptimizationRun) -> dict[str, Any]:
    allocations = list(run.allocations.select_related("investment").order_by("-chosen", "-value"))
    by_roadmap: dict[str, list[Any]] = {}
    for a in allocations:
        if a.chosen:
            by_roadmap.setdefault(a.roadmap, []).append(a)
    return {"allocations": allocations, "by_roadmap": by_roadmap}


@login_required
def run_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    services.runs_follow_jobs(OptimizationRun.objects.filter(workspace=workspace, pk=pk))
    run = get_object_or_404(OptimizationRun.objects.select_related("scenario", "job"),
                            workspace=workspace, pk=pk)
    form = DecisionForm(request.POST or None)
    if request.method == "POST":
        if not membership.can("decide"):
            raise PermissionDenied
        if form.is_valid():
            inv = get_object_or_404(Investment, workspace=workspace,
                                    pk=form.cleaned_data["investment"])
            try:
                services.decision_record(run=run, investment=inv,
                                         verdict=form.cleaned_data["verdict"],
                                         rationale=form.cleaned_data["rationale"],
                                         user=request.user)
                return redirect("run", slug=slug, pk=pk)
            except ValueError as exc:
                form.add_error("rationale", str(exc))
    latest: dict[int, Any] = {}
    for d in run.decisions.select_related("decided_by").order_by("decided_at", "id"):
        latest[d.investment_id] = d
    ctx = _run_context(run)
    charts = {"frontier": run.frontier, "budget": run.scenario.budget,
              "objective": run.objective,
              "robust": [{"title": a.investment.title, "p": a.inclusion_probability}
                         for a in ctx["allocations"] if a.inclusion_probability is not None]}
    voi = (run.robust or {}).get("voi") or None
    if voi and "error" not in voi:
        charts["voi"] = (
            [{"label": f"EVPPI: {h['label'][:60] or 'hypothesis #' + h['id']}",
              "value": h["evppi"], "se": h["se"], "kind": "EVPPI"} for h in voi["hypotheses"]]
            + [{"label": f"EVSI: {x['label'][:60]}", "value": x["evsi"], "se": x["se"],
                "kind": "EVSI"} for x in voi["experiments"]])
    titles = {str(a.investment_id): a.investment.title for a in ctx["allocations"]}
    capacity = (run.plan or {}).get("capacity_use", {})
    binding = binding_context(run.plan or {}, ctx["allocations"])
    return render(request, "planner/run.html", {
        "workspace": workspace, "membership": membership, "run": run, **ctx,
        "decisions": latest, "form": form, "charts": charts, "capacity": capacity,
        "plan": run.plan or {}, "roadmap_rows": services.approved_roadmap(run),
        "binding": binding, "staleness": stale.run_staleness(run), "voi": voi,
        "titles": titles,
    })


@login_required
def scenario_compare(request: HttpRequest, slug: str) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    runs = []
    for sc in Scenario.objects.filter(workspace=workspace).order_by("name"):
        run = sc.runs.filter(finished_at__isnull=False).order_by("-created_at").first()
        if run:
            runs.append({"scenario": sc, "run": run, "staleness": stale.run_staleness(run),
                         "chosen": set(run.allocations.filter(chosen=True)
                                       .values_list("investment_id", flat=True))})
    investments = Investment.objects.filter(workspace=workspace).order_by("-expected_value")
    matrix = [{"inv": inv, "cells": [inv.pk in r["chosen"] for r in runs]} for inv in investments]
    return render(request, "planner/compare.html", {
        "workspace": workspace, "membership": membership, "runs": runs, "matrix": matrix,
        "roadmaps": [r[0] for r in Roadmap.choices]})




@login_required
def calibration(request: HttpRequest, slug: str) -> HttpResponse:
    """Forecast calibration: the team's expected effects against what its tests measured, by
    author and by evidence level; an admin turns forecast shrinking on or off here."""
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    if request.method == "POST":
        if not membership.can("manage"):
            raise PermissionDenied
        services.workspace_set_shrink(workspace=workspace,
                                      on=request.POST.get("shrink_forecasts") == "on")
        return redirect("calibration", slug=slug)
    result = experiment_selectors.workspace_calibration(workspace)
    factor = calibration_core.shrink_factor(result)
    groups = [("Everyone", [result.overall]), ("By author", result.by_author),
              ("By evidence level when forecast", result.by_evidence)]
    return render(request, "planner/calibration.html", {
        "workspace": workspace, "membership": membership, "result": result, "groups": groups,
        "factor": factor, "min_for_shrink": calibration_core.MIN_FOR_SHRINK,
        "chart": {"points": result.overall.points},
    })


@login_required
def value_models(request: HttpRequest, slug: str) -> HttpResponse:
    """The workspace's value models (metric -> value mappings) and, for who may define, a form
    to add one: entered with an interval and a source, or measured from a segment's users."""
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    form = None
    if membership.can("define"):
        form = ValueModelForm(request.POST or None, instance=ValueModel(workspace=workspace),
                              workspace=workspace)
        if request.method == "POST" and form.is_valid():
            try:
                model = services.value_model_save(value_model=form.instance)
            except services.PlannerInvalid as exc:
                if exc.field in form.fields:
                    form.add_error(exc.field, exc.message)
                else:
                    form.add_error(None, f"{exc.field}: {exc.message}")
            else:
                return redirect(f"{request.path}#model-{model.pk}")
    elif request.method == "POST":
        raise PermissionDenied
    rows = (ValueModel.objects.filter(workspace=workspace).select_related("segment")
            .annotate(uses=Count("investments")).order_by("name", "id"))
    return render(request, "planner/value_models.html", {
        "workspace": workspace, "membership": membership, "rows": rows, "form": form})
