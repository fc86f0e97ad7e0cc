"""The optimizer against exhaustive enumeration and against the greedy baseline. No database."""

from __future__ import annotations

import itertools
import json
import math
import random

import numpy as np
import pytest

from planner.optimizer import Item, Problem, greedy, solve
from planner.optimizer.report import violations

ROADMAPS = ("core", "experimental", "niche")
TEAMS = ("alpha", "beta")
SEGMENTS = ("s1", "s2", "s3")


def random_instance(n: int, seed: int, *, loose_shares: bool | None = None) -> Problem:
    """A small random portfolio using every constraint kind (no scheduling)."""
    rng = random.Random(seed)
    items = []
    for k in range(n):
        deps = ()
        if k > 0 and rng.random() < 0.25:
            deps = tuple(sorted({f"i{rng.randrange(k)}" for _ in range(rng.choice((1, 1, 2)))}))
        effort = {team: float(rng.randint(1, 6)) for team in TEAMS if rng.random() < 0.6}
        items.append(Item(
            id=f"i{k}", roadmap=rng.choice(ROADMAPS + ("core",)), cost=float(rng.randint(1, 20)),
            value=float(rng.randint(-2, 30)) + rng.random(), effort=effort,
            segments=tuple(s for s in SEGMENTS if rng.random() < 0.35), depends_on=deps,
        ))
    flagged = rng.sample(range(n), 2)
    if rng.random() < 0.4:
        items[flagged[0]] = _with(items[flagged[0]], must_do=True)
    if rng.random() < 0.4:
        items[flagged[1]] = _with(items[flagged[1]], must_not=True)
    total = sum(item.cost for item in items)
    loose = rng.random() < 0.5 if loose_shares is None else loose_shares
    shares = ({"core": (0.3, 0.9), "experimental": (0.05, 0.6), "niche": (0.0, 0.3)} if loose
              else {"core": (0.6, 0.8), "experimental": (0.15, 0.3), "niche": (0.0, 0.1)})
    exclusions = tuple(tuple(f"i{j}" for j in rng.sample(range(n), rng.choice((2, 2, 3))))
                       for _ in range(rng.randint(0, 3)))
    return Problem(
        items=tuple(items), budget=float(round(total * rng.uniform(0.25, 0.6))), shares=shares,
        capacity={(team, q): float(rng.randint(4, 14)) for team in TEAMS for q in ("Q1", "Q2")},
        quarters=("Q1", "Q2"), exclusions=exclusions,
        min_coverage={"s1": rng.randint(0, 2)} if rng.random() < 0.5 else {},
        gap=1e-9, time_limit=30,
    )


def _with(item: Item, **changes: object) -> Item:
    from dataclasses import replace

    return replace(item, **changes)  # type: ignore[arg-type]


def brute_force(problem: Problem, chunk: int = 1 << 16) -> float | None:
    """Best value over all 2^n subsets (vectorized, independent of the optimizer's code), with
    values counted as the model counts them: rounded to its value unit."""
    items = problem.items
    n = len(items)
    index = {item.id: k for k, item in enumerate(items)}
    cost = np.array([item.cost for item in items])
    unit = problem.value_unit
    value = np.array([round(item.value / unit) * unit for item in items])
    teams = sorted({team for team, _ in problem.capacity})
    effort = np.array([[item.effort.get(team, 0.0) for team in teams] for item in items])
    capacity = np.array([sum(v for (t, _), v in problem.capacity.items() if t == team)
                         for team in teams])
    best: float | None = None
    bits = np.arange(n, dtype=np.int64)
    eps = 1e-9
    for begin in range(0, 1 << n, chunk):
        codes = np.arange(begin, min(begin + chunk, 1 << n), dtype=np.int64)
        m = ((codes[:, None] >> bits) & 1).astype(bool)
        mf = m.astype(np.float64)
        spend = mf @ cost
        ok = spend <= problem.budget + eps
        for roadmap, (lo, hi) in problem.shares.items():
            mine = np.array([item.roadmap == roadmap for item in items], dtype=np.float64)
            own = mf @ (cost * mine)
            ok &= own >= lo * spend - eps
            ok &= own <= hi * spend + eps
        if teams:
            ok &= np.all(mf @ effort <= capacity + eps, axis=1)
        for item in items:
            k = index[item.id]
            for prereq in item.depends_on:
                ok &= ~m[:, k] | m[:, index[prereq]]
            if item.must_do:
                ok &= m[:, k]
            if item.must_not:
                ok &= ~m[:, k]
        for group in problem.exclusions:
            ok &= m[:, [index[i] for i in group]].sum(axis=1) <= 1
        for segment, count in problem.min_coverage.items():
            cols = [index[item.id] for item in items if segment in item.segments]
            ok &= (m[:, cols].sum(axis=1) if cols else 0) >= count
        if ok.any():
            top = float((mf @ value)[ok].max())
            best = top if best is None else max(best, top)
    return best


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-7, abs_tol=1e-6)


