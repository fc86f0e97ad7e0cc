"""Segment pages: list, detail with charts, comparison, create/edit, refresh."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import cache_control

from accounts import selectors as ws_selectors
from events.models import Dataset
from jobs.models import Job
from security import bodies

from . import page_cache, segment_services, selectors
from .analytics.rfm import SEGMENT_NAMES as RFM_SEGMENTS
from .analytics.rules import describe_rule
from .models import Refresh, Segment

SIGNAL_LABELS = {
    "share": "Share of users",
    "revenue_per_active_user": "Revenue per active user (30 days)",
    "ltv_30": "LTV at 30 days",
    "ltv_90": "LTV at 90 days",
    "ltv_365": "LTV at 365 days",
    "predicted_clv": "Predicted CLV (1 year, BG/NBD + Gamma-Gamma)",
    "retention_d1": "Retention D1",
    "retention_d7": "Retention D7",
    "retention_d30": "Retention D30",
    "conversion": "Conversion to outcome",
    "cost_to_serve": "Cost to serve per user",
    "lift_vs_baseline_ltv_90": "Lift vs all users: LTV 90",
    "lift_vs_baseline_conversion": "Lift vs all users: conversion",
}


# The datasets' catalogs (large JSON) that the list and a segment's page never show.
CATALOGS = ("dataset__event_catalog", "dataset__attribute_catalog")

# The compare chart's panels: each signal with the unit its axis is titled with.
COMPARE_UNITS = {"ltv_90": "money per user", "conversion": "share of users",
                 "retention_d7": "share of users", "predicted_clv": "money per user"}


@cache_control(max_age=3600, public=True)
def plotly_js(request: HttpRequest) -> HttpResponseRedirect:
    """The old address of the chart library: to the trimmed static bundle (scripts/
    build_plotly.sh), which pages now link directly, compressed and content-hashed."""
    return HttpResponseRedirect(static("vendor/plotly-custom.min.js"))


def _describe(segment: Segment) -> str:
    if segment.kind == "rule":
        try:
            return describe_rule(segment.definition)
        except ValueError:
            return json.dumps(segment.definition)
    if segment.kind == "rfm":
        return f"RFM class “{segment.definition.get('rfm')}”"
    return "saved cluster suggestion"


def _row(segment: Segment, memo: dict[Any, Any] | None = None) -> dict[str, Any]:
    snap = selectors.latest_snapshot(segment)
    signals = snap.signals if snap and not snap.hidden else {}
    fr = selectors.snapshot_freshness(snap, segment.dataset, memo) if snap else None
    return {"segment": segment, "snap": snap, "signals": signals, "text": _describe(segment),
            "freshness": fr}


@login_required
def segment_list(request: HttpRequest, slug: str) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    return page_cache.cached(request, workspace, membership,
                             lambda: _segment_list(request, workspace, membership))


def _segment_list(request: HttpRequest, workspace: Any, membership: Any) -> HttpResponse:
    segments = [s for s in selectors.segments_for(request.user).filter(workspace=workspace)
                .defer(*CATALOGS) if not s.archived]
    memo: dict[Any, Any] = {}
    rows = sorted((_row(s, memo) for s in segments),
                  key=lambda r: -((r["signals"].get("ltv_90") or {}).get("estimate") or -1e18))
    datasets = Dataset.objects.filter(workspace=workspace).order_by("name")
    refresh = Refresh.objects.filter(workspace=workspace).order_by("-created_at").first()
    running = Job.objects.filter(workspace=workspace, kind="refresh",
                                 state__in=["queued", "running"]).first()
    return render(request, "segments/segment_list.html", {
        "workspace": workspace, "membership": membership, "rows": rows, "datasets": datasets,
        "refresh": refresh, "running": running, "labels": SIGNAL_LABELS,
        "stale": selectors.stale_notes(workspace),
    })


@login_required
def segment_refresh(request: HttpRequest, slug: str) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    if request.method != "POST":
        return redirect("segments", slug=slug)
    if not membership.can("define"):
        raise PermissionDenied
    dataset = get_object_or_404(Dataset, workspace=workspace, pk=request.POST.get("dataset"))
    segment_services.refresh_start(dataset=dataset, user=request.user)
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                                require_https=request.is_secure()):
        return redirect(back)
    return redirect("segments", slug=slug)


def _chart_signals(signals: dict[str, Any], baseline: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, label in SIGNAL_LABELS.items():
        if name == "share":  # shown as a headline figure; against "all users = 100%" it is noise
            continue
        sig = signals.get(name)
        if not sig or sig.get("estimate") is None:
            continue
        base = (baseline or {}).get(name) or {}
        out.append({"name": name, "label": label, **sig,
                    "baseline": base.get("estimate"), "baseline_low": base.get("low"),
                    "baseline_high": base.get("high")})
    return out


@login_required
def segment_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    return page_cache.cached(request, workspace, membership,
                             lambda: _segment_detail(request, workspace, membership, pk),
                             segment_id=pk)


def _segment_detail(request: HttpRequest, workspace: Any, membership: Any,
                    pk: int) -> HttpResponse:
    segment = get_object_or_404(Segment.objects.select_related("dataset", "owner")
                                .defer(*CATALOGS), workspace=workspace, pk=pk)
    snaps = list(segment.snapshots.select_related("refresh").order_by("-computed_at")[:12])
    snap = snaps[0] if snaps else None
    signals = _chart_signals(snap.signals, snap.refresh.baseline) if snap and not snap.hidden \
        else []
    trend = [{"at": s.computed_at.isoformat(), "version": s.dataset_version,
              "ltv_90": (s.signals.get("ltv_90") or {}).get("estimate"),
              "size": None if s.hidden else s.size} for s in reversed(snaps)]
    charts = {
        "signals": signals,
        "retention": snap.retention if snap and not snap.hidden else {},
        "trend": trend,
    }
    return render(request, "segments/segment_detail.html", {
        "workspace": workspace, "membership": membership, "segment": segment, "snap": snap,
        "freshness": selectors.snapshot_freshness(snap, segment.dataset) if snap else None,
        "running": _running_refresh(workspace, segment.dataset_id),
        "text": _describe(segment), "signals": signals, "charts": charts,
        "definition_json": json.dumps(segment.definition, indent=2),
        "min_size": workspace.min_segment_size, "sweep_path": _first_behaviour_path(segment),
    })


def _running_refresh(workspace: Any, dataset_id: int) -> Job | None:
    """The dataset's refresh job still queued or running (its card sits on the page)."""
    return (Job.objects.filter(workspace=workspace, kind="refresh", state__in=["queued", "running"],
                               params__dataset_id=dataset_id).order_by("-created_at").first())


