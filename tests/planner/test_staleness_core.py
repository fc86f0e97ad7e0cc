"""planner.staleness without a database: a run's recorded inputs against today's."""

from __future__ import annotations

import copy

from planner.staleness import Change, compare, describe, same


def inputs(**scenario):  # type: ignore[no-untyped-def]
    """A two-item run record built by hand in the shape of OptimizationRun.inputs."""
    base = {
        "budget": 100.0, "shares": {"core": [0.6, 0.8]}, "capacity": {}, "quarters": [],
        "exclusions": [], "min_coverage": {}, "schedule": False, "time_limit": 30.0,
        "robust_draws": 0, "frontier_points": 0,
        "items": [
            {"id": "1", "roadmap": "core", "cost": 60.0, "value": 200.0, "value_low": 100.0,
             "value_high": 300.0, "effort": {"growth": 2}, "segments": [], "depends_on": [],
             "must_do": False, "must_not": False, "duration": 1},
            {"id": "2", "roadmap": "core", "cost": 50.0, "value": 180.0, "value_low": 180.0,
             "value_high": 180.0, "effort": {}, "segments": ["7"], "depends_on": ["1"],
             "must_do": False, "must_not": False, "duration": 1},
        ],
        "basis": {"version": 1, "items": {
            "1": {"title": "Checklist", "status": "proposed", "evidence": "assumption",
                  "exclusion_group": "", "snapshots": [],
                  "hypotheses": [{"hypothesis": 3, "status": "testing",
                                  "updated_at": "2026-12-01T10:00:00+00:00"}],
                  "experiments": []},
            "2": {"title": "Pricing", "status": "approved", "evidence": "none",
                  "exclusion_group": "", "snapshots": [{"segment": 7, "snapshot": 11,
                                                        "computed_at": "2026-11-01T00:00:00"}],
                  "hypotheses": [], "experiments": []},
        }},
    }
    base.update(scenario)
    return base


def test_identical_inputs_have_no_change():
    assert compare(inputs(), inputs()) == []


def test_a_run_recorded_without_its_basis_cannot_tell():
    old = inputs()
    del old["basis"]
    assert compare(old, inputs()) is None


def test_each_item_field_is_reported_with_then_and_now_in_a_fixed_order():
    now = inputs()
    item = now["items"][0]
    item["value"], item["value_low"], item["value_high"] = 0.0, 0.0, 0.0
    item["effort"] = {"growth": 3}
    basis = now["basis"]["items"]["1"]
    basis["evidence"] = "none"
    basis["hypotheses"] = [{"hypothesis": 3, "status": "invalidated",
                            "updated_at": "2026-12-05T12:00:00+00:00"}]
    assert compare(inputs(), now) == [
        Change("item", "value", 200.0, 0.0, "1", "Checklist"),
        Change("item", "value_low", 100.0, 0.0, "1", "Checklist"),
        Change("item", "value_high", 300.0, 0.0, "1", "Checklist"),
        Change("item", "effort", {"growth": 2}, {"growth": 3}, "1", "Checklist"),
        Change("item", "evidence", "assumption", "none", "1", "Checklist"),
        Change("item", "hypotheses",
               [{"hypothesis": 3, "status": "testing", "updated_at": "2026-12-01T10:00:00+00:00"}],
               [{"hypothesis": 3, "status": "invalidated",
                 "updated_at": "2026-12-05T12:00:00+00:00"}], "1", "Checklist"),
    ]


def test_scenario_changes_added_and_deleted_items():
    now = inputs(budget=120.0, quarters=["2027Q1"])
    deleted = now["items"].pop(0)
    del now["basis"]["items"][deleted["id"]]
    now["items"].append({**copy.deepcopy(inputs()["items"][0]), "id": "10", "value": 5.0})
    now["basis"]["items"]["10"] = {"title": "New", "status": "proposed"}
    assert compare(inputs(), now) == [
        Change("scenario", "budget", 100.0, 120.0),
        Change("scenario", "quarters", [], ["2027Q1"]),
        Change("deleted", "item", 200.0, None, "1", "Checklist"),
        Change("added", "item", None, 5.0, "10", "New"),
    ]


def test_status_counts_only_when_it_moves_an_item_in_or_out_of_the_plan():
    approved = inputs()
    approved["basis"]["items"]["1"]["status"] = "approved"  # a decision on this very run
    assert compare(inputs(), approved) == []
    rejected = inputs()
    rejected["items"].pop(0)  # the optimizer no longer gets it
    rejected["basis"]["items"]["1"] = {"title": "Checklist", "status": "rejected"}
    assert compare(inputs(), rejected) == [
        Change("item", "status", "proposed", "rejected", "1", "Checklist")]


def test_a_field_the_items_gain_later_is_compared_too():
    now = inputs()
    now["items"][1]["effort_by_quarter"] = {"growth": [1, 2]}
    assert compare(inputs(), now) == [
        Change("item", "effort_by_quarter", None, {"growth": [1, 2]}, "2", "Pricing")]


def test_numbers_are_compared_after_a_json_round_trip_not_bit_for_bit():
    assert same(0.1 + 0.2, 0.3) and same(100, 100.0)
    assert not same(100.0, 100.001) and not same(True, 1) and not same([1], [1, 2])
    assert same({"a": [1.0, {"b": 2}]}, {"a": [1, {"b": 2.0}]})


def test_describe_is_short_and_readable():
    assert describe(22933.4) == "22,933" and describe(0.0) == "0" and describe(None) == "none"
    assert describe(55.0) == "55" and describe(0.25) == "0.25" and describe(True) == "yes"
    assert describe([{"hypothesis": 3, "status": "invalidated",
                      "updated_at": "2026-12-05T12:00:00+00:00"}]) == \
        "hypothesis #3 invalidated (edited 2026-12-05T12:00)"
    assert describe({"growth": 2}) == "growth: 2"
