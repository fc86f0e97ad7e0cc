"""Hand-checked optimizer instances: shares, dependencies, exclusions, scheduling, analysis."""

from __future__ import annotations

import math

import pytest

from planner.optimizer import DEFAULT_SHARES, Item, Problem, ProblemError, greedy, solve

NO_SHARES: dict[str, tuple[float, float]] = {}


def item(item_id: str, cost: float, value: float, roadmap: str = "core", **kw: object) -> Item:
    return Item(id=item_id, roadmap=roadmap, cost=cost, value=value, **kw)  # type: ignore[arg-type]


def problem(items: list[Item], budget: float, **kw: object) -> Problem:
    kw.setdefault("shares", NO_SHARES)
    return Problem(items=tuple(items), budget=budget, **kw)  # type: ignore[arg-type]


# ----- shares ----------------------------------------------------------------------------------
SHARE_ITEMS = [item("C1", 10, 30), item("C2", 10, 25), item("E1", 10, 5, "experimental"),
               item("N1", 10, 4, "niche")]


def test_share_maximum_forces_diversification() -> None:
    # Unconstrained the best three are C1, C2, E1 (60), but core would be 2/3 > 60% of spend.
    plan = solve(problem(SHARE_ITEMS, 30, shares={"core": (0.0, 0.6)}))
    assert set(plan.chosen) == {"C1", "E1", "N1"}
    assert plan.objective == pytest.approx(39)
    assert plan.by_roadmap["core"]["share"] == pytest.approx(1 / 3)
    assert plan.by_roadmap["core"]["spend"] == pytest.approx(10)


def test_share_minimum_pulls_in_a_roadmap() -> None:
    plan = solve(problem(SHARE_ITEMS, 30, shares={"experimental": (0.4, 1.0)}))
    assert set(plan.chosen) == {"C1", "E1"}  # any third item dilutes experimental below 40%
    assert plan.objective == pytest.approx(35)


def test_default_shares_are_of_chosen_spend() -> None:
    items = [item("c1", 60, 60), item("c2", 10, 10), item("e1", 20, 15, "experimental"),
             item("n1", 10, 12, "niche")]
    plan = solve(Problem(items=tuple(items), budget=100))
    assert Problem(items=(), budget=1).shares == DEFAULT_SHARES
    assert set(plan.chosen) == {"c1", "c2", "e1", "n1"}  # 70% / 20% / 10%
    shares = {r: plan.by_roadmap[r]["share"] for r in ("core", "experimental", "niche")}
    assert shares == pytest.approx({"core": 0.7, "experimental": 0.2, "niche": 0.1})


def test_share_minimum_for_a_roadmap_without_items_allows_nothing() -> None:
    plan = solve(problem(SHARE_ITEMS, 30, shares={"platform": (0.1, 1.0)}))
    assert plan.status == "optimal" and plan.chosen == () and plan.objective == 0


# ----- dependencies, exclusions, must-do / must-not, coverage ---------------------------------
DEP_ITEMS = [item("A", 10, 1), item("B", 10, 50, depends_on=("A",)), item("C", 10, 20)]


def test_dependency_brings_its_prerequisite() -> None:
    plan = solve(problem(DEP_ITEMS, 20))
    assert set(plan.chosen) == {"A", "B"} and plan.objective == pytest.approx(51)


def test_dependency_without_room_for_prerequisite() -> None:
    plan = solve(problem(DEP_ITEMS, 10))
    assert plan.chosen == ("C",)


def test_exclusion_group_allows_one() -> None:
    items = [item("X", 5, 10), item("Y", 5, 9), item("Z", 5, 3)]
    plan = solve(problem(items, 15, exclusions=(("X", "Y"),)))
    assert set(plan.chosen) == {"X", "Z"} and plan.objective == pytest.approx(13)