def _first_behaviour_path(segment: Segment) -> str:
    """Path of the first event/distinct/revenue node of a rule, for the refine form."""
    def walk(node: Any, path: str) -> str | None:
        if not isinstance(node, dict):
            return None
        for key in ("event", "distinct", "revenue"):
            if key in node:
                return path or "$"
        for key in ("all", "any"):
            for i, child in enumerate(node.get(key) or []):
                found = walk(child, f"{path + '.' if path else ''}{key}[{i}]")
                if found:
                    return found
        if "not" in node:
            return walk(node["not"], f"{path + '.' if path else ''}not")
        return None

    return walk(segment.definition, "") or "" if segment.kind == "rule" else ""


@login_required
def segment_compare(request: HttpRequest, slug: str) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    ids = [int(i) for i in request.GET.getlist("s") if i.isdigit()]
    segments = selectors.segments_for(request.user).filter(workspace=workspace)
    chosen = [s for s in segments if s.pk in ids] or list(segments)[:4]
    memo: dict[Any, Any] = {}
    rows = [_row(s, memo) for s in chosen]
    names = [n for n in SIGNAL_LABELS if any(n in r["signals"] for r in rows)]
    table = [{"label": SIGNAL_LABELS[n], "cells": [r["signals"].get(n) for r in rows]}
             for n in names]
    charts = {"segments": [r["segment"].name for r in rows],
              "signals": [{"label": SIGNAL_LABELS[n], "name": n, "unit": COMPARE_UNITS[n],
                           "values": [r["signals"].get(n) for r in rows]}
                          for n in ("ltv_90", "conversion", "retention_d7", "predicted_clv")
                          if n in names]}
    stale: dict[tuple[int, int], dict[str, Any]] = {}
    for r in rows:
        fr = r["freshness"]
        if fr is not None and fr.stale:
            stale.setdefault((r["segment"].dataset_id, fr.dataset_version),
                             {"dataset": r["segment"].dataset, "freshness": fr})
    return render(request, "segments/segment_compare.html", {
        "workspace": workspace, "membership": membership, "rows": rows, "table": table,
        "stale": list(stale.values()),
        "all_segments": segments, "chosen_ids": [s.pk for s in chosen], "charts": charts,
    })


