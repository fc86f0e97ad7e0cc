"""Infeasible portfolios are explained by the constraints that conflict, not a solver error."""

from __future__ import annotations

import dataclasses
import time

from planner.optimizer import Item, Problem, explain_infeasible, random_problem, solve


def item(item_id: str, cost: float, value: float = 1.0, roadmap: str = "core",
         **kw: object) -> Item:
    return Item(id=item_id, roadmap=roadmap, cost=cost, value=value, **kw)  # type: ignore[arg-type]


def problem(items: list[Item], budget: float, **kw: object) -> Problem:
    kw.setdefault("shares", {})
    return Problem(items=tuple(items), budget=budget, **kw)  # type: ignore[arg-type]


def test_must_dos_over_budget() -> None:
    p = problem([item("A", 60, must_do=True), item("B", 70, must_do=True), item("C", 10),
                 item("D", 5, must_do=True)], 100)
    lines = explain_infeasible(p)
    assert lines[0] == "must-do items A, B cost 130 but the budget is 100"
    assert "- the budget is 100" in lines
    assert not any("D" in line for line in lines)  # D is not part of the conflict
    plan = solve(p)
    assert plan.status == "infeasible" and not plan.proven_optimal and plan.chosen == ()
    assert plan.explanation == lines


def test_must_dos_in_one_exclusion_group() -> None:
    p = problem([item("A", 1, must_do=True), item("B", 1, must_do=True), item("C", 1)], 10,
                exclusions=(("A", "C"), ("A", "B")))
    lines = explain_infeasible(p)
    assert lines[0] == "must-do items A, B are in the same exclusion group"
    assert "- at most one of A, B (exclusion group 2)" in lines


def test_must_do_depends_on_must_not() -> None:
    p = problem([item("A", 1, must_do=True, depends_on=("B",)), item("B", 1, must_not=True)],
                10)
    lines = explain_infeasible(p)
    assert lines[0] == "must-do item A depends on items that cannot be chosen"
    assert any("B is must-not" in line for line in lines)
    assert any("A can only be done with" in line for line in lines)


def test_coverage_that_too_few_items_target() -> None:
    p = problem([item("A", 1, segments=("smb",)), item("B", 1, segments=("smb",)),
                 item("C", 1)], 10, min_coverage={"smb": 3})
    lines = explain_infeasible(p)
    assert "segment(s) smb" in lines[0]
    assert "- segment smb needs at least 3 chosen items (2 items target it)" in lines


def test_must_do_over_team_capacity() -> None:
    p = problem([item("A", 1, must_do=True, effort={"eng": 8}),
                 item("B", 1, must_do=True, effort={"eng": 5}), item("C", 1)], 10,
                capacity={("eng", "Q1"): 6, ("eng", "Q2"): 6})
    lines = explain_infeasible(p)
    assert lines[0] == "must-do items A, B need 13 effort units of team eng but it has 12"


def test_must_do_breaks_a_share_bound() -> None:
    # At most 10% niche: a must-do niche item of 50 needs a spend of 500, the budget is 100.
    core = [item(f"C{k}", 40) for k in range(12)]  # without the budget they could dilute N
    p = problem([item("N", 50, roadmap="niche", must_do=True), *core], 100,
                shares={"niche": (0.0, 0.1)})
    lines = explain_infeasible(p)
    assert lines[1:] == ["- roadmap niche may take at most 10% of chosen spend",
                         "- N is must-do (niche, cost 50)", "- the budget is 100"]
    # A core minimum conflicts with the same must-do on its own (no budget needed).
    p = problem([item("N", 50, roadmap="niche", must_do=True), item("C", 40)], 1000,
                shares={"core": (0.6, 0.8)})
    assert explain_infeasible(p)[1:] == ["- roadmap core must take at least 60% of chosen spend",
                                         "- N is must-do (niche, cost 50)"]


def test_scheduled_must_do_that_cannot_fit() -> None:
    p = problem([item("A", 1, must_do=True, duration=3), item("B", 1)], 10,
                quarters=("Q1", "Q2"), schedule=True)
    lines = explain_infeasible(p)
    assert "- A takes 3 quarters but the horizon has 2" in lines


def test_feasible_problem_has_no_explanation() -> None:
    assert explain_infeasible(problem([item("A", 1, must_do=True)], 10)) == []


def test_conflict_found_in_a_large_portfolio() -> None:
    base = random_problem(600, seed=7)
    items = list(base.items)
    items[10] = dataclasses.replace(items[10], must_do=True, must_not=False, depends_on=())
    items[20] = dataclasses.replace(items[20], must_do=True, must_not=False, depends_on=())
    p = dataclasses.replace(base, items=tuple(items),
                            exclusions=(*base.exclusions, (items[10].id, items[20].id)))
    started = time.perf_counter()
    plan = solve(p)
    assert plan.status == "infeasible"
    assert plan.explanation[0] == (f"must-do items {items[10].id}, {items[20].id} are in the "
                                   "same exclusion group")
    assert len(plan.explanation) == 4  # the summary, two must-dos, one exclusion group
    assert time.perf_counter() - started < 30
