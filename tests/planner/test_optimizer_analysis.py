"""Frontier, robust mode, value draws and the proof status of time-limited runs."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from planner.optimizer import (
    Item,
    Problem,
    default_budgets,
    draw_values,
    frontier,
    random_problem,
    robust,
    solve,
)
from planner.optimizer.solve import FRONTIER_GAP


def test_frontier_is_non_decreasing_and_matches_solve() -> None:
    problem = random_problem(150, seed=3)
    budgets = default_budgets(problem, points=6)
    points = frontier(problem, list(reversed(budgets)))
    assert [p.budget for p in points] == sorted(budgets)
    values = [p.value for p in points]
    assert all(v is not None for v in values)
    assert values == sorted(values)
    assert all(p.spend <= p.budget + 1e-6 for p in points)
    middle = points[3]
    plan = solve(dataclasses.replace(problem, budget=middle.budget), entry_values=0)
    # Frontier points are solved to FRONTIER_GAP (a chart); the plan is exact.
    assert plan.objective >= middle.value - 1e-9
    assert plan.objective == pytest.approx(middle.value, rel=2 * FRONTIER_GAP)
    json.dumps([p.to_dict() for p in points], allow_nan=False)


def test_frontier_below_the_must_dos_is_infeasible() -> None:
    items = (Item("a", "core", 10, 5, must_do=True), Item("b", "core", 10, 8))
    points = frontier(Problem(items=items, budget=20, shares={}), [5, 10, 20])
    assert [p.status for p in points] == ["infeasible", "optimal", "optimal"]
    assert [p.value for p in points] == [None, 5, 13]


def _robust_problem() -> Problem:
    items = [
        # Certain and very good: always in.
        Item("sure", "core", 5, 100),
        # Never worth it: even its best case is poor for its cost, and it competes for budget.
        Item("dud", "core", 40, 1, value_low=0.5, value_high=2),
    ]
    for k in range(8):
        items.append(Item(f"bet{k}", "experimental" if k % 2 else "core", 10, 10 + k,
                          value_low=2 + k, value_high=20 + 2 * k))
    return Problem(items=tuple(items), budget=45, shares={}, gap=1e-6)


def test_robust_inclusion_probabilities() -> None:
    result = robust(_robust_problem(), draws=40, seed=1)
    assert result.solved_draws == 40
    assert result.inclusion_probability["sure"] == 1.0
    assert result.inclusion_probability["dud"] == 0.0
    uncertain = [result.inclusion_probability[f"bet{k}"] for k in range(8)]
    assert any(0 < p < 1 for p in uncertain)
    assert sum(uncertain) == pytest.approx(4.0)  # always four bets fit the remaining 40
    assert "sure" in result.pessimistic_portfolio
    # The nominal optimum is a candidate, so the pick is at least as good on the quantile.
    assert result.pessimistic_value >= result.nominal_quantile_value - 1e-9
    assert result.candidates >= 2
    json.dumps(result.to_dict(), allow_nan=False)


def test_robust_is_deterministic_for_a_seed() -> None:
    first = robust(_robust_problem(), draws=15, seed=5)
    again = robust(_robust_problem(), draws=15, seed=5)
    assert first.inclusion_probability == again.inclusion_probability
    assert first.pessimistic_portfolio == again.pessimistic_portfolio


def test_value_draws_hold_ninety_percent_within_the_interval() -> None:
    problem = Problem(items=(Item("x", "core", 1, 10, value_low=8, value_high=15),
                             Item("fixed", "core", 1, 3)), budget=1, shares={})
    draws = draw_values(problem, 40_000, seed=0)
    x = draws[:, 0]
    inside = np.mean((x >= 8) & (x <= 15))
    assert inside == pytest.approx(0.90, abs=0.01)
    assert np.mean(x < 10) == pytest.approx(2 / 7, abs=0.01)  # skew follows the interval
    assert np.all(draws[:, 1] == 3)


def test_time_limited_run_reports_feasible_with_consistent_gap() -> None:
    problem = random_problem(1500, seed=4, schedule=True, budget_share=0.45,
                             capacity_share=0.35, time_limit=1.5)
    plan = solve(problem, entry_values=0)
    assert plan.status in ("feasible", "optimal")
    assert plan.solve_seconds < problem.time_limit + 2.0
    assert plan.best_bound >= plan.objective
    assert plan.gap == pytest.approx((plan.best_bound - plan.objective) / abs(plan.objective))
    if plan.status == "feasible":
        assert not plan.proven_optimal and plan.gap > problem.gap
        assert any("time limit" in note for note in plan.notes)
    else:
        assert plan.proven_optimal and plan.gap <= problem.gap


def test_proven_plan_reports_its_bound() -> None:
    problem = random_problem(400, seed=2)
    plan = solve(problem, entry_values=3)
    assert plan.status == "optimal" and plan.proven_optimal
    assert 0 <= plan.gap <= problem.gap
    assert plan.best_bound == pytest.approx(plan.objective, rel=problem.gap)
    computed = {k: v for k, v in plan.entry_values.items() if v is not None and v != float("inf")}
    assert len(computed) == 3
    by_id = problem.by_id
    # An excluded item needs at least its current value to get in.
    assert all(v >= by_id[k].value - 1e-9 for k, v in computed.items())


def test_thread_count_can_change_between_solves() -> None:
    # highspy keeps one global scheduler; a different thread count must not fail the run.
    problem = random_problem(120, seed=5)
    default = solve(problem, entry_values=0)
    single = solve(dataclasses.replace(problem, threads=1), entry_values=0)
    again = solve(problem, entry_values=0)
    assert default.status == single.status == again.status == "optimal"
    assert single.objective == pytest.approx(default.objective, rel=2 * problem.gap)
    assert again.chosen == default.chosen  # deterministic for the same input