@login_required
def segment_form(request: HttpRequest, slug: str, pk: int | None = None) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug, "define")
    segment = get_object_or_404(Segment, workspace=workspace, pk=pk) if pk else None
    datasets = Dataset.objects.filter(workspace=workspace).order_by("name")
    errors: dict[str, str] = {}
    values = {
        "name": segment.name if segment else "",
        "dataset": segment.dataset_id if segment else (datasets[0].pk if datasets else None),
        "kind": segment.kind if segment else "rule",
        "definition": json.dumps(segment.definition, indent=2) if segment else
        '{"all": []}',
        "assumptions": segment.assumptions if segment else "",
        "description": segment.description if segment else "",
    }
    if request.method == "POST":
        values.update({k: request.POST.get(k, "") for k in values})
        try:
            definition = bodies.loads(values["definition"] or "{}")
        except ValueError as exc:
            errors["definition"] = f"not valid JSON: {exc}"
            definition = None
        if values["kind"] == "rfm" and request.POST.get("rfm"):
            definition = {"rfm": request.POST["rfm"]}
        dataset = datasets.filter(pk=values["dataset"] or 0).first()
        if dataset is None:
            errors["dataset"] = "choose a dataset"
        if not values["name"].strip():
            errors["name"] = "give the segment a name"
        if not errors:
            try:
                if segment:
                    segment_services.segment_update(
                        segment=segment, name=values["name"], definition=definition,
                        kind=values["kind"], assumptions=values["assumptions"],
                        description=values["description"])
                else:
                    segment = segment_services.segment_create(
                        dataset=dataset, name=values["name"], kind=values["kind"],
                        definition=definition, owner=request.user,
                        assumptions=values["assumptions"], description=values["description"])
                return redirect("segment", slug=slug, pk=segment.pk)
            except segment_services.DefinitionError as exc:
                errors["definition"] = str(exc)
            except IntegrityError:
                errors["name"] = "a segment with this name exists in the dataset"
    catalog_ds = segment.dataset if segment else datasets.first()
    return render(request, "segments/segment_form.html", {
        "event_names": [e["event"] for e in (catalog_ds.event_catalog if catalog_ds else [])],
        "attribute_names": [a["attribute"] for a in
                            (catalog_ds.attribute_catalog if catalog_ds else [])],
        "workspace": workspace, "membership": membership, "segment": segment,
        "datasets": datasets, "values": values, "errors": errors, "rfm_names": RFM_SEGMENTS,
    })


@login_required
def cluster_suggestions(request: HttpRequest, slug: str) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    datasets = Dataset.objects.filter(workspace=workspace, version__gt=0).order_by("name")
    dataset = datasets.filter(pk=request.GET.get("dataset") or 0).first() or datasets.first()
    error = ""
    if request.method == "POST":
        if not membership.can("define"):
            raise PermissionDenied
        if "label" in request.POST:
            job = get_object_or_404(Job, workspace=workspace, kind="clusters",
                                    pk=request.POST.get("job"))
            try:
                segment = segment_services.cluster_save(
                    job=job, label=int(request.POST["label"]),
                    name=request.POST.get("name", "").strip() or f"Cluster {request.POST['label']}",
                    owner=request.user)
                return redirect("segment", slug=slug, pk=segment.pk)
            except (segment_services.DefinitionError, ValueError) as exc:
                error = str(exc)
            except IntegrityError:
                error = "a segment with this name exists in the dataset"
        elif dataset is not None:
            segment_services.clusters_start(dataset=dataset, user=request.user)
            return redirect(f"{request.path}?dataset={dataset.pk}")
    job = (Job.objects.filter(workspace=workspace, kind="clusters",
                              params__dataset_id=dataset.pk).order_by("-created_at").first()
           if dataset else None)
    return render(request, "segments/clusters.html", {
        "workspace": workspace, "membership": membership, "datasets": datasets,
        "dataset": dataset, "job": job, "result": job.result if job else {}, "error": error,
    })