def test_must_do_and_must_not() -> None:
    items = [item("M", 10, 1, must_do=True), item("P", 10, 100, must_not=True),
             item("Q", 10, 5), item("R", 10, 4)]
    plan = solve(problem(items, 20))
    assert set(plan.chosen) == {"M", "Q"}
    assert plan.entry_values["P"] == math.inf


def test_minimum_coverage() -> None:
    items = [item("S", 10, 1, segments=("young",)), item("T", 10, 10), item("U", 10, 9)]
    assert set(solve(problem(items, 20)).chosen) == {"T", "U"}
    plan = solve(problem(items, 20, min_coverage={"young": 1}))
    assert set(plan.chosen) == {"S", "T"}


def test_capacity_without_schedule_sums_quarters() -> None:
    items = [item("a", 1, 10, effort={"eng": 6}), item("b", 1, 9, effort={"eng": 6}),
             item("c", 1, 1, effort={"eng": 3})]
    cap = {("eng", "Q1"): 5, ("eng", "Q2"): 5}  # 10 in total: a + c, not a + b
    plan = solve(problem(items, 100, capacity=cap, quarters=("Q1", "Q2")))
    assert set(plan.chosen) == {"a", "c"}
    assert plan.capacity_use["eng"] == {"used": 9, "capacity": 10}


# ----- scheduling ------------------------------------------------------------------------------
def test_capacity_pushes_an_item_into_the_second_quarter() -> None:
    items = [item("X", 1, 10, effort={"eng": 4}), item("Y", 1, 9, effort={"eng": 4})]
    cap = {("eng", "Q1"): 5, ("eng", "Q2"): 5}
    plan = solve(problem(items, 10, capacity=cap, quarters=("Q1", "Q2"), schedule=True))
    assert set(plan.chosen) == {"X", "Y"}
    assert sorted(plan.schedule.values()) == ["Q1", "Q2"]
    assert plan.capacity_use[("eng", "Q1")]["used"] == pytest.approx(4)
    assert plan.capacity_use[("eng", "Q2")]["used"] == pytest.approx(4)


def test_dependent_starts_after_its_prerequisite_ends() -> None:
    items = [item("A", 1, 1, duration=2), item("B", 1, 10, depends_on=("A",))]
    quarters = ("Q1", "Q2", "Q3")
    plan = solve(problem(items, 10, quarters=quarters, schedule=True))
    assert plan.schedule == {"A": "Q1", "B": "Q3"}
    # With two quarters A ends too late for B, so B cannot enter at any value.
    short = solve(problem(items, 10, quarters=quarters[:2], schedule=True))
    assert short.chosen == ("A",) and short.entry_values["B"] == math.inf


def test_effort_spreads_over_the_duration() -> None:
    items = [item("long", 1, 10, effort={"eng": 6}, duration=2),
             item("short", 1, 5, effort={"eng": 3})]
    cap = {("eng", q): 3 for q in ("Q1", "Q2", "Q3")}
    plan = solve(problem(items, 10, capacity=cap, quarters=("Q1", "Q2", "Q3"),
                         schedule=True))
    assert set(plan.chosen) == {"long", "short"}
    start = plan.schedule["long"]
    assert plan.schedule["short"] == ("Q3" if start == "Q1" else "Q1")
    assert all(row["used"] == pytest.approx(3) for row in plan.capacity_use.values())


def test_item_longer_than_the_horizon_cannot_enter() -> None:
    items = [item("epic", 1, 100, duration=3), item("small", 1, 1)]
    plan = solve(problem(items, 10, quarters=("Q1", "Q2"), schedule=True))
    assert plan.chosen == ("small",) and plan.entry_values["epic"] == math.inf


# ----- what binds ------------------------------------------------------------------------------
def test_budget_marginal_value_from_lp_relaxation() -> None:
    items = [item(f"i{k}", 10, 20) for k in range(3)] + [item("low", 10, 5)]
    plan = solve(problem(items, 25))
    assert plan.objective == pytest.approx(40)
    assert plan.marginal_values["budget"] == pytest.approx(2.0)  # LP takes 2.5 items at 2/unit
    assert "approximation" in plan.marginal_values["note"]