@pytest.mark.parametrize("seed", range(36))
def test_matches_brute_force(seed: int) -> None:
    problem = random_instance(8 + seed % 7, seed)
    expected = brute_force(problem)
    plan = solve(problem, entry_values=0)
    if expected is None:
        assert plan.status == "infeasible"
        assert plan.explanation, "an infeasible problem must be explained"
        return
    assert plan.status == "optimal" and plan.proven_optimal
    assert _close(plan.model_objective, expected), (plan.model_objective, expected)
    assert violations(problem, plan.chosen) == []
    assert plan.best_bound >= plan.model_objective - 1e-9


@pytest.mark.parametrize("seed", [101, 202])
def test_matches_brute_force_twenty_items(seed: int) -> None:
    problem = random_instance(20, seed, loose_shares=True)
    expected = brute_force(problem)
    plan = solve(problem, entry_values=0)
    if expected is None:
        assert plan.status == "infeasible"
    else:
        assert _close(plan.model_objective, expected), (plan.model_objective, expected)
        assert violations(problem, plan.chosen) == []


def test_brute_force_sees_infeasible_instances_too() -> None:
    # Guard on the generator: the brute-force suite above must exercise both outcomes.
    outcomes = {brute_force(random_instance(8 + s % 7, s)) is None for s in range(36)}
    assert outcomes == {True, False}


def scheduled_instance(seed: int) -> Problem:
    rng = random.Random(seed)
    quarters = ("Q1", "Q2", "Q3")
    items = []
    for k in range(6):
        deps = (f"i{rng.randrange(k)}",) if k and rng.random() < 0.35 else ()
        items.append(Item(
            id=f"i{k}", roadmap=rng.choice(("core", "experimental")),
            cost=float(rng.randint(1, 10)), value=float(rng.randint(1, 20)),
            effort={"alpha": float(rng.randint(1, 6))}, depends_on=deps,
            duration=rng.choice((1, 1, 2, 3)),
        ))
    return Problem(items=tuple(items), budget=30.0, shares={},
                   capacity={("alpha", q): float(rng.randint(2, 6)) for q in quarters},
                   quarters=quarters, schedule=True, gap=1e-9, time_limit=30)


def brute_force_schedule(problem: Problem) -> float | None:
    """Every choice of (not chosen | start quarter) per item, checked constraint by constraint."""
    items = problem.items
    n_q = len(problem.quarters)
    options = [[None, *range(n_q - item.duration + 1)] for item in items]
    best = None
    by_id = {item.id: item for item in items}
    for combo in itertools.product(*options):
        starts = {item.id: s for item, s in zip(items, combo, strict=True) if s is not None}
        if sum(by_id[i].cost for i in starts) > problem.budget:
            continue
        use = [0.0] * n_q
        for i, s in starts.items():
            item = by_id[i]
            for q in range(s, s + item.duration):
                use[q] += item.effort["alpha"] / item.duration
        if any(use[q] > problem.capacity[("alpha", problem.quarters[q])] + 1e-9
               for q in range(n_q)):
            continue
        if any(p not in starts or starts[p] + by_id[p].duration > starts[i]
               for i in starts for p in by_id[i].depends_on):
            continue
        total = sum(by_id[i].value for i in starts)
        best = total if best is None else max(best, total)
    return best


@pytest.mark.parametrize("seed", range(8))
def test_schedule_matches_brute_force(seed: int) -> None:
    problem = scheduled_instance(seed)
    expected = brute_force_schedule(problem)
    plan = solve(problem, entry_values=0)
    assert _close(plan.model_objective, expected), (plan.model_objective, expected)
    starts = {i: problem.quarters.index(q) for i, q in plan.schedule.items()}
    assert set(starts) == set(plan.chosen)
    assert violations(problem, plan.chosen, starts) == []


@pytest.mark.parametrize("seed", range(10))
def test_never_worse_than_greedy(seed: int) -> None:
    from planner.optimizer import random_problem

    problem = random_problem(30 + 20 * seed, seed=seed, budget_share=0.2 + 0.025 * seed,
                             capacity_share=0.3 + 0.04 * seed, schedule=seed % 4 == 3,
                             time_limit=20)
    baseline = greedy(problem)
    plan = solve(problem, entry_values=0)
    assert plan.status == "optimal"
    if baseline.status == "feasible":
        assert plan.objective >= baseline.objective - 1e-6
    else:  # greedy broke a constraint: its value is no bar, but the optimum is still a plan
        assert baseline.explanation
    starts = {i: problem.quarters.index(q) for i, q in plan.schedule.items()}
    assert violations(problem, plan.chosen, starts if problem.schedule else None) == []


@pytest.mark.parametrize("schedule", [False, True])
def test_plan_is_json_serializable(schedule: bool) -> None:
    from planner.optimizer import random_problem

    problem = random_problem(80, seed=1, schedule=schedule)
    plan = solve(problem, entry_values=3)
    assert plan.status == "optimal"
    data = json.loads(json.dumps(plan.to_dict(), allow_nan=False))
    assert data["status"] == "optimal" and data["chosen"] == list(plan.chosen)
    keys = set(data["capacity_use"])
    if schedule:
        assert "platform|Q1" in keys and set(data["schedule"]) == set(plan.chosen)
    else:
        assert "platform" in keys and not any("|" in key for key in keys)
    assert set(data["by_roadmap"]) >= {"core", "experimental", "niche"}
    assert set(data["entry_blocked"]) == {i for i, v in plan.entry_values.items()
                                          if v is not None and math.isinf(v)}
