"""Pages for behaviour analyses: funnels, paths, retention cohorts, behaviour discovery."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from accounts import selectors as ws_selectors
from accounts.selectors import VIEWER_READ_ONLY
from behaviour import services as bs
from behaviour.describe import describe_params, segment_names_for
from behaviour.models import AnalysisKind, BehaviourAnalysis
from segments import selectors as seg_selectors
from segments.analytics.freshness import freshness
from segments.models import Segment
from segments.segment_services import DefinitionError


def _params(post: Any, kind: str) -> dict[str, Any]:
    def listed(key: str) -> list[str]:
        return [p.strip() for p in post.get(key, "").split(",") if p.strip()]

    p: dict[str, Any] = {"segment": post.get("segment") or None}
    if kind == "funnel":
        p.update(steps=_steps_with_filters(post, listed("steps")),
                 window_days=post.get("window_days") or 14,
                 mode=post.get("mode") or "ordered", exclusions=listed("exclusions"),
                 breakdown=post.get("breakdown") or "",
                 breakdown_segments=post.getlist("breakdown_segments"))
    elif kind == "paths":
        p.update(start_event=post.get("start_event") or None,
                 end_event=post.get("end_event") or None,
                 outcome_event=post.get("paths_outcome") or None,
                 steps=post.get("path_steps") or 3, top=20)
    elif kind == "trends":
        from behaviour.trends_services import trends_form_params

        p.update(trends_form_params(post))
    elif kind == "retention":
        p.update(cohort_by=post.get("cohort_by") or "signup", period=post.get("period") or "week",
                 mode=post.get("retention_mode") or "recurring",
                 return_on=post.get("return_on") or "on",
                 max_periods=post.get("max_periods") or 12,
                 start_event=post.get("retention_start") or None,
                 return_events=post.getlist("return_events") or None,
                 period_kind=post.get("period_kind") or "calendar",
                 period_days=post.get("period_days") or 7,
                 within=post.get("within") or None)
    else:
        p.update(outcome_event=post.get("outcome_event") or None,
                 outcome_days=post.get("outcome_days") or 60)
    return p


FILTER_ROWS = 3


def _steps_with_filters(post: Any, steps: list[str]) -> list[Any]:
    """The steps, with the page's per-step filter rows (step number, property, op, value)
    attached as ``{"event", "filter"}``; an ``in`` value is a comma-separated list. A row
    naming no step that exists is refused with the field named."""
    out: list[Any] = list(steps)
    rows = zip(post.getlist("filter_step"), post.getlist("filter_key"),
               post.getlist("filter_op"), post.getlist("filter_value"), strict=False)
    for step, key, op, value in rows:
        if not key.strip():
            continue
        try:
            i = int(step) - 1
        except ValueError:
            i = -1
        if not 0 <= i < len(steps):
            raise bs.AnalysisInvalid("filter_step", f"step {step!r} is not one of the funnel's "
                                                    f"{len(steps)} steps")
        if isinstance(out[i], dict):
            raise bs.AnalysisInvalid("filter_step", f"step {i + 1} has two filters; give one")
        shown = [v.strip() for v in value.split(",") if v.strip()] if op == "in" \
            else value.strip()
        out[i] = {"event": steps[i], "filter": {"key": key.strip(), "op": op, "value": shown}}
    return out


@login_required
def behaviour(request: HttpRequest, slug: str) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    datasets = list(workspace.datasets.order_by("pk"))
    error = ""
    if request.method == "POST":
        if not membership.can("define"):  # viewers read analyses; starting one is compute
            raise PermissionDenied(f"Starting an analysis: {VIEWER_READ_ONLY}.")
        dataset = next((d for d in datasets if str(d.pk) == request.POST.get("dataset")), None)
        kind = request.POST.get("kind", "")
        if dataset is None:
            error = "dataset: choose a dataset"
        else:
            try:
                params = _params(request.POST, kind)
                analysis = bs.analysis_start(dataset=dataset, kind=kind, params=params,
                                             user=request.user)
            except bs.AnalysisInvalid as exc:
                error = f"{exc.field}: {exc.message}"
            else:
                return redirect("analysis", slug=slug, pk=analysis.pk)
    dataset = datasets[0] if datasets else None
    return render(request, "behaviour/behaviour.html", {
        "workspace": workspace, "membership": membership, "datasets": datasets,
        "events": [e["event"] for e in (dataset.event_catalog if dataset else [])],
        "attributes": [a["attribute"] for a in (dataset.attribute_catalog if dataset else [])],
        "segments": workspace.segments.filter(archived=False).order_by("name"),
        "kinds": AnalysisKind.choices, "error": error, "form": request.POST,
        "recent": _described(list(BehaviourAnalysis.objects.filter(workspace=workspace)
                                  .select_related("job", "dataset")[:30])),
        "filter_rows": range(1, FILTER_ROWS + 1), "filter_ops": FILTER_OPS,
    }, status=400 if error else 200)


FILTER_OPS = (("eq", "="), ("neq", "≠"), ("in", "in (comma-separated)"),
              ("contains", "contains"))


def _described(analyses: list[BehaviourAnalysis]) -> list[BehaviourAnalysis]:
    """Each analysis with ``summary``: its parameters by name (``describe_params``)."""
    ids = segment_names_for(a.params for a in analyses)
    names = dict(Segment.objects.filter(pk__in=ids).values_list("pk", "name")) if ids else {}
    for a in analyses:
        a.summary = describe_params(a.params, names)  # type: ignore[attr-defined]
        # segments' one staleness rule (no query: the list says stale, the page says more)
        a.fresh = freshness(dataset_version=a.dataset_version,  # type: ignore[attr-defined]
                            current_version=a.dataset.version)
    return analyses


@login_required
def analysis_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    analysis = get_object_or_404(BehaviourAnalysis.objects.select_related("job", "dataset"),
                                 workspace=workspace, pk=pk)
    if request.method == "POST" and request.POST.get("rerun"):
        # The stale note's button: the same analysis on the dataset's current version.
        if not membership.can("define"):
            raise PermissionDenied
        try:
            fresh = bs.analysis_start(dataset=analysis.dataset, kind=analysis.kind,
                                      params=analysis.params, user=request.user)
        except bs.AnalysisInvalid as exc:
            messages.error(request, f"{exc.field}: {exc.message}")
            return redirect("analysis", slug=slug, pk=pk)
        return redirect("analysis", slug=slug, pk=fresh.pk)
    if request.method == "POST":
        if not membership.can("define"):
            raise PermissionDenied
        name = request.POST.get("name", "").strip()
        try:
            if not name:
                raise bs.AnalysisInvalid("name", "give the segment a name")
            if analysis.kind == AnalysisKind.FUNNEL:
                seg = bs.save_dropoff_segment(analysis=analysis,
                                              step=int(request.POST.get("step", 0)),
                                              name=name, owner=request.user)
            else:
                rank = int(request.POST.get("rank", 0))
                seg = bs.save_behaviour_segment(analysis=analysis, rank=rank, name=name,
                                                owner=request.user)
                if request.POST.get("hypothesis"):
                    hyp = bs.behaviour_hypothesis(analysis=analysis, rank=rank, segment=seg,
                                                  owner=request.user)
                    messages.success(request, f"Logged exploratory hypothesis #{hyp.pk}.")
            messages.success(request, f"Saved segment '{seg.name}': refresh to measure it.")
        except (bs.AnalysisInvalid, DefinitionError, ValueError) as exc:
            messages.error(request, str(exc))
        except IntegrityError:
            messages.error(request, "a segment with this name exists")
        return redirect("analysis", slug=slug, pk=pk)
    return render(request, "behaviour/analysis.html", {
        "workspace": workspace, "membership": membership, "a": analysis, "r": analysis.result,
        "job": analysis.job, "summary": _described([analysis])[0].summary,  # type: ignore[attr-defined]
        "freshness": seg_selectors.result_freshness(dataset=analysis.dataset,
                                                    dataset_version=analysis.dataset_version),
    })
