"""The pure plan diff: each kind of change and each reason, on hand-built plans (no database)."""

from __future__ import annotations

from planner.roadmap_diff import PlanContext, PlanItem, diff_plans, evidence_level

SHARES = {"core": (0.5, 0.8), "niche": (0.1, 0.3)}


def item(id_: str, **kw) -> PlanItem:  # type: ignore[no-untyped-def]
    base = {"title": f"item {id_}", "roadmap": "core", "value": 100.0, "cost": 10.0}
    return PlanItem(id=id_, **{**base, **kw})


def test_identical_plans_have_no_changes():
    plan = [item("1"), item("2", start_quarter="2027Q1")]
    ctx = PlanContext("v1", budget=100, roadmap_spend={"core": 20})
    assert diff_plans(plan, plan, ctx, PlanContext("v2", budget=100,
                                                  roadmap_spend={"core": 20})) == []


def test_a_dropped_item_names_the_budget_it_no_longer_fits():
    # v1: budget 100, items 1 (cost 60) and 2 (cost 30). v2: budget 70, only item 1 (spend 60):
    # item 2 costs 30 and 70 - 60 = 10 is left, so the budget binds.
    base = [item("1", cost=60), item("2", cost=30, title="Search")]
    new = [item("1", cost=60)]
    [change] = diff_plans(base, new,
                          PlanContext("v1", budget=100, roadmap_spend={"core": 90}),
                          PlanContext("v2", budget=70, roadmap_spend={"core": 60}))
    assert (change.id, change.kind, change.title) == ("2", "dropped", "Search")
    assert change.before["cost"] == 30 and change.after is None
    assert change.reasons == ("budget changed: 100 → 70",
                              "the budget binds: it costs 30 and 10 of 70 is left")


def test_a_share_ceiling_and_a_full_team_keep_an_item_out():
    # New plan: core spends 80, niche 20 (total 100), core ceiling 0.8. Adding a 20-cost core
    # item makes core 100 / 120 = 83% > 80%. Team "web" is at 4 of 4 in 2027Q2.
    dropped = item("3", cost=20, teams=("web",), title="Dark mode")
    new_ctx = PlanContext("run #7", budget=200, roadmap_spend={"core": 80, "niche": 20},
                          shares=SHARES,
                          capacity={"web|2027Q1": (1.0, 4.0), "web|2027Q2": (4.0, 4.0),
                                    "data|2027Q2": (2.0, 2.0)})
    [change] = diff_plans([dropped], [], PlanContext("v1", budget=200), new_ctx)
    assert change.reasons == (
        "the core share ceiling 80% binds: with it, core would be 83% of spend",
        "team web's capacity binds (web|2027Q2 at capacity)")


def test_an_item_a_share_floor_forced_in_says_so():
    # Niche floor 10%: spend core 85 + niche 15 = 100; without the 15-cost niche item niche is
    # 0 / 85 = 0% < 10%.
    added = item("4", roadmap="niche", cost=15, title="Widget")
    new_ctx = PlanContext("run #8", budget=100, roadmap_spend={"core": 85, "niche": 15},
                          shares=SHARES)
    [change] = diff_plans([], [added], PlanContext("v1", budget=100), new_ctx)
    assert change.kind == "added"
    assert change.reasons == ("the niche share floor 10% binds: without it, niche would be 0% "
                              "of spend",)


def test_an_added_item_without_a_binding_cause_is_chosen_for_its_value():
    [change] = diff_plans([], [item("5", value=1234.4, cost=99.6)], PlanContext("v1"),
                          PlanContext("run #9", budget=500, roadmap_spend={"core": 99.6},
                                      shares=SHARES))
    assert change.reasons == ("new in run #9: chosen for its value 1,234 at cost 100",)


def test_value_changes_name_the_evidence_and_small_moves_are_ignored():
    base = [item("1", value=1000.0, evidence="assumption"), item("2", value=200.0),
            item("3", value=1000.0)]
    new = [item("1", value=400.0, evidence="experiment"), item("2", value=300.0),
           item("3", value=1004.0)]  # 0.4% < 0.5%: not a change
    ctx = PlanContext("x", budget=100, roadmap_spend={"core": 30})
    changes = diff_plans(base, new, ctx, ctx)
    assert [(c.id, c.kind, c.reasons) for c in changes] == [
        ("1", "value_changed", ("value changed: 1,000 → 400",
                                "evidence changed: assumption → experiment")),
        ("2", "value_changed", ("value changed: 200 → 300",
                                "re-estimated from new data (same evidence level)")),
    ]


def test_a_moved_item_names_its_quarters_and_the_full_team():
    base = [item("1", start_quarter="2027Q1", teams=("design",))]
    new = [item("1", start_quarter="2027Q3", teams=("design",))]
    new_ctx = PlanContext("run #3", budget=100, roadmap_spend={"core": 10},
                          capacity={"design|2027Q1": (3.0, 3.0), "design|2027Q2": (1.0, 3.0)})
    [change] = diff_plans(base, new, PlanContext("v1"), new_ctx)
    assert change.kind == "moved"
    assert change.before["start_quarter"] == "2027Q1" and change.after["start_quarter"] == "2027Q3"
    assert change.reasons == ("start moved: 2027Q1 → 2027Q3",
                              "team design's capacity binds (design|2027Q1 at capacity)")


def test_dropped_items_carry_the_councils_state_and_changes_are_ordered():
    base = [item("1", title="B", state="approve"), item("2", title="A", state="defer"),
            item("3", title="C")]
    new = [item("3", title="C"), item("9", title="Z")]
    ctx = PlanContext("v2", budget=1000, roadmap_spend={"core": 20})
    changes = diff_plans(base, new, PlanContext("v1", budget=1000), ctx)
    assert [(c.kind, c.title) for c in changes] == [("added", "Z"), ("dropped", "A"),
                                                    ("dropped", "B")]
    assert changes[1].reasons == ("the council's state in v1: defer",)
    assert changes[2].reasons == ("it was approved in v1: revoked, or approved items were "
                                  "not kept",)
    assert changes[0].to_dict()["investment"] == "9"


def test_evidence_level_reads_the_value_sources():
    assert evidence_level({"probability_of_success": {
        "source": "evidence level 'experiment' of hypothesis #3"}}) == "experiment"
    assert evidence_level({"probability_of_success": {
        "source": "no evidence: an assumption"}}) == "assumption"
    assert evidence_level({}) == "" and evidence_level(None) == ""
    assert evidence_level(["not", "a", "mapping"]) == "" and evidence_level({"probability_of_success": 3}) == ""
