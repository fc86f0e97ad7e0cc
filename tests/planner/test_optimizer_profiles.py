"""Effort by quarter: per-offset effort profiles, the scheduler against brute force, bad input.
No database."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from planner.optimizer import Item, Problem, ProblemError, greedy, solve
from planner.optimizer.report import capacity_summary, violations

QUARTERS = ("Q1", "Q2", "Q3", "Q4")
TEAMS = ("design", "platform")


def _profile_instance(seed: int) -> tuple[Problem, list[dict[str, object]]]:
    """Six items, two teams, four quarters; most efforts are per-quarter profiles. Returns the
    problem and each item's raw effort input (for the brute force)."""
    rng = random.Random(seed)
    items, raw = [], []
    for k in range(6):
        duration = rng.choice((1, 2, 2, 3))
        effort: dict[str, object] = {}
        for team in TEAMS:
            if rng.random() < 0.7:
                if rng.random() < 0.75:
                    length = rng.randint(1, duration)
                    effort[team] = [float(rng.randint(0, 4)) for _ in range(length)]
                else:
                    effort[team] = float(rng.randint(1, 6))  # the old form: spread evenly
        deps = (f"i{rng.randrange(k)}",) if k and rng.random() < 0.3 else ()
        raw.append(effort)
        items.append(Item(id=f"i{k}", roadmap="core", cost=float(rng.randint(1, 9)),
                          value=float(rng.randint(1, 25)), effort=effort, depends_on=deps,
                          duration=duration))
    capacity = {(team, q): float(rng.randint(2, 5)) for team in TEAMS for q in QUARTERS}
    problem = Problem(items=tuple(items), budget=float(rng.randint(12, 30)), shares={},
                      capacity=capacity, quarters=QUARTERS, schedule=True, time_limit=30)
    return problem, raw


def _raw_profile(effort: object, duration: int) -> list[float]:
    """The per-offset effort, computed here from the raw input (not from Item.profile)."""
    if isinstance(effort, list):
        return effort + [0.0] * (duration - len(effort))
    return [float(effort) / duration] * duration  # type: ignore[arg-type]


def _brute_force(problem: Problem, raw: list[dict[str, object]]) -> tuple[float, dict] | None:
    """Every (left out | start quarter) per item; capacity checked per team and quarter."""
    items = problem.items
    n_q = len(problem.quarters)
    options = [[None, *range(n_q - item.duration + 1)] for item in items]
    best: tuple[float, dict] | None = None
    for combo in itertools.product(*options):
        starts = {item.id: s for item, s in zip(items, combo, strict=True) if s is not None}
        chosen = [item for item in items if item.id in starts]
        if sum(item.cost for item in chosen) > problem.budget + 1e-9:
            continue
        use = {(team, q): 0.0 for team in TEAMS for q in range(n_q)}
        for k, item in enumerate(items):
            if item.id not in starts:
                continue
            for team, effort in raw[k].items():
                for offset, amount in enumerate(_raw_profile(effort, item.duration)):
                    use[(team, starts[item.id] + offset)] += amount
        if any(use[(team, q)] > problem.capacity[(team, problem.quarters[q])] + 1e-9
               for team in TEAMS for q in range(n_q)):
            continue
        by_id = {item.id: item for item in items}
        if any(p not in starts or starts[p] + by_id[p].duration > starts[i]
               for i in starts for p in by_id[i].depends_on):
            continue
        total = sum(item.value for item in chosen)
        if best is None or total > best[0]:
            best = (total, starts)
    return best


@pytest.mark.parametrize("seed", range(10))
def test_scheduler_with_effort_profiles_matches_brute_force(seed: int) -> None:
    problem, raw = _profile_instance(seed)
    expected = _brute_force(problem, raw)
    plan = solve(problem, entry_values=0)
    assert expected is not None
    assert plan.status == "optimal"
    assert plan.objective == pytest.approx(expected[0], abs=1e-9)
    starts = {i: problem.quarters.index(q) for i, q in plan.schedule.items()}
    assert set(starts) == set(plan.chosen)
    assert violations(problem, plan.chosen, starts) == []
    # The reported use per team-quarter is the raw profiles summed at the chosen starts.
    for (team, quarter), row in plan.capacity_use.items():
        q = problem.quarters.index(quarter)
        want = 0.0
        for k, item in enumerate(problem.items):
            if item.id in starts and team in raw[k]:
                profile = _raw_profile(raw[k][team], item.duration)
                offset = q - starts[item.id]
                if 0 <= offset < item.duration:
                    want += profile[offset]
        assert row["used"] == pytest.approx(want, abs=1e-9)
    # The greedy baseline respects the same per-quarter capacity.
    base = greedy(problem)
    base_starts = {i: problem.quarters.index(q) for i, q in base.schedule.items()}
    assert violations(problem, base.chosen, base_starts) == []
    assert base.objective <= plan.objective + 1e-9


