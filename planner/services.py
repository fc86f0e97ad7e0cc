"""Planner writes: value investments from their sources, run the optimizer, record decisions."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections import deque
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import QuerySet
from django.utils import timezone

import audit
from accounts.models import Workspace
from events.errors import FieldError
from experiments.models import PROBABILITY_OF_SUCCESS, Evidence, Hypothesis, HypothesisStatus
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
from segments.models import Refresh, SegmentSnapshot

from . import page_cache
from .models import (
    EFFORT_TOTAL,
    REACH_USERS,
    VALUE,
    Allocation,
    Decision,
    Investment,
    InvestmentStatus,
    ItemState,
    OptimizationRun,
    RoadmapItem,
    RoadmapVersion,
    Scenario,
    ValueBasis,
    ValueEstimate,
    Verdict,
)
from .optimizer import DEFAULT_SHARES, Item, Problem, ProblemError, frontier, robust, solve
from .roadmap_formats import safe_cell
from .valuation import Figure, Valuation, combine_segments, value_investment


class PlannerInvalid(FieldError):
    """A planner input refused: ``field`` names where, ``message`` says what."""

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


def _lift_figures(investment: Investment) -> tuple[Figure, Figure]:
    """(lift, probability of success) from the strongest hypothesis, else the assumption."""
    hyps = list(investment.hypotheses.all())
    invalidated = [h for h in hyps if h.status == HypothesisStatus.INVALIDATED]
    live = [h for h in hyps if h.status != HypothesisStatus.INVALIDATED]
    if live:
        def strength(h):  # type: ignore[no-untyped-def]
            return (h.measured_lift is not None, EVIDENCE_ORDER.index(h.evidence))

        best = max(live, key=strength)
        if best.measured_lift is not None:
            lift = Figure.around(best.measured_lift, best.measured_lift_low,
                                 best.measured_lift_high,
                                 f"experiment estimate on hypothesis #{best.pk} '{best.statement}'")
            evidence = best.evidence if best.evidence in (Evidence.EXPERIMENT,
                                                          Evidence.REPLICATED) \
                else Evidence.EXPERIMENT
        else:
            lift = Figure.around(best.expected_lift, best.expected_lift_low,
                                 best.expected_lift_high,
                                 f"expected lift of hypothesis #{best.pk} '{best.statement}'")
            evidence = best.evidence
        p = PROBABILITY_OF_SUCCESS[evidence]
        return lift, Figure(p, p, p, f"evidence level '{evidence}' of hypothesis #{best.pk}")
    stale = bool(invalidated)
    if investment.assumed_lift is not None:
        p = PROBABILITY_OF_SUCCESS[Evidence.ASSUMPTION]
        note = "; its hypothesis was invalidated" if stale else ""
        return (Figure(investment.assumed_lift, investment.assumed_lift, investment.assumed_lift,
                       "investment assumption" + note, stale),
                Figure(p, p, p, "no evidence: an assumption"))
    reason = "hypothesis invalidated" if stale else "no hypothesis and no assumed lift"
    return Figure(0.0, 0.0, 0.0, reason, stale), Figure(0.0, 0.0, 0.0, reason, stale)


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
    values = effort.values() if isinstance(effort, dict) else ()
    total = math.fsum(float(v) for v in values if isinstance(v, int | float)
                      and not isinstance(v, bool) and math.isfinite(v) and v > 0)
    return 0.0 if total < EFFORT_TOTAL[0] else min(total, EFFORT_TOTAL[1])


def investment_revalue(*, investment: Investment, reason: str = "recomputed") -> Investment:
    """Recompute an investment's expected value from its sources; keep the history. Every
    stored figure stays in its domain (README "Number domains")."""
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
    lift, probability = _lift_figures(investment)
    horizon = float(investment.horizon_months) if investment.value_basis == ValueBasis.ARPU else 1.0
    result, capped = _in_domain(value_investment(
        reach=reach, adoption=investment.adoption, value_per_user=value, lift=lift,
        probability=probability, horizon_factor=horizon))
    changed = (round(result.expected_value, 6), round(result.low, 6), round(result.high, 6)) != (
        round(investment.expected_value, 6), round(investment.value_low, 6),
        round(investment.value_high, 6)) or investment.value_computed_at is None
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
    page_cache.forget(investment.workspace_id)  # an update() sends no save signal
    Investment.objects.filter(pk=investment.pk).update(
        expected_value=result.expected_value, value_low=result.low, value_high=result.high,
        value_sources=investment.value_sources, value_computed_at=investment.value_computed_at,
        reach_users=investment.reach_users, effort_total=investment.effort_total)
    if changed:
        ValueEstimate.objects.create(investment=investment, expected_value=result.expected_value,
                                     value_low=result.low, value_high=result.high,
                                     sources=investment.value_sources, reason=reason[:200])
        webhooks.notify_investment_changed(investment=investment, reason=reason)
    return investment


def workspace_revalue(*, workspace: Workspace, reason: str) -> int:
    """Recompute every investment of a workspace (after a refresh or a concluded experiment)."""
    count = 0
    for investment in Investment.objects.filter(workspace=workspace).prefetch_related(
            "target_segments", "hypotheses"):
        investment_revalue(investment=investment, reason=reason)
        count += 1
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
        "target_segments", "depends_on").order_by("pk"))
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
    }


def _approved_on_roadmap(workspace_id: int) -> set[int]:
    """Investments approved on the workspace's current roadmap version."""
    version = (RoadmapVersion.objects.filter(workspace_id=workspace_id).order_by("-number")
               .values_list("pk", flat=True).first())
    if version is None:
        return set()
    return set(RoadmapItem.objects.filter(version_id=version, state=ItemState.APPROVE)
               .values_list("investment_id", flat=True))


def build_problem(inputs: dict[str, Any], budget: float | None = None) -> Problem:
    """The pure optimizer's Problem from stored run inputs."""
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
    problem = build_problem(run.inputs)
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
        robust_result = robust(problem, draws=int(run.inputs["robust_draws"]), seed=0,
                               quantile=0.1).to_dict()
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
        fault_point("optimize-in-transaction")
        OptimizationRun.objects.filter(pk=run.pk).update(
            status=plan.status, proven_optimal=plan.proven_optimal, gap=plan.gap,
            objective=plan.objective, best_bound=plan.best_bound, plan=data, frontier=points,
            robust=robust_result, finished_at=timezone.now())
    return {"run_id": run.pk, "status": plan.status, "chosen": len(chosen)}


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
        audit.record_bulk(Investment.objects.filter(pk=investment.pk),  # status: audited
                          {"status": VERDICT_STATUS[verdict], "updated_at": timezone.now()}, user)
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
    resting on it."""
    for investment in hypothesis.investments.all():
        investment_revalue(investment=investment, reason=reason)
