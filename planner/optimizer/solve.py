"""Public entry points: ``solve`` a portfolio and sweep its efficient ``frontier``."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from .binding import analyse
from .engine import Outcome, Session, relative_gap
from .explain import explain_with
from .formulate import Formulation, build
from .report import capacity_summary, roadmap_summary
from .types import FrontierPoint, Plan, Problem, rounded_value

MARGINAL_NOTE = ("LP relaxation dual values; an approximation of the value of one more unit "
                 "(of budget, or of a team's effort), valid for small changes")
DEFAULT_ENTRY_LIMIT = 50
BINDING_MIN_SECONDS = 1.0
# A chart's points and the entry values' re-solves are not worth an exact proof each.
FRONTIER_GAP = 1e-4
ENTRY_GAP = 1e-4


def _ratio(value: float, cost: float) -> float:
    return math.inf if cost <= 0 else value / cost


def chosen_from(form: Formulation, session: Session,
                col_value: np.ndarray) -> tuple[tuple[str, ...], dict[str, int]]:
    """The chosen item ids and, when scheduling, each one's start quarter index."""
    picked = col_value[np.maximum(session.x_col, 0)] > 0.5
    picked &= session.x_col >= 0
    chosen = tuple(item_id for item_id, flag in zip(form.ids, picked.tolist(), strict=True)
                   if flag)
    starts: dict[str, int] = {}
    if form.problem.schedule:
        for item_id in chosen:
            for s, col in session.y_cols.get(item_id, []):
                if col_value[col] > 0.5:
                    starts[item_id] = s
                    break
    return chosen, starts


def _marginals(form: Formulation, session: Session, outcome: Outcome) -> dict[str, object]:
    duals = outcome.row_dual
    result: dict[str, object] = {"budget": None, "capacity": {}, "note": MARGINAL_NOTE}
    if duals is None or len(duals) == 0:
        result["note"] = MARGINAL_NOTE + " (unavailable: the LP relaxation was not solved)"
        return result
    # For a <= row of a maximization, HiGHS's row dual is d(objective)/d(right-hand side).
    budget_rows = session.rows(("budget",))
    if budget_rows:
        result["budget"] = float(duals[budget_rows[0]])
    capacity: dict[object, float] = {}
    for group in form.rows:
        if group[0] == "capacity":
            key = group[1] if len(group) == 2 else (group[1], group[2])
            capacity[key] = float(duals[session.rows(group)[0]])
    result["capacity"] = capacity
    return result


def _blocked_items(form: Formulation) -> set[str]:
    """Items no value can bring in: must-not, too long for the horizon, or depending on one."""
    problem = form.problem
    blocked = {item_id for item_id, (_, hi) in form.bounds.items() if hi < 0.5}
    deps = {item.id: item.depends_on for item in problem.items}
    changed = True
    while changed:  # propagate along dependencies (chains are short; fixed point is cheap)
        changed = False
        for item_id, prereqs in deps.items():
            if item_id not in blocked and any(p in blocked for p in prereqs):
                blocked.add(item_id)
                changed = True
    return blocked


