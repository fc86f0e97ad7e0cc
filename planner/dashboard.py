"""What the workspace home page and the council's quarterly brief show: one read per section,
query count independent of the data's size (bounded lists, aggregates in the database)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, OuterRef, Subquery, Sum

from accounts.models import Workspace
from events.models import Import
from experiments.models import Experiment, Hypothesis, HypothesisStatus, Learning
from segments.analytics.freshness import freshness
from segments.models import Refresh, Segment, SegmentSnapshot
from segments.selectors import stale_notes

from . import selectors
from .models import Allocation, Decision, OptimizationRun, Roadmap, RoadmapVersion
from .roadmap_diff import evidence_level
from .stale import run_staleness

# The headline value per user: 90-day LTV, else the best money signal the data supports.
HEADLINES = ("ltv_90", "ltv_30", "revenue_per_active_user")


def _headline(signals: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    for name in HEADLINES:
        sig = signals.get(name) or {}
        if sig.get("estimate") is not None:
            return name, sig
    return HEADLINES[0], signals.get(HEADLINES[0]) or {}


def top_segments(workspace: Workspace, limit: int = 8) -> list[dict[str, Any]]:
    """Segments by the latest snapshot's 90-day LTV, with the change since the one before."""
    latest = SegmentSnapshot.objects.filter(segment=OuterRef("pk")).order_by("-computed_at", "-id")
    segments = (Segment.objects.filter(workspace=workspace, archived=False)
                .select_related("dataset").annotate(latest_id=Subquery(latest.values("pk")[:1]),
                          previous_id=Subquery(latest.values("pk")[1:2])))
    ids = [i for s in segments for i in (s.latest_id, s.previous_id) if i]
    snaps = {s.pk: s for s in SegmentSnapshot.objects.filter(pk__in=ids)}
    rows = []
    for seg in segments:
        snap = snaps.get(seg.latest_id)
        if snap is None or snap.hidden:
            continue
        signal, sig = _headline(snap.signals)
        prev = snaps.get(seg.previous_id)
        prev_value = ((prev.signals.get(signal) or {}).get("estimate") if prev else None)
        value = sig.get("estimate")
        rows.append({"segment": seg, "snapshot": snap, "signal": signal,
                     "stale": freshness(dataset_version=snap.dataset_version,
                                        current_version=seg.dataset.version).stale,
                     "signal_label": signal.replace("_", " ").replace("ltv", "LTV"),
                     "value": value, "low": sig.get("low"),
                     "high": sig.get("high"), "size": snap.size, "warnings": snap.warnings,
                     "change": (value - prev_value) if value is not None and prev_value
                     is not None else None,
                     "total": (value or 0) * snap.size})
    rows.sort(key=lambda r: -(r["total"] or 0))
    return rows[:limit]


def data_quality(workspace: Workspace, limit: int = 5) -> list[dict[str, Any]]:
    rows = []
    for imp in Import.objects.filter(workspace=workspace).select_related("dataset")[:limit]:
        events = (imp.report or {}).get("events") or {}
        problems = events.get("problems") or {}
        rows.append({"import": imp, "problems": sum(
            (p.get("count", 0) if isinstance(p, dict) else 0) for p in problems.values()),
            "kinds": sorted(problems)[:6]})
    return rows


def latest_allocation(workspace: Workspace) -> dict[str, Any] | None:
    run = (OptimizationRun.objects.filter(workspace=workspace, finished_at__isnull=False)
           .exclude(status="failed").select_related("scenario").order_by("-finished_at").first())
    if run is None:
        return None
    totals = {r["roadmap"]: r for r in Allocation.objects.filter(run=run, chosen=True)
              .values("roadmap").annotate(cost=Sum("cost"), value=Sum("value"),
                                          items=Count("id"))}
    budget = float((run.inputs or {}).get("budget") or 0)
    # Share of spend, as the run page shows it (not of the budget).
    spend = sum(float(r.get("cost") or 0) for r in totals.values())
    by_roadmap = [{"roadmap": label, "cost": float(totals.get(key, {}).get("cost") or 0),
                   "value": float(totals.get(key, {}).get("value") or 0),
                   "items": int(totals.get(key, {}).get("items") or 0),
                   "share": (float(totals.get(key, {}).get("cost") or 0) / spend)
                   if spend else None}
                  for key, label in Roadmap.choices]
    marginal = (run.plan or {}).get("marginal_values") or {}
    # The run's own binding report (planner/optimizer/binding.py), so the words agree with the
    # run page; runs made before it name the capacities with a positive LP dual.
    records = (run.plan or {}).get("binding")
    binds = [r["words"] for r in records if r.get("binds")] if records is not None else \
        [f"team {k}" for k, v in (marginal.get("capacity") or {}).items() if v]
    version = (RoadmapVersion.objects.filter(workspace=workspace).order_by("-number").first())
    decisions = (Decision.objects.filter(version=version) if version is not None
                 else Decision.objects.filter(run=run))
    return {"run": run, "staleness": run_staleness(run), "budget": budget, "spend": spend,
            "by_roadmap": by_roadmap, "binding": binds,
            "budget_marginal": marginal.get("budget"), "frontier": run.frontier or [],
            "funded": funded_items(run), "version": version,
            "decisions": decisions.select_related("investment", "decided_by")[:20]}


FUNDED_LIMIT = 200


def funded_items(run: OptimizationRun) -> list[dict[str, Any]]:
    """The run's chosen items by roadmap (value, cost, quarter, teams from the run's inputs,
    evidence level behind today's value); at most FUNDED_LIMIT, the most valuable first."""
    effort = {i["id"]: i.get("effort") or {} for i in (run.inputs or {}).get("items", [])}
    groups: dict[str, list[dict[str, Any]]] = {}
    for a in (Allocation.objects.filter(run=run, chosen=True).select_related("investment")
              .order_by("-value", "investment_id")[:FUNDED_LIMIT]):
        teams = effort.get(str(a.investment_id), {})
        groups.setdefault(a.roadmap, []).append({
            "title": a.investment.title, "investment": a.investment_id, "value": a.value,
            "cost": a.cost, "quarter": a.start_quarter,
            "teams": sorted(t for t, u in teams.items() if u),
            "evidence": evidence_level(a.investment.value_sources)})
    order = [key for key, _ in Roadmap.choices]
    return [{"roadmap": k, "items": groups[k]}
            for k in sorted(groups, key=lambda k: order.index(k) if k in order else 99)]


def dashboard(workspace: Workspace, user: object) -> dict[str, Any]:
    refresh = (Refresh.objects.filter(workspace=workspace, finished_at__isnull=False)
               .order_by("-finished_at").first())
    return {
        "top_segments": top_segments(workspace),
        "quality": data_quality(workspace),
        "last_refresh": refresh,
        "stale_segments": stale_notes(workspace),
        "next_refresh_at": workspace.next_refresh_at,
        "allocation": latest_allocation(workspace),
        "backlog_head": list(selectors.backlog(user).filter(workspace=workspace)
                             .order_by("-value_per_cost", "id")[:5]),
        "in_flight": list(Hypothesis.objects.filter(
            workspace=workspace, status__in=[HypothesisStatus.PRIORITIZED,
                                             HypothesisStatus.TESTING])
            .prefetch_related("segments").order_by("-updated_at")[:8]),
        "running": list(Experiment.objects.filter(workspace=workspace).exclude(
            status="concluded").select_related("hypothesis").order_by("-updated_at")[:5]),
        "learnings": list(Learning.objects.filter(workspace=workspace).select_related(
            "hypothesis", "experiment").prefetch_related("segments")[:5]),
    }