def test_capacity_marginal_value() -> None:
    items = [item(f"i{k}", 1, 20, effort={"eng": 10}) for k in range(3)]
    plan = solve(problem(items, 100, capacity={("eng", "Q1"): 15}))
    assert plan.marginal_values["capacity"]["eng"] == pytest.approx(2.0)
    assert plan.marginal_values["budget"] == pytest.approx(0.0)


def test_entry_values_are_break_even_values() -> None:
    items = [item("A", 10, 10), item("B", 10, 9), item("C", 5, 3),
             item("D", 5, 1, depends_on=("N",)), item("N", 1, 50, must_not=True)]
    plan = solve(problem(items, 15))
    assert set(plan.chosen) == {"A", "C"}
    # Forced in, B leaves room only for C (3): it needs 13 - 3 = 10 to break even.
    assert plan.entry_values["B"] == pytest.approx(10)
    assert plan.entry_values["N"] == math.inf and plan.entry_values["D"] == math.inf
    capped = solve(problem(items, 15), entry_values=0)
    assert capped.entry_values == {}
    one = solve(problem(items[:3] + [item("E", 10, 2)], 15), entry_values=1)
    assert one.entry_values["B"] == pytest.approx(10) and one.entry_values["E"] is None
    assert any("not computed" in note for note in one.notes)


def test_greedy_baseline_by_ratio() -> None:
    items = [item("a", 6, 12), item("b", 5, 9), item("c", 5, 9)]
    baseline = greedy(problem(items, 10))
    assert baseline.chosen == ("a",) and baseline.status == "feasible"
    assert solve(problem(items, 10)).objective == pytest.approx(18)  # b + c beats the ratio


# ----- validation ------------------------------------------------------------------------------
@pytest.mark.parametrize(("build", "needle"), [
    (lambda: item("x", -1, 1), "'x': cost"),
    (lambda: item("x", 1, 1, value_low=2), "'x': value_low"),
    (lambda: item("x", 1, 1, must_do=True, must_not=True), "must_do and must_not"),
    (lambda: item("x", 1, 1, duration=0), "'x': duration"),
    (lambda: item("x", 1, math.nan), "'x': value"),
    (lambda: problem([item("a", 1, 1, depends_on=("zz",))], 1), "'a': depends_on"),
    (lambda: problem([item("a", 1, 1), item("a", 1, 1)], 1), "duplicate item ids: a"),
    (lambda: problem([item("a", 1, 1, depends_on=("b",)), item("b", 1, 1, depends_on=("a",))],
                     1), "dependency cycle"),
    (lambda: problem([item("a", 1, 1)], 1, shares={"core": (0.5, 0.2)}), "shares['core']"),
    (lambda: problem([item("a", 1, 1)], 1, shares={"a": (0.6, 1), "b": (0.6, 1)}), "add up"),
    (lambda: problem([item("a", 1, 1)], -5), "budget"),
    (lambda: problem([item("a", 1, 1)], 1, capacity={("t", "Q9"): 1}, quarters=("Q1",)),
     "'Q9'"),
    (lambda: problem([item("a", 1, 1)], 1, exclusions=(("a", "b"),)), "exclusions[0]"),
    (lambda: problem([item("a", 1, 1)], 1, schedule=True), "schedule=True"),
    (lambda: problem([item("a", 1, 1)], 1, min_coverage={"s": -1}), "min_coverage['s']"),
])
def test_validation_names_the_field(build, needle: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProblemError) as caught:
        build()
    assert needle in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_quarters_default_to_the_capacity_keys() -> None:
    p = problem([item("a", 1, 1)], 1, capacity={("t", "Q2"): 1, ("t", "Q1"): 2})
    assert p.quarters == ("Q2", "Q1") and p.teams == ("t",)
