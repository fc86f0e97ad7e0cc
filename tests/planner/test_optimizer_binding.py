"""What binds: each constraint's use, re-solved gain and LP dual, and why items are in or out,
against hand-built portfolios and brute force over every subset. No database."""

from __future__ import annotations

import dataclasses
import itertools
import random

import pytest
from scipy.optimize import linprog

from planner.optimizer import Item, Problem, solve
from planner.optimizer.report import violations


def _best(problem: Problem) -> float | None:
    """Brute force: the best total of values rounded to the unit, over every subset."""
    unit = problem.value_unit
    best = None
    for flags in itertools.product((0, 1), repeat=len(problem.items)):
        chosen = [item.id for item, f in zip(problem.items, flags, strict=True) if f]
        if violations(problem, chosen):
            continue
        total = sum(round(problem.by_id[i].value / unit) * unit for i in chosen)
        best = total if best is None else max(best, total)
    return best


def _relaxed(problem: Problem, group: str) -> Problem:
    """The problem with one constraint relaxed by the report's step, built independently."""
    kind, *key = group.split("|")
    if kind == "budget":
        step = 0.01 * problem.budget if 0.01 * problem.budget >= 1 else 1.0
        return dataclasses.replace(problem, budget=problem.budget + step)
    if kind in ("share_min", "share_max"):
        lo, hi = problem.shares[key[0]]
        bounds = (max(0.0, lo - 0.01), hi) if kind == "share_min" else (lo, min(1.0, hi + 0.01))
        return dataclasses.replace(problem, shares={**problem.shares, key[0]: bounds})
    if kind == "capacity":
        first = key[1] if len(key) == 2 else problem.quarters[0]
        capacity = dict(problem.capacity)
        capacity[(key[0], first)] += 1.0
        return dataclasses.replace(problem, capacity=capacity)
    if kind == "coverage":
        return dataclasses.replace(problem, min_coverage={
            **problem.min_coverage, key[0]: problem.min_coverage[key[0]] - 1})
    if kind == "exclusion":  # groups of two here: "at most two" is no constraint
        groups = [g for k, g in enumerate(problem.exclusions) if k != int(key[0])]
        return dataclasses.replace(problem, exclusions=tuple(groups))
    if kind == "dependency":
        items = tuple(dataclasses.replace(i, depends_on=tuple(d for d in i.depends_on
                                                              if d != key[1]))
                      if i.id == key[0] else i for i in problem.items)
        return dataclasses.replace(problem, items=items)
    if kind == "must_do":
        items = tuple(dataclasses.replace(i, must_do=False) if i.id == key[0] else i
                      for i in problem.items)
        return dataclasses.replace(problem, items=items)
    raise AssertionError(group)


def _instance(seed: int) -> Problem:
    rng = random.Random(seed)
    items = []
    for k in range(9):
        deps = (f"i{rng.randrange(k)}",) if k and rng.random() < 0.2 else ()
        items.append(Item(
            id=f"i{k}", roadmap=rng.choice(("core", "core", "experimental", "niche")),
            cost=float(rng.randint(1, 12)), value=float(rng.randint(-3, 25)),
            effort={"web": float(rng.randint(0, 4))}, segments=("s",) if rng.random() < 0.3
            else (), depends_on=deps, must_do=k == 3 and rng.random() < 0.5))
    pair = tuple(f"i{j}" for j in rng.sample(range(9), 2))
    return Problem(items=tuple(items), budget=float(rng.randint(15, 35)),
                   shares={"core": (0.4, 0.8), "experimental": (0.1, 0.5)},
                   capacity={("web", "Q1"): float(rng.randint(4, 9)),
                             ("web", "Q2"): float(rng.randint(0, 4))},
                   quarters=("Q1", "Q2"), exclusions=(pair,),
                   min_coverage={"s": 1} if rng.random() < 0.5 else {})


@pytest.mark.parametrize("seed", range(12))
def test_every_gain_is_the_brute_force_difference(seed: int) -> None:
    problem = _instance(seed)
    base = _best(problem)
    plan = solve(problem, entry_values=0, binding_seconds=60)
    if base is None:
        assert plan.status == "infeasible"
        return
    assert plan.status == "optimal"
    assert plan.model_objective == pytest.approx(base)
    assert plan.binding, "every run reports its constraints"
    for record in plan.binding:
        relaxed = _best(_relaxed(problem, record["group"]))
        assert record["gain_exact"]
        assert record["gain"] == pytest.approx(relaxed - base, abs=1e-6), record
        assert record["binds"] == (record["at_limit"] or record["gain"] > 0
                                   or bool(record["forces_in"]))
        # The words and the table agree: a binding row has words, a free one none.
        assert bool(record["words"]) == record["binds"]
    # Every left-out item: adding it alone breaks exactly what the reason names (or nothing,
    # and then its value is not positive).
    for item in problem.items:
        if item.id in plan.chosen:
            continue
        reason = plan.reasons[item.id]
        broken = violations(problem, (*plan.chosen, item.id))
        if reason["kept_out_by"] == ["value"]:
            assert broken == [] and item.value <= 0
        else:
            # One line of violations() per broken constraint: the same count, found by the
            # report's own checker, independently of binding.py.
            assert len(broken) == len(reason["kept_out_by"]), (item.id, reason, broken)