def _entry_values(form: Formulation, session: Session, outcome: Outcome,
                  chosen: tuple[str, ...], limit: int, seconds: float,
                  notes: list[str]) -> dict[str, float | None]:
    problem = form.problem
    chosen_set = set(chosen)
    excluded = [item for item in problem.items if item.id not in chosen_set]
    blocked = _blocked_items(form)
    values: dict[str, float | None] = {}
    candidates = []
    for item in excluded:
        if item.id in blocked:
            values[item.id] = math.inf
        else:
            values[item.id] = None
            candidates.append(item)
    candidates.sort(key=lambda item: (-_ratio(item.value, item.cost), item.id))
    computed = 0
    if outcome.objective is None:
        return values
    deadline = time.perf_counter() + seconds
    # An entry value is a difference of two optima, each known only to within its solver gap:
    # it is uncertain by up to (bound - z*) + (forced bound - forced value). At the plan's gap
    # that can exceed a typical item's value, so these re-solves aim for about 1% of one
    # (between the plan's gap and a hundredth of it), the reference optimum included.
    typical = float(np.median([abs(item.value) for item in problem.items])) or 1.0
    # With the exact default (gap 0) the plan is exact; the re-solves still aim for 1% of an
    # item, from a 1e-4 base: fifty exact re-solves would not fit the time budget.
    base = problem.gap or ENTRY_GAP
    gap = min(base, max(base / 100, 0.01 * typical / max(abs(outcome.objective), 1e-9)))
    z_star, z_bound = outcome.objective, outcome.bound or outcome.objective
    if gap < problem.gap and outcome.col_value is not None:
        sharper = session.optimize(time_limit=max(0.05, deadline - time.perf_counter()),
                                   gap=gap, start=outcome.col_value)
        if sharper.objective is not None and sharper.objective >= z_star:
            z_star = sharper.objective
            z_bound = min(z_bound, sharper.bound or z_bound)
    main_slack = max(0.0, z_bound - z_star)
    widest = 0.0
    index = {item_id: k for k, item_id in enumerate(form.ids)}
    for item in candidates[:limit]:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            notes.append(f"entry values: stopped after {computed} re-solves (time budget "
                         f"{seconds:g} s)")
            break
        col = int(session.x_col[index[item.id]])
        lower, upper = session.lower[col], session.upper[col]
        cost = session.cost[col]
        # Force the item in with zero value: the best the rest can then do is F, so the item
        # breaks even at value z* - F.
        session.set_col_bounds(col, 1.0, 1.0)
        session.set_costs(np.array([col]), np.array([0.0]))
        try:
            forced = session.optimize(time_limit=min(remaining, problem.time_limit), gap=gap)
        finally:
            session.set_col_bounds(col, lower, upper)
            session.set_costs(np.array([col]), np.array([cost]))
        computed += 1
        if forced.status == "infeasible":
            values[item.id] = math.inf
        elif forced.objective is not None:
            # Never below the item's own value: it is out, so it needs at least that much.
            values[item.id] = max(item.value, z_star - forced.objective)
            forced_slack = max(0.0, (forced.bound or forced.objective) - forced.objective)
            widest = max(widest, main_slack + forced_slack)
    rest = len(candidates) - computed
    notes.append(f"entry values re-solved for {computed} excluded item(s), the best by "
                 f"value/cost (cap {limit}); {rest} other excluded item(s) not computed (None)")
    if computed and widest > 0:
        notes.append(f"entry values are exact up to the solver gaps: each is within "
                     f"{widest:.4g} (value units) of the true break-even value")
    if outcome.status != "optimal":
        notes.append("entry values are approximate: the plan itself is not proven optimal")
    return values


def plan_from(form: Formulation, session: Session, outcome: Outcome, *, build_seconds: float,
              solve_seconds: float, notes: list[str]) -> Plan:
    """Assemble a Plan from a solver outcome (without entry values or explanation)."""
    problem = form.problem
    chosen: tuple[str, ...] = ()
    starts: dict[str, int] = {}
    if outcome.col_value is not None:
        chosen, starts = chosen_from(form, session, outcome.col_value)
    by_id = problem.by_id
    objective = model_objective = None
    unit = problem.value_unit or 0.01
    if outcome.objective is not None:
        # Recomputed from the chosen items: exact, free of solver tolerances. The model counts
        # values rounded to its unit (model_objective); objective is the values as given.
        objective = math.fsum(by_id[i].value for i in chosen)
        model_objective = round(math.fsum(rounded_value(by_id[i].value, unit) for i in chosen),
                                12)
    bound = outcome.bound
    if bound is not None and model_objective is not None:
        bound = max(bound, model_objective)
    gap = relative_gap(model_objective, bound) \
        if outcome.status in ("optimal", "feasible") else None
    return Plan(
        status=outcome.status,
        proven_optimal=outcome.status == "optimal",
        objective=objective,
        best_bound=bound,
        gap=gap,
        chosen=chosen,
        by_roadmap=roadmap_summary(problem, chosen) if outcome.col_value is not None else {},
        capacity_use=capacity_summary(problem, chosen, starts if problem.schedule else None)
        if outcome.col_value is not None else {},
        schedule={i: problem.quarters[s] for i, s in starts.items()},
        build_seconds=build_seconds,
        solve_seconds=solve_seconds,
        spend=math.fsum(by_id[i].cost for i in chosen),
        solver_status=outcome.solver_status,
        method=outcome.method,
        notes=notes,
        value_unit=unit,
        model_objective=model_objective,
    )