def test_profile_places_items_where_each_team_has_room() -> None:
    # design is free only in Q1, platform only in Q2: an item needing design in its first
    # quarter and platform in its second fits only from Q1; its mirror image cannot fit at all.
    a = Item(id="a", roadmap="core", cost=1, value=10, duration=2,
             effort={"design": [2, 0], "platform": [0, 3]})
    b = Item(id="b", roadmap="core", cost=1, value=8, duration=2,
             effort={"platform": [3, 0], "design": [0, 2]})
    capacity = {("design", "Q1"): 2, ("design", "Q2"): 0, ("design", "Q3"): 0,
                ("platform", "Q1"): 0, ("platform", "Q2"): 3, ("platform", "Q3"): 0}
    problem = Problem(items=(a, b), budget=10, shares={}, capacity=capacity,
                      quarters=("Q1", "Q2", "Q3"), schedule=True)
    plan = solve(problem)
    assert plan.chosen == ("a",) and plan.schedule == {"a": "Q1"}
    assert plan.capacity_use[("design", "Q1")] == {"used": 2.0, "capacity": 2.0}
    assert plan.capacity_use[("platform", "Q2")] == {"used": 3.0, "capacity": 3.0}
    # The same efforts as one number per team (spread evenly) would need 1 + 1.5 in both
    # quarters and fit nowhere: the profile is what lets the item in.
    flat = Item(id="a", roadmap="core", cost=1, value=10, duration=2,
                effort={"design": 2, "platform": 3})
    assert solve(Problem(items=(flat,), budget=10, shares={}, capacity=capacity,
                         quarters=("Q1", "Q2", "Q3"), schedule=True)).chosen == ()


def test_one_number_per_team_keeps_its_meaning() -> None:
    item = Item(id="x", roadmap="core", cost=1, value=1, duration=3, effort={"web": 6})
    assert dict(item.effort) == {"web": 6.0}
    assert item.profile["web"] == (2.0, 2.0, 2.0)
    shorter = Item(id="y", roadmap="core", cost=1, value=1, duration=3, effort={"web": [1, 2]})
    assert dict(shorter.effort) == {"web": 3.0}
    assert shorter.profile["web"] == (1.0, 2.0, 0.0)


def test_unscheduled_capacity_counts_the_profile_total() -> None:
    item = Item(id="x", roadmap="core", cost=1, value=5, duration=2, effort={"web": [3, 4]})
    problem = Problem(items=(item,), budget=10, shares={},
                      capacity={("web", "Q1"): 3, ("web", "Q2"): 3})
    plan = solve(problem)
    assert plan.chosen == ()  # 7 units against 6 over both quarters
    assert capacity_summary(problem, ["x"]) == {"web": {"used": 7.0, "capacity": 6.0}}


@pytest.mark.parametrize(("item", "problem_kwargs", "message"), [
    (dict(effort={"design": [1, 2, 3]}, duration=2), {},
     "item 'x': effort['design'] lists 3 quarters of effort but the item takes 2 quarter(s)"),
    (dict(effort={"design": [1, -2]}, duration=2), {},
     "item 'x': effort['design'][1] must be >= 0, got -2.0"),
    (dict(effort={"design": -1}), {}, "item 'x': effort['design'] must be >= 0, got -1.0"),
    (dict(effort={"design": [1, 1, 1]}, duration=3), {"schedule": True},
     "item 'x': effort lists 3 quarters of effort but the plan has 2 quarter(s)"),
    (dict(effort={"design": 1, "data": 2}), {},
     "item 'x': effort needs team 'data', which has no row in the capacity table"),
])
def test_bad_effort_is_refused_naming_item_and_field(item, problem_kwargs, message) -> None:
    capacity = {("design", "Q1"): 5.0, ("design", "Q2"): 5.0}
    with pytest.raises(ProblemError) as err:
        Problem(items=(Item(id="x", roadmap="core", cost=1, value=1, **item),), budget=5,
                shares={}, capacity=capacity, quarters=("Q1", "Q2"), **problem_kwargs)
    assert message in str(err.value)


def test_missing_team_is_fine_without_any_capacity_table() -> None:
    problem = Problem(items=(Item(id="x", roadmap="core", cost=1, value=1,
                                  effort={"data": 2}),), budget=5, shares={})
    assert solve(problem).chosen == ("x",)
    assert math.isclose(solve(problem).objective, 1.0)