def _hand() -> Problem:
    # core a is the best item; experimental must hold 15% of spend, and its only item e has a
    # negative value: the floor forces e in. Team web has 4 units and a + b need 5.
    items = (
        Item("a", "core", cost=8, value=20, effort={"web": 3}),
        Item("b", "core", cost=3, value=9, effort={"web": 2}),
        Item("e", "experimental", cost=2, value=-1),
    )
    return Problem(items=items, budget=12, shares={"core": (0.0, 1.0),
                                                   "experimental": (0.15, 1.0)},
                   capacity={("web", "Q1"): 4.0})


def test_hand_built_floor_forces_an_item_in_and_is_named() -> None:
    plan = solve(_hand(), binding_seconds=60)
    # a (8) + e (2) = 10 of 12; b would break web's capacity (3 + 2 > 4); a alone breaks the
    # floor. Value 20 - 1 = 19.
    assert plan.chosen == ("a", "e") and plan.objective == 19
    rows = {r["group"]: r for r in plan.binding}
    floor = rows["share_min|experimental"]
    assert floor["forces_in"] == ["e"] and floor["binds"]
    # One point lower (14%) still needs e (2/10 = 20%): the step gains nothing; removing the
    # floor gains 1 (e's -1), which is why e is "forced in".
    assert floor["gain"] == 0
    assert plan.reasons["e"] == {"chosen": True, "forced_in_by": ["share_min|experimental"],
                                 "words": "chosen only because of: roadmap experimental must "
                                          "take at least 15% of chosen spend"}
    web = rows["capacity|web"]
    # One more web unit lets a + b fit (5 of 5), but a + b + e costs 13 > 12 and a + b alone
    # breaks the floor: the relaxed optimum is a + e again. Not at its limit, no gain: free.
    assert (web["used"], web["limit"], web["at_limit"], web["binds"]) == (3.0, 4.0, False, False)
    assert web["gain"] == 0 and web["words"] == ""
    assert plan.reasons["b"]["kept_out_by"] == ["budget", "capacity|web"]
    assert plan.reasons["b"]["words"] == ("the budget: it costs 3 and 2 is left; team web's "
                                          "capacity: it needs 2 and 1 is left")


def test_team_quarter_at_capacity_is_named_in_words_and_table() -> None:
    # Two quarters; design has 2 units each. x (value 10) needs design 2 in its first quarter,
    # y (value 9) and z (value 4) need design 2 too. Only two of them fit: x and y.
    items = (
        Item("x", "core", cost=1, value=10, effort={"design": [2]}),
        Item("y", "core", cost=1, value=9, effort={"design": [2]}),
        Item("z", "core", cost=1, value=4, effort={"design": [2]}),
    )
    problem = Problem(items=items, budget=100, shares={}, quarters=("Q1", "Q2"),
                      capacity={("design", "Q1"): 2.0, ("design", "Q2"): 2.0}, schedule=True)
    plan = solve(problem, binding_seconds=60)
    assert set(plan.chosen) == {"x", "y"} and plan.objective == 19
    rows = {r["group"]: r for r in plan.binding}
    for quarter in ("Q1", "Q2"):
        row = rows[f"capacity|design|{quarter}"]
        assert row["at_limit"] and row["binds"] and row["used"] == row["limit"] == 2.0
        assert row["words"].startswith(f"team design has 2 effort units in {quarter}: at its "
                                       f"limit (2 of 2)")
        # One more unit still cannot hold z's 2 units: the integer gain is 0, while the LP
        # relaxation would take half of z per extra unit: its dual is z's value per unit, 4 / 2.
        assert row["gain"] == 0
        assert row["dual"] == pytest.approx(2.0)
    assert plan.reasons["z"]["kept_out_by"] == ["capacity|design|Q1"]
    assert "starting Q1, its best start" in plan.reasons["z"]["words"]


def test_budget_dual_matches_an_independent_lp() -> None:
    # Knapsack LP: max 10a + 6b + 4c, costs 5, 4, 4, budget 7. The relaxation takes a and
    # half of b: the budget's dual is b's value per cost, 6 / 4 = 1.5.
    items = (Item("a", "core", cost=5, value=10), Item("b", "core", cost=4, value=6),
             Item("c", "core", cost=4, value=4))
    plan = solve(Problem(items=items, budget=7, shares={}), binding_seconds=60)
    lp = linprog(c=[-10, -6, -4], A_ub=[[5, 4, 4]], b_ub=[7], bounds=[(0, 1)] * 3,
                 method="highs")
    budget = next(r for r in plan.binding if r["group"] == "budget")
    assert budget["dual"] == pytest.approx(-lp.ineqlin.marginals[0]) == pytest.approx(1.5)
    # Integer effect: +1 money unit (8) does not fit a + b (9) either: the plan stays a alone,
    # 2 below the budget, and relaxing gains nothing.
    assert plan.chosen == ("a",)
    assert (budget["gain"], budget["at_limit"], budget["binds"]) == (0, False, False)


def test_must_do_and_dependency_gains() -> None:
    # m is must-do and worth -5; p is a prerequisite of q (worth 12) and worth -2.
    items = (Item("m", "core", cost=1, value=-5, must_do=True),
             Item("p", "core", cost=1, value=-2), Item("q", "core", cost=1, value=12,
                                                        depends_on=("p",)))
    plan = solve(Problem(items=items, budget=10, shares={}), binding_seconds=60)
    assert set(plan.chosen) == {"m", "p", "q"} and plan.objective == 5
    rows = {r["group"]: r for r in plan.binding}
    assert rows["must_do|m"]["gain"] == 5 and rows["must_do|m"]["forces_in"] == ["m"]
    assert rows["dependency|q|p"]["gain"] == 2 and rows["dependency|q|p"]["binds"]
    assert plan.reasons["m"]["forced_in_by"] == ["must_do|m"]
