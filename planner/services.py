"""Planner writes: value investments from their sources, run the optimizer, record decisions."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections import deque
from typing import Any

import numpy as np
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import QuerySet
from django.utils import timezone

import audit
from accounts.models import Workspace
from events.errors import FieldError
from events.services import load_user_events
from experiments import calibration
from experiments import selectors as experiment_selectors
from experiments.data import ExperimentDataError, MetricSpec, metric_values
from experiments.models import (
    PROBABILITY_OF_SUCCESS,
    Evidence,
    Experiment,
    ExperimentStatus,
    Hypothesis,
    HypothesisStatus,
)
from experiments.stats import jsonable as stats_jsonable
from integrations import webhooks
from jobs.faults import fault_point
from jobs.models import JobState
from jobs.services import (
    BrokerUnavailable,
    Job,
    JobFailed,
    job_create,
    job_handler,
    job_progress,
)
from segments.analytics.refine import revenue_since_signup
from segments.models import Refresh, SegmentSnapshot
from segments.segment_services import segment_members_mask

from . import page_cache
from .basis import evidence_of, inputs_basis, strongest_hypothesis
from .changes import backlog_touched, investments_rerank
from .mapping import MappingInvalid, measure_mapping
from .models import (
    EFFORT_TOTAL,
    REACH_USERS,
    VALUE,
    Allocation,
    Decision,
    Investment,
    InvestmentStatus,
    ItemState,
    MappingKind,
    OptimizationRun,
    RoadmapItem,
    RoadmapVersion,
    Scenario,
    ValueBasis,
    ValueEstimate,
    ValueModel,
    Verdict,
)
from .optimizer import DEFAULT_SHARES, Item, Problem, ProblemError, frontier, solve, voi
from .optimizer.robust import robust_sampled
from .roadmap_formats import safe_cell
from .valuation import (
    MEASURED_LEVEL,
    STATED_LEVEL,
    Figure,
    Valuation,
    combine_segments,
    value_investment,
)


class PlannerInvalid(FieldError):
    """A planner input refused: ``field`` names where, ``message`` says what."""


Z95 = 1.959963984540054  # a measured lift's interval is a 95% confidence interval

EVIDENCE_ORDER = [Evidence.ASSUMPTION, Evidence.OBSERVATIONAL, Evidence.EXPERIMENT,
                  Evidence.REPLICATED]


# ----- valuation -----------------------------------------------------------------------------
def _segment_figures(investment: Investment) -> list[tuple[Figure, Figure]]:
    parts = []
    for segment in investment.target_segments.all():
        snap = (SegmentSnapshot.objects.filter(segment=segment).select_related("refresh")
                .order_by("-computed_at", "-id").first())
        if snap is None or snap.hidden:
            continue
        latest = Refresh.objects.filter(dataset_id=segment.dataset_id).order_by("-id").first()
        stale = (latest is not None and latest.pk != snap.refresh_id) or \
            snap.dataset_version < segment.dataset.version
        where = f"snapshot #{snap.pk} of '{segment.name}' (dataset v{snap.dataset_version})"
        reach = Figure(snap.size, snap.size, snap.size, where, stale)
        sig = snap.signals.get(investment.value_basis) or {}
        if sig.get("estimate") is None:
            continue
        value = Figure.around(sig["estimate"], sig.get("low"), sig.get("high"),
                              f"{where}: {investment.get_value_basis_display()}", stale)
        parts.append((reach, value))
    return parts


# Metrics that are value themselves: their lift is the value's lift (one to one).
VALUE_METRICS = frozenset({*ValueBasis.values, "ltv", "ltv_30", "revenue", "revenue_per_user",
                           "arpu", "value"})


def _lift_figures(investment: Investment, shrink: float | None = None
                  ) -> tuple[Figure, Figure, Hypothesis | None]:
    """(lift, probability of success, the hypothesis it rests on) from the strongest
    hypothesis, else the assumption. ``shrink``: the workspace's measured realized / predicted
    ratio, applied to a forecast not yet measured."""
    hyps = list(investment.hypotheses.all())
    invalidated = [h for h in hyps if h.status == HypothesisStatus.INVALIDATED]
    best = strongest_hypothesis(hyps)
    if best is not None:
        evidence = evidence_of(best)
        if best.measured_lift is not None:
            lift = Figure.around(best.measured_lift, best.measured_lift_low,
                                 best.measured_lift_high,
                                 f"experiment estimate on hypothesis #{best.pk} '{best.statement}'"
                                 + (f" (metric {best.metric})" if best.metric else ""),
                                 level=MEASURED_LEVEL)
        else:
            source = (f"expected lift of hypothesis #{best.pk} '{best.statement}'"
                      + (f" (metric {best.metric})" if best.metric else "")
                      + ", its stated interval read as 80%")
            k = 1.0 if shrink is None else shrink
            if shrink is not None:
                source += (f"; shrunk x{shrink:.2f}, the team's measured realized / predicted "
                           "ratio (workspace setting)")
            low = None if best.expected_lift_low is None else best.expected_lift_low * k
            high = None if best.expected_lift_high is None else best.expected_lift_high * k
            lift = Figure.around(best.expected_lift * k, low, high, source, level=STATED_LEVEL)
        p = PROBABILITY_OF_SUCCESS[evidence]
        return lift, Figure(p, p, p, f"evidence level '{evidence}' of hypothesis #{best.pk}"), best
    stale = bool(invalidated)
    if stale:
        # The test said no: the item's own earlier assumption is set aside, not revived (it
        # would otherwise gain value from its hypothesis failing).
        names = ", ".join(f"#{h.pk}" for h in invalidated)
        reason = f"hypothesis {names} invalidated: no lift counted (the item's own estimate is set aside)"
        return Figure(0.0, 0.0, 0.0, reason, stale), Figure(0.0, 0.0, 0.0, reason, stale), None
    if investment.assumed_lift is not None:
        p = PROBABILITY_OF_SUCCESS[Evidence.ASSUMPTION]
        return (Figure(investment.assumed_lift, investment.assumed_lift, investment.assumed_lift,
                       "investment assumption"),
                Figure(p, p, p, "no evidence: an assumption"), None)
    reason = "no hypothesis and no assumed lift"
    return Figure(0.0, 0.0, 0.0, reason, stale), Figure(0.0, 0.0, 0.0, reason, stale), None


def _mapping_figure(investment: Investment, hypothesis: Hypothesis | None
                    ) -> tuple[Figure, dict[str, Any]]:
    """The value model between the lift's metric and the investment's value, and its basis for
    the provenance table."""
    model = investment.value_model
    if hypothesis is None:
        return (Figure.exact(1.0, "the lift is an assumption on value itself: one to one"),
                {"kind": MappingKind.IDENTITY})
    if model is None:
        metric = (hypothesis.metric or "").strip()
        if not metric or metric in VALUE_METRICS or metric == investment.value_basis:
            return (Figure.exact(1.0, f"the metric{f' {metric}' if metric else ''} is value "
                                      "itself: one to one"), {"kind": MappingKind.IDENTITY})
        return (Figure.exact(1.0, f"no value model: the lift on '{metric}' is taken one to one "
                                  "(an unchecked assumption; add a value model)"),
                {"kind": "unmapped", "unmapped": True, "metric": metric})
    basis: dict[str, Any] = {"kind": model.kind, "value_model": model.pk, "name": model.name,
                             "metric": model.metric}
    where = f"value model #{model.pk} '{model.name}'"
    if model.kind == MappingKind.IDENTITY:
        return Figure.exact(1.0, f"{where}: value itself, one to one"), basis
    if model.mid is None or model.low is None or model.high is None:
        return (Figure(0.0, 0.0, 0.0, f"{where}: not measured yet (no mapping: no value)", True),
                {**basis, "missing": True})
    if model.kind == MappingKind.ENTERED:
        return (Figure(model.mid, model.low, model.high, f"{where}: entered, {model.source}",
                       level=STATED_LEVEL), {**basis, "source_text": model.source})
    fit = model.fit or {}
    cal = fit.get("calibration") or {}
    hold = fit.get("holdout") or {}
    basis.update({
        "observational": True, "n": fit.get("n_users"), "n_calibration": cal.get("n"),
        "n_holdout": hold.get("n"), "slope": cal.get("slope"),
        "slope_interval": [cal.get("low"), cal.get("high")], "r2": cal.get("r2"),
        "holdout_slope": hold.get("slope"), "holdout_elasticity": fit.get("holdout_elasticity"),
        "holdout_agrees": fit.get("holdout_agrees"), "holdout_z": fit.get("holdout_z"),
        "segment": fit.get("segment"), "value": fit.get("value"),
        "measured_at": model.measured_at.isoformat() if model.measured_at else None})
    return (Figure(model.mid, model.low, model.high,
                   f"{where}: measured on {fit.get('n_users')} users of '{fit.get('segment')}' "
                   "(observational)", level=MEASURED_LEVEL), basis)


def _shrink_factor(workspace: Workspace) -> float | None:
    if not workspace.shrink_forecasts:
        return None
    return calibration.shrink_factor(experiment_selectors.workspace_calibration(workspace))


def _in_domain(result: Valuation) -> tuple[Valuation, str]:
    """The valuation inside the value domain (``models.VALUE``), and a note when it was not:
    the sources are data (a snapshot's signal), so their product may be anything."""
    low, high = VALUE
    figures = (result.expected_value, result.low, result.high)
    if not all(math.isfinite(f) for f in figures):
        return (Valuation(0.0, 0.0, 0.0, result.sources, result.stale),
                "the sources give no finite value: set to 0")
    if all(low <= f <= high for f in figures):
        return result, ""
    def clamp(f: float) -> float:
        return min(max(f, low), high)

    if low <= result.expected_value <= high:
        note = (f"the computed range {result.low:g}..{result.high:g} is outside "
                f"{low:g}..{high:g}: capped")
    else:
        note = f"the computed value {result.expected_value:g} is outside {low:g}..{high:g}: capped"
    return (Valuation(clamp(result.expected_value), clamp(result.low), clamp(result.high),
                      result.sources, result.stale), note)


def _effort_total(effort: Any) -> float:
    """The sum of the numeric effort units (0 when below the domain's 0.01, capped above)."""
    values: list[Any] = []
    for units in (effort.values() if isinstance(effort, dict) else ()):
        values.extend(units if isinstance(units, list) else [units])
    total = math.fsum(float(v) for v in values if isinstance(v, int | float)
                      and not isinstance(v, bool) and math.isfinite(v) and v > 0)
    return 0.0 if total < EFFORT_TOTAL[0] else min(total, EFFORT_TOTAL[1])


def investment_revalue(*, investment: Investment, reason: str = "recomputed",
                       edited: bool = False, rerank: bool = True,
                       shrink: float | None | bool = False) -> Investment:
    """Recompute an investment's expected value from its sources; keep the history. Every
    stored figure stays in its domain (README "Number domains"). Its change time moves when a
    figure or its sources changed, or when ``edited`` (the caller saved other fields); with
    ``rerank`` the workspace's ranks follow (planner.changes). ``shrink``: the workspace's
    forecast shrink factor when the caller knows it (False: look it up)."""
    parts = _segment_figures(investment)
    if parts:
        reach, value = combine_segments(parts)
    else:
        r = float(investment.assumed_reach or 0)
        v = float(investment.assumed_value_per_user or 0)
        reach = Figure(r, r, r, "investment assumption" if investment.assumed_reach else
                       "missing: no target segment snapshot and no assumed reach")
        value = Figure(v, v, v, "investment assumption" if investment.assumed_value_per_user
                       else "missing: no snapshot value and no assumed value per user")
    if shrink is False:
        shrink = _shrink_factor(investment.workspace)
    factor = shrink if isinstance(shrink, float) else None  # 0.0 shrinks to nothing
    lift, probability, hypothesis = _lift_figures(investment, factor)
    mapping, basis = _mapping_figure(investment, hypothesis)
    horizon = float(investment.horizon_months) if investment.value_basis == ValueBasis.ARPU else 1.0
    result, capped = _in_domain(value_investment(
        reach=reach, adoption=investment.adoption, value_per_user=value, lift=lift,
        probability=probability, horizon_factor=horizon, mapping=mapping, mapping_trace=basis))
    result.sources["forecast_shrink"] = {
        "on": bool(investment.workspace.shrink_forecasts), "factor": factor,
        "applied": factor is not None and hypothesis is not None
        and hypothesis.measured_lift is None}
    changed = (round(result.expected_value, 6), round(result.low, 6), round(result.high, 6)) != (
        round(investment.expected_value, 6), round(investment.value_low, 6),
        round(investment.value_high, 6)) or investment.value_computed_at is None
    before = (investment.value_sources, investment.reach_users, investment.effort_total)
    investment.expected_value = result.expected_value
    investment.value_low = result.low
    investment.value_high = result.high
    investment.value_sources = {**result.sources, "stale": result.stale,
                                **({"capped": capped} if capped else {})}
    investment.value_computed_at = timezone.now()
    users = reach.estimate * investment.adoption
    investment.reach_users = min(max(users, REACH_USERS[0]), REACH_USERS[1]) \
        if math.isfinite(users) else 0.0
    investment.effort_total = _effort_total(investment.effort)
    moved = edited or changed or before != (investment.value_sources, investment.reach_users,
                                            investment.effort_total)
    if moved:
        investment.changed_at = investment.value_computed_at
    page_cache.forget(investment.workspace_id)  # an update() sends no save signal
    Investment.objects.filter(pk=investment.pk).update(
        expected_value=result.expected_value, value_low=result.low, value_high=result.high,
        value_sources=investment.value_sources, value_computed_at=investment.value_computed_at,
        reach_users=investment.reach_users, effort_total=investment.effort_total,
        changed_at=investment.changed_at)
    backlog_touched(investment.workspace_id)
    if rerank and (moved or investment.rank is None):
        investments_rerank(workspace_id=investment.workspace_id,
                           now=investment.value_computed_at)
    if changed:
        ValueEstimate.objects.create(investment=investment, expected_value=result.expected_value,
                                     value_low=result.low, value_high=result.high,
                                     sources=investment.value_sources, reason=reason[:200])
        webhooks.notify_investment_changed(investment=investment, reason=reason)
    return investment


def workspace_revalue(*, workspace: Workspace, reason: str) -> int:
    """Recompute every investment of a workspace (after a refresh or a concluded experiment)."""
    count = 0
    shrink = _shrink_factor(workspace)
    for investment in Investment.objects.filter(workspace=workspace).select_related(
            "workspace", "value_model").prefetch_related("target_segments", "hypotheses"):
        investment_revalue(investment=investment, reason=reason, shrink=shrink,
                           rerank=False)
        count += 1
    investments_rerank(workspace_id=workspace.pk)  # once, after every value moved
    return count


# ----- dependencies --------------------------------------------------------------------------
def dependency_problem(investment: Investment | None, depends_on: Any) -> str | None:
    """Why ``investment`` cannot depend on ``depends_on`` (itself, or a cycle through the
    workspace's other dependencies, named item by item), or None. A new item has none: nothing
    depends on it yet."""
    if investment is None or investment.pk is None:
        return None
    deps = list(depends_on)
    if any(dep.pk == investment.pk for dep in deps):
        return f"{investment.label} cannot depend on itself"
    through = Investment.depends_on.through
    edges: dict[int, list[int]] = {}
    for src, dst in (through.objects.filter(from_investment__workspace_id=investment.workspace_id)
                     .exclude(from_investment_id=investment.pk)
                     .order_by("from_investment_id", "to_investment_id")
                     .values_list("from_investment_id", "to_investment_id")):
        edges.setdefault(src, []).append(dst)
    # Breadth first from each new prerequisite: the shortest way back to the item.
    for dep in deps:
        came_from: dict[int, int] = {dep.pk: investment.pk}
        queue = deque([dep.pk])
        while queue:
            node = queue.popleft()
            for nxt in edges.get(node, []):
                if nxt in came_from:
                    continue
                came_from[nxt] = node
                if nxt == investment.pk:
                    path = [nxt]
                    while path[-1] != dep.pk:
                        path.append(came_from[path[-1]])
                    path.append(investment.pk)
                    path.reverse()
                    titles = dict(Investment.objects.filter(pk__in=path).values_list("pk",
                                                                                    "title"))
                    return "dependency cycle: " + " -> ".join(f"#{pk} '{titles[pk]}'"
                                                              for pk in path)
                queue.append(nxt)
    return None


# ----- optimizer runs ------------------------------------------------------------------------
def scenario_problem(scenario: Scenario) -> dict[str, Any]:
    """The full, reproducible input of a run: every item with its figures at this moment."""
    investments = list(Investment.objects.filter(workspace=scenario.workspace).exclude(
        status__in=[InvestmentStatus.REJECTED, InvestmentStatus.DONE]).prefetch_related(
        "target_segments", "depends_on", "hypotheses").order_by("pk"))
    ids = {i.pk for i in investments}
    # Approved on the current roadmap version: must-do unless the council revokes them.
    kept = _approved_on_roadmap(scenario.workspace_id) if scenario.keep_approved else set()
    groups: dict[str, list[str]] = {}
    items = []
    for inv in investments:
        if inv.exclusion_group:
            groups.setdefault(inv.exclusion_group, []).append(str(inv.pk))
        items.append({
            "id": str(inv.pk), "roadmap": inv.roadmap, "cost": inv.cost,
            "value": inv.expected_value, "value_low": inv.value_low,
            "value_high": inv.value_high, "effort": inv.effort,
            "segments": [str(s.pk) for s in inv.target_segments.all()],
            "depends_on": [str(d.pk) for d in inv.depends_on.all() if d.pk in ids],
            "must_do": inv.must_do or (inv.pk in kept and not inv.must_not),
            "must_not": inv.must_not,
            "duration": inv.duration_quarters,
            "hypotheses": sorted(str(h.pk) for h in inv.hypotheses.all()
                                 if h.status != HypothesisStatus.INVALIDATED),
            **({"kept_approved": True} if inv.pk in kept else {}),
        })
    shares = scenario.shares or {k: list(v) for k, v in DEFAULT_SHARES.items()}
    return {
        "items": items, "budget": scenario.budget, "shares": shares,
        "capacity": scenario.capacity, "quarters": scenario.quarters,
        "exclusions": [g for g in groups.values() if len(g) > 1],
        "min_coverage": scenario.min_coverage, "schedule": scenario.schedule,
        "time_limit": scenario.time_limit, "robust_draws": scenario.robust_draws,
        "frontier_points": scenario.frontier_points, "keep_approved": scenario.keep_approved,
        # What each item's figures rest on, for telling later whether the run is stale.
        "basis": inputs_basis(scenario.workspace_id, investments),
        "information": information_inputs(items),
    }


def information_inputs(items: list[dict[str, Any]]) -> dict[str, Any]:
    """What the value of information reads besides the items: each linked hypothesis's lift
    uncertainty and each designed experiment's standard error at its planned sample size."""
    linked: dict[str, list[str]] = {}
    for item in items:
        for hyp in item.get("hypotheses", ()):
            linked.setdefault(hyp, []).append(item["id"])
    hypotheses = []
    for hyp in Hypothesis.objects.filter(pk__in=[int(k) for k in linked]).order_by("pk"):
        if hyp.measured_lift is not None:
            sd = voi.lift_sd(hyp.measured_lift_low, hyp.measured_lift_high) * voi.Z90 / Z95
            source = "measured lift's 95% interval"
        else:
            sd = voi.lift_sd(hyp.expected_lift_low, hyp.expected_lift_high)
            source = "expected lift's interval, read as 90%"
        hypotheses.append({"id": str(hyp.pk), "label": hyp.statement[:120],
                           "items": linked[str(hyp.pk)], "lift_sd": sd, "lift_sd_source": source})
    experiments = []
    for x in Experiment.objects.filter(
            hypothesis_id__in=[int(k) for k in linked],
            status__in=[ExperimentStatus.DESIGN, ExperimentStatus.RUNNING]).order_by("pk"):
        mde = (x.design or {}).get("effective_mde")
        if not isinstance(mde, int | float) or not mde > 0:
            continue  # no power calculation yet: no planned sample size to value
        experiments.append({
            "id": str(x.pk), "label": x.name, "hypothesis": str(x.hypothesis_id),
            "se": voi.design_se(float(mde), x.alpha, x.power), "cost": x.cost,
            "total_n": (x.design or {}).get("total_n"),
            "se_source": f"power calculation: effective MDE {mde:.4g} at alpha {x.alpha:g}, "
                         f"power {x.power:g}"})
    return {"hypotheses": hypotheses, "experiments": experiments}


def _approved_on_roadmap(workspace_id: int) -> set[int]:
    """Investments approved on the workspace's current roadmap version."""
    version = (RoadmapVersion.objects.filter(workspace_id=workspace_id).order_by("-number")
               .values_list("pk", flat=True).first())
    if version is None:
        return set()
    return set(RoadmapItem.objects.filter(version_id=version, state=ItemState.APPROVE)
               .values_list("investment_id", flat=True))


def build_problem(inputs: dict[str, Any], budget: float | None = None,
                  names: dict[str, str] | None = None) -> Problem:
    """The pure optimizer's Problem from stored run inputs (``names``: titles for its words)."""
    items = tuple(Item(id=i["id"], roadmap=i["roadmap"], cost=i["cost"], value=i["value"],
                       value_low=i.get("value_low"), value_high=i.get("value_high"),
                       effort=i.get("effort") or {}, segments=tuple(i.get("segments", ())),
                       depends_on=tuple(i.get("depends_on", ())), must_do=i.get("must_do", False),
                       must_not=i.get("must_not", False), duration=i.get("duration", 1))
                  for i in inputs["items"])
    capacity = {}
    for key, value in (inputs.get("capacity") or {}).items():
        team, _, quarter = key.partition("|")
        capacity[(team, quarter)] = float(value)
    return Problem(
        items=items, budget=float(inputs["budget"] if budget is None else budget),
        shares={k: (float(v[0]), float(v[1])) for k, v in inputs["shares"].items()},
        capacity=capacity, quarters=tuple(inputs.get("quarters") or ()),
        exclusions=tuple(tuple(g) for g in inputs.get("exclusions", ())),
        min_coverage={k: int(v) for k, v in (inputs.get("min_coverage") or {}).items()},
        schedule=bool(inputs.get("schedule")), time_limit=float(inputs.get("time_limit", 30)),
        names=names or {},
    )


def scenario_check(scenario: Scenario) -> None:
    """The scenario's numbers, JSON and memory estimate as its model checks them at save (a
    row written before the domains existed, or items added since): PlannerInvalid."""
    try:
        scenario.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise PlannerInvalid("scenario" if field == NON_FIELD_ERRORS else field,
                             messages[0]) from None


def run_start(*, scenario: Scenario, user: object | None = None) -> OptimizationRun:
    """Snapshot the scenario's inputs and queue the optimizer (one run per identical input).
    A scenario its model would refuse now, or whose run would exceed the job memory budget,
    is refused (PlannerInvalid) before any run or job exists."""
    scenario_check(scenario)
    inputs = scenario_problem(scenario)
    input_hash = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    try:
        with transaction.atomic():
            # The scenario row lock serializes concurrent starts: the second waits, then reuses.
            Scenario.objects.select_for_update().filter(pk=scenario.pk).first()
            same = (OptimizationRun.objects.filter(scenario=scenario, input_hash=input_hash)
                    .exclude(status="failed").exclude(job__state=JobState.FAILED).first())
            if same is not None:
                return same
            try:
                build_problem(inputs)
            except (ProblemError, ValueError, TypeError, KeyError) as exc:
                raise JobFailed(f"the scenario cannot be optimized: {exc}") from None
            run = OptimizationRun.objects.create(workspace=scenario.workspace, scenario=scenario,
                                                 input_hash=input_hash, inputs=inputs,
                                                 created_by=user, status="queued")
            run.job = job_create(workspace=scenario.workspace, kind="optimize", user=user,
                                 params={"run_id": run.pk}, input_hash=input_hash)
            run.save(update_fields=["job"])
    except BrokerUnavailable as exc:
        OptimizationRun.objects.filter(scenario=scenario, input_hash=input_hash,
                                       status="queued", job__state=JobState.FAILED).update(
            status="failed", finished_at=timezone.now(), plan={"error": str(exc)})
        raise
    return run


def frontier_budgets(inputs: dict[str, Any], points: int) -> list[float]:
    total = sum(i["cost"] for i in inputs["items"] if not i.get("must_not"))
    top = max(total, float(inputs["budget"]))
    return [round(top * (k + 1) / points, 2) for k in range(points)]


# Errors after which the task runs the job again (jobs.tasks): the run waits for that attempt.
TRANSIENT = (OperationalError, InterfaceError, ConnectionError, TimeoutError)


def _run_failed(run_id: int, reason: str, finished_at: Any = None) -> None:
    OptimizationRun.objects.filter(pk=run_id, finished_at__isnull=True).update(
        status="failed", finished_at=finished_at or timezone.now(), plan={"error": reason[:2000]})


def runs_follow_jobs(runs: QuerySet[OptimizationRun]) -> None:
    """Runs whose job failed where the handler could not say so (the task gave up after its
    retries, the broker was lost) fail too, with the job's reason; called where runs are read,
    so no run stays queued after its job has ended."""
    for pk, error, finished in runs.filter(finished_at__isnull=True,
                                           job__state=JobState.FAILED).values_list(
            "pk", "job__error", "job__finished_at"):
        first = (error or "no reason recorded").strip().splitlines()[0]
        _run_failed(pk, f"the optimizer job failed: {first}", finished)


@job_handler("optimize")
def run_optimize(job: Job) -> dict[str, Any]:
    """Solve the stored inputs; frontier and robust mode when asked; store allocations. The
    run follows the job: running while it runs, failed with the reason when it fails."""
    run = OptimizationRun.objects.get(pk=job.params["run_id"])
    if run.finished_at is not None:
        return {"run_id": run.pk, "reused": True}
    OptimizationRun.objects.filter(pk=run.pk, finished_at__isnull=True).update(status="running")
    try:
        return _optimize(job, run)
    except TRANSIENT:
        raise  # the job is queued again; a job that gives up fails its run (runs_follow_jobs)
    except JobFailed as exc:
        _run_failed(run.pk, str(exc))
        raise
    except ProblemError as exc:
        _run_failed(run.pk, f"the scenario cannot be optimized: {exc}")
        raise JobFailed(f"the scenario cannot be optimized: {exc}") from None
    except Exception as exc:
        _run_failed(run.pk, f"the optimizer failed: {type(exc).__name__}: {exc}")
        raise


def _optimize(job: Job, run: OptimizationRun) -> dict[str, Any]:
    titles = dict(Investment.objects.filter(pk__in=[int(i["id"]) for i in run.inputs["items"]])
                  .values_list("pk", "title"))
    problem = build_problem(run.inputs, names={str(pk): t for pk, t in titles.items()})
    job_progress(job, 10, f"solving {len(problem.items)} items")
    plan = solve(problem)
    points: list[dict[str, Any]] = []
    if run.inputs.get("frontier_points") and plan.status != "infeasible":
        job_progress(job, 50, "efficient frontier")
        budgets = frontier_budgets(run.inputs, int(run.inputs["frontier_points"]))
        points = [p.to_dict() for p in frontier(problem, budgets)]
    robust_result: dict[str, Any] = {}
    if run.inputs.get("robust_draws") and plan.status != "infeasible":
        job_progress(job, 70, f"robust mode: {run.inputs['robust_draws']} draws")
        result, sampled = robust_sampled(problem, draws=int(run.inputs["robust_draws"]), seed=0,
                                         quantile=0.1)
        robust_result = result.to_dict()
        if sampled is not None:
            job_progress(job, 85, "value of information")
            robust_result["voi"] = information_value(problem, sampled, run.inputs)
    job_progress(job, 90, "storing the allocation")
    data = plan.to_dict()
    chosen = set(plan.chosen)
    inclusion = robust_result.get("inclusion_probability", {})
    with transaction.atomic():
        Allocation.objects.filter(run=run).delete()
        Allocation.objects.bulk_create([
            Allocation(run=run, investment_id=int(i.id), roadmap=i.roadmap, chosen=i.id in chosen,
                       start_quarter=plan.schedule.get(i.id, ""), cost=i.cost, value=i.value,
                       inclusion_probability=inclusion.get(i.id),
                       entry_value=_finite(plan.entry_values.get(i.id)))
            for i in problem.items
        ])
        _information_onto_rows(run, robust_result.get("voi"))
        fault_point("optimize-in-transaction")
        OptimizationRun.objects.filter(pk=run.pk).update(
            status=plan.status, proven_optimal=plan.proven_optimal, gap=plan.gap,
            objective=plan.objective, best_bound=plan.best_bound, plan=data, frontier=points,
            robust=robust_result, finished_at=timezone.now())
    return {"run_id": run.pk, "status": plan.status, "chosen": len(chosen)}


def information_value(problem: Problem, sampled: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    """The value of information of a run (``robust["voi"]``), or ``{"error", "field"}`` when
    nothing is uncertain."""
    info = inputs.get("information") or {}
    hypotheses = [voi.Hypothesis(id=h["id"], items=tuple(h["items"]), lift_sd=h["lift_sd"],
                                 label=h.get("label", "")) for h in info.get("hypotheses", [])]
    trials = [voi.Trial(id=x["id"], hypothesis=x["hypothesis"], se=x["se"], cost=x.get("cost"),
                        label=x.get("label", "")) for x in info.get("experiments", [])]
    try:
        result = voi.value_of_information(problem, sampled, hypotheses=hypotheses, tests=trials,
                                          time_limit=problem.time_limit)
    except voi.VoiError as exc:
        return {"error": exc.message, "field": exc.field}
    data = result.to_dict()
    sources = {x["id"]: x for x in info.get("experiments", [])}
    for row in data["experiments"]:
        row["se_source"] = sources.get(row["id"], {}).get("se_source", "")
        row["total_n"] = sources.get(row["id"], {}).get("total_n")
    return data


def run_information(run: OptimizationRun) -> dict[str, Any]:
    """A finished run's value of information; PlannerInvalid naming the field to change when
    it has none (no robust draws, nothing uncertain, no feasible plan, not finished)."""
    if run.finished_at is None:
        raise PlannerInvalid("run", f"run #{run.pk} has not finished: ask again when it has")
    draws = int((run.inputs or {}).get("robust_draws") or 0)
    if draws == 0:
        raise PlannerInvalid("robust_draws", (
            f"scenario '{run.scenario.name}' ran with robust_draws = 0: the value of information "
            "is computed from robust mode's value draws; set robust_draws (e.g. 200) and run "
            "again"))
    data = (run.robust or {}).get("voi")
    if not data:
        raise PlannerInvalid("scenario", (
            f"run #{run.pk} has no value of information: its plan is {run.status or 'missing'}"
            if run.status in ("infeasible", "failed", "not_solved") else
            f"run #{run.pk} was made before the value of information existed: run the "
            "scenario again"))
    if "error" in data:
        raise PlannerInvalid(data.get("field") or "scenario", data["error"])
    return data


def _information_onto_rows(run: OptimizationRun, data: dict[str, Any] | None) -> None:
    """Copy each hypothesis's EVPPI and each experiment's EVSI onto its row, with the run they
    come from (the pages of the lower apps read them there)."""
    if not data or "error" in data:
        return
    where = {"run": run.pk, "scenario": run.scenario.name, "draws": data["draws"],
             "method": data["method"], "evpi": data["evpi"],
             "computed_at": timezone.now().isoformat()}
    for row in data["hypotheses"]:
        Hypothesis.objects.filter(pk=int(row["id"]), workspace=run.workspace).update(
            information={**where, "evppi": row["evppi"], "se": row["se"],
                         "share_of_evpi": row["share_of_evpi"], "items": row["items"]})
    ranked = sum(1 for row in data["experiments"] if row.get("rank"))
    for row in data["experiments"]:
        Experiment.objects.filter(pk=int(row["id"]), workspace=run.workspace).update(
            information={**where, **{k: row.get(k) for k in (
                "evsi", "se", "evsi_per_cost", "evsi_per_cost_se", "rank", "resolved_share",
                "se_lift", "prior_sd", "cost", "se_source", "total_n")}, "ranked": ranked,
                "core_value_per_cost": data["core_margin"].get("value_per_cost")})


def _finite(value: float | None) -> float | None:
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None
    return float(value)


# ----- decisions and exports -----------------------------------------------------------------
VERDICT_STATUS = {Verdict.APPROVE: InvestmentStatus.APPROVED, Verdict.DEFER:
                  InvestmentStatus.DEFERRED, Verdict.REJECT: InvestmentStatus.REJECTED}


def decision_record(*, run: OptimizationRun, investment: Investment, verdict: str,
                    rationale: str, user: object | None) -> Decision:
    """The council's verdict on one item of a run; the investment's status follows it."""
    if not rationale.strip():
        raise ValueError("a decision needs a rationale")
    if not Allocation.objects.filter(run=run, investment=investment).exists():
        raise ValueError("the investment is not part of this run")
    with transaction.atomic():
        decision = Decision.objects.create(workspace=run.workspace, run=run, investment=investment,
                                           verdict=verdict, rationale=rationale.strip(),
                                           decided_by=user)
        now = timezone.now()
        audit.record_bulk(Investment.objects.filter(pk=investment.pk),  # status: audited
                          {"status": VERDICT_STATUS[verdict], "updated_at": now,
                           "changed_at": now}, user)
        webhooks.notify_decision(decision=decision)
    return decision


def approved_roadmap(run: OptimizationRun) -> list[dict[str, Any]]:
    """Items of a run whose latest decision is 'approve', with their allocation."""
    latest: dict[int, Decision] = {}
    for d in run.decisions.order_by("decided_at", "id").select_related("decided_by"):
        latest[d.investment_id] = d
    rows = []
    for alloc in run.allocations.select_related("investment").order_by("roadmap", "-value"):
        decision = latest.get(alloc.investment_id)
        if decision is None or decision.verdict != Verdict.APPROVE:
            continue
        rows.append({
            "investment_id": alloc.investment_id, "title": alloc.investment.title,
            "roadmap": alloc.roadmap, "cost": alloc.cost, "expected_value": alloc.value,
            "start_quarter": alloc.start_quarter, "chosen_by_optimizer": alloc.chosen,
            "rationale": decision.rationale,
            "decided_by": decision.decided_by.username if decision.decided_by else "",
            "decided_at": decision.decided_at.isoformat(),
        })
    return rows


def to_csv(rows: list[dict[str, Any]]) -> str:
    """CSV text of dict rows, formula-injection safe (``safe_cell``)."""
    out = io.StringIO()
    if not rows:
        return ""
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    for row in rows:
        writer.writerow({k: safe_cell(v) for k, v in row.items()})
    return out.getvalue()


def revalue_hypothesis_investments(hypothesis: Hypothesis, reason: str) -> None:
    """A hypothesis changed (edit, status, concluded experiment): re-value the investments
    resting on it; a conclusion moves the team's calibration, so with forecast shrinking on,
    every investment of the workspace is re-valued."""
    if hypothesis.workspace.shrink_forecasts:
        workspace_revalue(workspace=hypothesis.workspace, reason=reason)
        return
    for investment in hypothesis.investments.select_related("workspace", "value_model"):
        investment_revalue(investment=investment, reason=reason, rerank=False)
    investments_rerank(workspace_id=hypothesis.workspace_id)


def workspace_set_shrink(*, workspace: Workspace, on: bool) -> Workspace:
    """Turn forecast shrinking on or off; every investment is re-valued in the same
    transaction (its provenance says whether and by how much its forecast was shrunk)."""
    with transaction.atomic():
        workspace.shrink_forecasts = on
        workspace.save(update_fields=["shrink_forecasts"])
        workspace_revalue(workspace=workspace, reason="forecast shrinking turned "
                                                      + ("on" if on else "off"))
    return workspace


# ----- value models ----------------------------------------------------------------------------
def value_model_check(value_model: ValueModel) -> None:
    """The model's own checks (fields, interval, source), as PlannerInvalid by field."""
    try:
        value_model.full_clean(exclude=["workspace"], validate_unique=False,
                               validate_constraints=False)
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise PlannerInvalid("value_model" if field == NON_FIELD_ERRORS else field,
                             messages[0]) from None


def value_model_save(*, value_model: ValueModel, reason: str = "value model saved") -> ValueModel:
    """Check and save a value model (measuring it when it is measured and its inputs changed),
    then re-value the investments that use it: one transaction, nothing half-saved."""
    if value_model.kind == MappingKind.IDENTITY:
        value_model.low = value_model.mid = value_model.high = 1.0
    if value_model.kind != MappingKind.MEASURED:
        value_model.fit, value_model.measured_at = {}, None
    value_model_check(value_model)
    with transaction.atomic():
        if value_model.kind == MappingKind.MEASURED:
            _measure(value_model)
        value_model.save()
        for investment in value_model.investments.select_related("workspace", "value_model"):
            investment_revalue(investment=investment, reason=f"{reason}: '{value_model.name}'")
    return value_model


def _measure(value_model: ValueModel) -> None:
    """Fit the mapping on the segment's users: the metric from signup against revenue in the
    first ``value_days`` days, users whose both windows have ended."""
    segment = value_model.segment
    if segment is None or segment.workspace_id != value_model.workspace_id:
        raise PlannerInvalid("segment", "a measured mapping needs a segment of this workspace")
    try:
        spec = MetricSpec.from_dict(value_model.metric_spec or {}, "metric_spec")
    except ExperimentDataError as exc:
        raise PlannerInvalid(exc.field, exc.message) from None
    if spec.kind == "ratio":
        raise PlannerInvalid("metric_spec.kind", "measure a conversion, count or revenue metric")
    ue = load_user_events(segment.dataset)
    as_of = int(ue.time.max()) + 1 if ue.n_events else 0
    day = 86_400_000_000
    need = int(round(max(spec.window_days, value_model.value_days) * day))
    try:
        mask = segment_members_mask(segment, ue)
    except JobFailed as exc:  # a segment with no snapshot yet
        raise PlannerInvalid("segment", str(exc)) from None
    users = np.flatnonzero(mask & (ue.signup + need <= as_of))
    x = metric_values(ue, users, ue.signup[users], spec)
    y = revenue_since_signup(ue, as_of, days=value_model.value_days)[users]
    try:
        fit = measure_mapping(x, y)
    except MappingInvalid as exc:
        raise PlannerInvalid(exc.field, exc.message) from None
    value_model.low, value_model.mid, value_model.high = fit.low, fit.elasticity, fit.high
    for name in ("low", "mid", "high"):
        value = getattr(value_model, name)
        if not (math.isfinite(value) and -100 <= value <= 100):
            raise PlannerInvalid("metric_spec", f"the measured elasticity's {name} ({value:g}) "
                                                "is outside -100..100: the relation is too weak "
                                                "or too noisy to use")
    value_model.fit = stats_jsonable({
        **fit.to_dict(), "n_users": int(len(users)), "segment": segment.name,
        "segment_id": segment.pk, "dataset_version": segment.dataset.version,
        "metric": spec.to_dict(), "value": f"revenue in the first {value_model.value_days} days "
                                           "after signup",
        "users": "segment members whose metric window and value window have both ended"})
    value_model.measured_at = timezone.now()


def value_model_delete(*, value_model: ValueModel) -> None:
    """Delete a value model; the investments that used it are re-valued without it."""
    with transaction.atomic():
        investments = list(value_model.investments.all())
        value_model.delete()
        for investment in investments:
            investment.value_model = None
            investment_revalue(investment=investment,
                               reason=f"value model '{value_model.name}' deleted")