def solve(problem: Problem, *, entry_values: int = DEFAULT_ENTRY_LIMIT,
          entry_seconds: float | None = None, marginals: bool = True,
          explain: bool = True, binding: bool = True,
          binding_seconds: float | None = None) -> Plan:
    """Choose the portfolio of maximum total value subject to every constraint of ``problem``.

    ``entry_values``: how many excluded items (the best by value/cost) get an exact entry value
    by re-solving with the item forced in (0 skips it); ``entry_seconds`` caps the time spent on
    them (default: the problem's time limit). ``explain``: explain an infeasible problem.
    ``binding``: report what binds (``binding.py``: every constraint's use, LP dual and
    re-solved gain, and why each item is in or out); ``binding_seconds`` caps its re-solves,
    together and each (default: twice the plan's solve time, at least 1 s, at most the time
    limit, and each re-solve the plan's own time, at least 0.2 s).
    """
    form = build(problem)
    started = time.perf_counter()
    session = Session(form, threads=problem.threads, time_limit=problem.time_limit)
    # The time limit covers loading the model and the first LP too.
    remaining = problem.time_limit - (time.perf_counter() - started)
    outcome = session.optimize(time_limit=max(remaining, 0.05), gap=problem.gap)
    solve_seconds = time.perf_counter() - started
    notes = list(outcome.notes)
    plan = plan_from(form, session, outcome, build_seconds=form.build_seconds,
                     solve_seconds=solve_seconds, notes=notes)
    extra: dict[str, object] = {}
    if outcome.status == "infeasible":
        if explain:
            extra["explanation"] = explain_with(form, session, time_limit=problem.time_limit)
    elif outcome.objective is not None:
        if marginals:
            extra["marginal_values"] = _marginals(form, session, outcome)
        if entry_values > 0:
            seconds = problem.time_limit if entry_seconds is None else entry_seconds
            extra["entry_values"] = _entry_values(form, session, outcome, plan.chosen,
                                                  entry_values, seconds, notes)
        if binding:
            starts = {i: problem.quarters.index(q) for i, q in plan.schedule.items()}
            # By default what binds may take as long as the plan did, twice over (at least a
            # second, at most the time limit); each re-solve gets up to the plan's own time.
            if binding_seconds is None:
                seconds = min(problem.time_limit, max(BINDING_MIN_SECONDS, 2 * solve_seconds))
                each = max(0.2, solve_seconds)
            else:
                seconds = each = binding_seconds
            extra["binding"], extra["reasons"] = analyse(
                form, session, outcome, chosen=plan.chosen, starts=starts,
                capacity_use=plan.capacity_use, notes=notes, seconds=seconds, each=each)
    if outcome.status == "feasible":
        reason = (f"the requested gap {problem.gap:g} was reached" if plan.gap is not None
                  and plan.gap <= problem.gap else f"time limit {problem.time_limit:g} s reached")
        notes.append(f"{reason}: not proven exact; the plan is {plan.proof}"
                     if plan.gap is not None else "time limit reached before a bound was proven")
    elif outcome.status == "not_solved":
        notes.append(f"no solution found within the time limit of {problem.time_limit:g} s "
                     f"({outcome.solver_status}); infeasibility was not proven either")
    return replace(plan, **extra)  # type: ignore[arg-type]


def default_budgets(problem: Problem, points: int = 10) -> list[float]:
    """Evenly spaced budgets from 25% to 200% of the problem's budget (capped at total cost)."""
    total = math.fsum(item.cost for item in problem.items if not item.must_not)
    high = min(2 * problem.budget, total) if total > 0 else 2 * problem.budget
    low = min(0.25 * problem.budget, high)
    return [float(b) for b in np.linspace(low, high, max(2, points))]


def frontier(problem: Problem, budgets: Sequence[float], *,
             gap: float | None = None) -> list[FrontierPoint]:
    """Best value at each budget (sorted by budget), reusing one solver model.

    Budgets are solved in increasing order and each solution warm-starts the next (a plan
    feasible at a budget stays feasible at a larger one), so value never decreases. ``gap``
    (default: the problem's, or FRONTIER_GAP when that is the exact 0) is the relative gap each
    point is solved to; each point's ``status`` says whether it is exact ('optimal') and its
    ``gap`` how close it is.
    """
    tolerance = (problem.gap or FRONTIER_GAP) if gap is None else float(gap)
    form = build(problem)
    session = Session(form, threads=problem.threads)
    budget_row = session.rows(("budget",))[0]
    points: list[FrontierPoint] = []
    best_x: np.ndarray | None = None
    best_value: float | None = None
    by_id = problem.by_id
    for budget in sorted(float(b) for b in budgets):
        if budget < 0 or not math.isfinite(budget):
            raise ValueError(f"frontier budget must be finite and >= 0, got {budget}")
        session.set_row_bounds(budget_row, -math.inf, budget)
        outcome = session.optimize(time_limit=problem.time_limit, gap=tolerance, start=best_x)
        if outcome.col_value is None and best_x is not None and outcome.status != "infeasible":
            # Out of time without a solution: the previous budget's plan still fits this one.
            outcome.col_value, outcome.status = best_x, "feasible"
        if outcome.col_value is not None:
            chosen, _ = chosen_from(form, session, outcome.col_value)
            value = math.fsum(by_id[i].value for i in chosen)
            if best_value is not None and value < best_value:
                # Within the gap tolerance a re-solve can land a hair lower; the previous plan
                # is still feasible here, so keep it.
                value, x = best_value, best_x
            else:
                x = outcome.col_value
            assert x is not None
            chosen, _ = chosen_from(form, session, x)
            best_x, best_value = x, value
            points.append(FrontierPoint(
                budget=budget, value=value, status=outcome.status, chosen_count=len(chosen),
                spend=math.fsum(by_id[i].cost for i in chosen),
                gap=relative_gap(value, max(outcome.bound or value, value))))
        else:
            points.append(FrontierPoint(budget=budget, value=None, status=outcome.status,
                                        chosen_count=0))
    return points
