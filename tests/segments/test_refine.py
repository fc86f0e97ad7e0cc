"""Refining a rule: threshold and window sweeps agree with evaluate_rule and move monotonically.

Pure, no database.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.frame import UserEvents, build_user_events
from segments.analytics import rules as rules_module
from segments.analytics.refine import (
    node_at,
    replace_at,
    revenue_since_signup,
    sweep_threshold,
    sweep_window,
)
from segments.analytics.rules import RuleError, evaluate_rule

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(days: float = 0, hours: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours)


def make_data(events: list[tuple[Any, ...]], users: list[dict[str, Any]]) -> UserEvents:
    """Events as (user, event, time, revenue, properties dict or None)."""
    frame = pd.DataFrame({
        "user_id": [e[0] for e in events],
        "event": [e[1] for e in events],
        "timestamp": pd.to_datetime([e[2] for e in events], utc=True),
        "revenue": [float(e[3]) for e in events],
        "properties": pd.Series([None if e[4] is None else json.dumps(e[4]) for e in events],
                                dtype=object),
    })
    user_frame = pd.DataFrame(users)
    user_frame["signup_time"] = pd.to_datetime(user_frame["signup_time"], utc=True)
    return build_user_events([frame], user_frame, with_properties=True)


AS_OF = at(60)
EVENTS = [
    *[("u1", "report_created", at(d), 0, None) for d in (0, 1, 2, 3, 8, 20)],
    *[("u1", "feature_used", at(d), 0, {"feature": f}) for d, f in ((1, "a"), (2, "b"), (9, "c"))],
    ("u1", "purchase", at(5), 40, None),
    ("u1", "purchase", at(100), 1000, None),  # after as_of: in no value
    *[("u2", "report_created", at(d), 0, None) for d in (10, 11)],
    ("u2", "feature_used", at(10), 0, {"feature": "a"}),
    ("u2", "purchase", at(12), 10, None),
    ("u2", "purchase", at(10 + 95), 500, None),  # beyond 90 days after signup
    *[("u3", "report_created", at(d), 0, None) for d in (30, 31, 32, 33, 34)],
    *[("u3", "feature_used", at(30), 0, {"feature": f}) for f in ("a", "b", "c", "d")],
    ("u3", "purchase", at(55), 200, None),
    ("u4", "login", at(1), 0, None),
    ("u4", "purchase", at(2), 5, None),
    ("u5", "report_created", at(59), 0, None),
    ("u5", "report_created", AS_OF, 0, None),  # at as_of: ignored
]
USERS = [
    {"user_id": "u1", "plan": "pro", "signup_time": at(0)},
    {"user_id": "u2", "plan": "free", "signup_time": at(10)},
    {"user_id": "u3", "plan": "pro", "signup_time": at(30)},
    {"user_id": "u4", "plan": "team", "signup_time": at(0)},
    {"user_id": "u5", "plan": "pro", "signup_time": at(50)},
]


@pytest.fixture(scope="module")
def data() -> UserEvents:
    return make_data(EVENTS, USERS)


def sizes(rows: list[dict[str, Any]]) -> list[int]:
    return [row["size"] for row in rows]


def check_rows(rows: list[dict[str, Any]], data: UserEvents, as_of: Any) -> None:
    """Every row's size and share are those of evaluate_rule on the row's rule."""
    for row in rows:
        mask = evaluate_rule(row["rule"], data, as_of)
        assert row["size"] == int(mask.sum())
        assert row["share"] == pytest.approx(mask.sum() / data.n_users)


# --------------------------------------------------------------------------------------------
# Threshold sweeps


def test_threshold_sweep(data: UserEvents) -> None:
    rule = {"all": [{"attribute": "plan", "op": "ne", "value": "free"},
                    {"event": "report_created", "window": {"from_signup_days": [0, 30]}}]}
    rows = sweep_threshold(rule, "all[1]", range(0, 8), data, AS_OF)
    # pro/team users: u1 has 6 reports in 30 days, u3 5, u5 1 (one more at as_of), u4 0.
    assert sizes(rows) == [4, 3, 2, 2, 2, 2, 1, 0]
    assert [row["threshold"] for row in rows] == list(range(8))
    check_rows(rows, data, AS_OF)
    for row in rows:
        expected = copy.deepcopy(rule)
        expected["all"][1]["min_count"] = row["threshold"]
        assert row["rule"] == expected
        assert evaluate_rule(expected, data, AS_OF).sum() == row["size"]
    assert rule["all"][1] == {"event": "report_created",
                              "window": {"from_signup_days": [0, 30]}}  # input untouched


def test_threshold_sweep_keeps_max_count(data: UserEvents) -> None:
    rule = {"event": "report_created", "max_count": 5}
    rows = sweep_threshold(rule, "", [0, 1, 2, 5, 6], data, AS_OF)
    assert sizes(rows) == [4, 3, 2, 1, 0]  # u1 (6 reports) is above the cap throughout
    check_rows(rows[:-1], data, AS_OF)  # min 6 > max 5 is not a valid rule on its own


def test_distinct_and_revenue_threshold_sweeps(data: UserEvents) -> None:
    rule = {"any": [{"distinct": {"event": "feature_used", "property": "feature"}, "min": 1},
                    {"attribute": "plan", "op": "eq", "value": "team"}]}
    rows = sweep_threshold(rule, "any[0]", [1, 2, 3, 4, 5], data, AS_OF)
    assert sizes(rows) == [4, 3, 3, 2, 1]  # distinct features: u1 3, u2 1, u3 4; u4 by plan
    check_rows(rows, data, AS_OF)

    revenue = {"revenue": {"op": "gte", "value": 0}}
    rows = sweep_threshold(revenue, "$", [0, 5, 10, 40.5, 200, 201], data, AS_OF)
    assert sizes(rows) == [5, 4, 3, 1, 1, 0]
    check_rows(rows, data, AS_OF)
    assert rows[3]["rule"] == {"revenue": {"op": "gte", "value": 40.5}}


def test_threshold_sweep_counts_events_once(data: UserEvents,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = rules_module.RuleEvaluator.matching_events

    def counting(self: Any, node: Any, path: str = "", window: Any = ...) -> np.ndarray:
        calls.append(path)
        return original(self, node, path, window)

    monkeypatch.setattr(rules_module.RuleEvaluator, "matching_events", counting)
    rule = {"all": [{"event": "report_created"}, {"revenue": {"op": "gt", "value": 0}}]}
    rows = sweep_threshold(rule, "all[0]", range(1, 11), data, AS_OF)
    assert len(rows) == 10
    assert sorted(calls) == ["all[0]", "all[1]"]  # each node scanned once, not once per k
    calls.clear()
    sweep_window(rule, "all[0]", range(1, 31), data, AS_OF)
    assert sorted(calls) == ["all[0]", "all[1]"]


def test_default_metric_is_mean_90_day_revenue(data: UserEvents) -> None:
    rows = sweep_threshold({"event": "report_created"}, "", [1, 5, 6, 7], data, AS_OF)
    # 90-day revenue since signup, before as_of: u1 40, u2 10, u3 200, u5 0.
    assert [row["metric"] for row in rows] == [pytest.approx(250 / 4), pytest.approx(120.0),
                                               pytest.approx(40.0), None]
    per_user = revenue_since_signup(data, AS_OF)
    assert dict(zip(data.user_ids, per_user, strict=True)) == {
        "u1": 40, "u2": 10, "u3": 200, "u4": 5, "u5": 0}


def test_custom_value_fn(data: UserEvents) -> None:
    rows = sweep_threshold({"event": "report_created"}, "", [2, 6], data, AS_OF,
                           value_fn=lambda mask: sorted(data.user_ids[mask]))
    assert [row["metric"] for row in rows] == [["u1", "u2", "u3"], ["u1"]]


# --------------------------------------------------------------------------------------------
# Window sweeps


def test_window_sweep_from_signup(data: UserEvents) -> None:
    rule = {"all": [{"event": "report_created", "min_count": 5,
                     "window": {"from_signup_days": [0, 7]}}]}
    rows = sweep_window(rule, "all[0]", range(1, 31), data, AS_OF)
    got = sizes(rows)
    assert got == sorted(got)  # a longer window can only add events
    # u3's fifth report is on day 4 after signup, u1's on day 8.
    assert (got[3], got[4], got[7], got[8], got[-1]) == (0, 1, 1, 2, 2)
    check_rows(rows, data, AS_OF)
    assert rows[6]["rule"] == rule and rows[6]["days"] == 7


def test_window_sweep_with_a_later_start_and_no_window(data: UserEvents) -> None:
    rule = {"event": "report_created", "window": {"from_signup_days": [2, 4]}}
    rows = sweep_window(rule, "", [3, 4, 5, 30], data, AS_OF)
    assert sizes(rows) == [2, 2, 2, 3]  # u1 (day 2, 3), u3 (day 2, 3, 4), later u5 (day 9)
    check_rows(rows, data, AS_OF)
    bare = {"event": "report_created", "min_count": 2}
    rows = sweep_window(bare, "", [1, 2, 10], data, AS_OF)
    assert sizes(rows) == [0, 3, 3]
    assert rows[1]["rule"]["window"] == {"from_signup_days": [0, 2]}
    check_rows(rows, data, AS_OF)
    with pytest.raises(RuleError) as err:
        sweep_window(rule, "", [2], data, AS_OF)
    assert err.value.path == "window.from_signup_days"


def test_window_sweep_last_days(data: UserEvents) -> None:
    rule = {"event": "report_created", "window": {"last_days": 7}}
    rows = sweep_window(rule, "", [1, 2, 25, 26, 40, 50], data, AS_OF)
    # Reports at day 59 (u5), 30-34 (u3), 20 and earlier (u1), 10-11 (u2); as_of is day 60.
    assert sizes(rows) == [1, 1, 1, 2, 3, 4]
    check_rows(rows, data, AS_OF)


def test_window_sweep_distinct_and_revenue(data: UserEvents) -> None:
    rule = {"distinct": {"event": "feature_used", "property": "feature"}, "min": 3,
            "window": {"from_signup_days": [0, 7]}}
    rows = sweep_window(rule, "", [1, 3, 9, 10], data, AS_OF)
    assert sizes(rows) == [1, 1, 1, 2]  # u3 at once; u1's third feature on day 9
    check_rows(rows, data, AS_OF)
    revenue = {"revenue": {"op": "gte", "value": 40}, "window": {"from_signup_days": [0, 1]}}
    rows = sweep_window(revenue, "", [1, 5, 6, 30], data, AS_OF)
    assert sizes(rows) == [0, 0, 1, 2]
    check_rows(rows, data, AS_OF)


# --------------------------------------------------------------------------------------------
# Errors and paths


def test_sweep_errors(data: UserEvents) -> None:
    rule = {"all": [{"attribute": "plan", "op": "eq", "value": "pro"},
                    {"not": {"event": "login", "window": {"between": ["2025-01-01",
                                                                      "2025-02-01"]}}}]}
    cases = [
        (lambda: sweep_threshold(rule, "all[0]", [1], data, AS_OF), "all[0]"),
        (lambda: sweep_threshold(rule, "all[2]", [1], data, AS_OF), "all[2]"),
        (lambda: sweep_threshold(rule, "all[1].any[0]", [1], data, AS_OF), "all[1].any[0]"),
        (lambda: sweep_threshold(rule, "all[1].not", [-1], data, AS_OF),
         "all[1].not.min_count"),
        (lambda: sweep_window(rule, "all[1].not", [3], data, AS_OF),
         "all[1].not.window.between"),
        (lambda: sweep_threshold({"revenue": {"op": "between", "value": [1, 2]}}, "", [1],
                                 data, AS_OF), "revenue.op"),
        (lambda: sweep_threshold({"event": "x", "min_count": -1}, "", [1], data, AS_OF),
         "min_count"),
    ]
    for call, path in cases:
        with pytest.raises(RuleError) as err:
            call()
        assert err.value.path == path, str(err.value)


def test_node_paths() -> None:
    rule = {"all": [{"event": "a"}, {"not": {"any": [{"event": "b"}, {"event": "c"}]}}]}
    assert node_at(rule, "all[1].not.any[1]") == {"event": "c"}
    assert node_at(rule, "") is rule and node_at(rule, "$") is rule
    changed = replace_at(rule, "all[1].not.any[0]", {"event": "z"})
    assert changed["all"][1]["not"]["any"] == [{"event": "z"}, {"event": "c"}]
    assert rule["all"][1]["not"]["any"][0] == {"event": "b"}
    assert replace_at(rule, "all[1].not", {"event": "y"})["all"][1] == {"not": {"event": "y"}}


def test_node_under_not_moves_the_other_way(data: UserEvents) -> None:
    rows = sweep_threshold({"not": {"event": "report_created"}}, "not", range(1, 8), data,
                           AS_OF)
    got = sizes(rows)
    assert got == sorted(got) and got[-1] == data.n_users
    check_rows(rows, data, AS_OF)


# --------------------------------------------------------------------------------------------
# Property test: sweeps equal evaluate_rule and are monotone


EVENT = st.tuples(st.sampled_from(["a", "b", "feature_x"]), st.integers(0, 30),
                  st.sampled_from([0.0, 5.0, 20.0]),
                  st.sampled_from([None, {"feature": "f1"}, {"feature": "f2"}, {}]))
LOG = st.lists(st.tuples(st.sampled_from(["free", "pro"]), st.integers(0, 10),
                         st.lists(EVENT, min_size=1, max_size=8)), min_size=1, max_size=6)
WINDOW = st.one_of(
    st.none(),
    st.integers(0, 3).map(lambda a: {"from_signup_days": [a, a + 5]}),
    st.integers(1, 20).map(lambda n: {"last_days": n}),
)
NODE = st.one_of(
    st.builds(lambda e, w: {"event": e, **({"window": w} if w else {})},
              st.sampled_from(["a", "b", "feature_*", "*"]), WINDOW),
    st.builds(lambda p, w: {"distinct": {"event": "*", **({"property": p} if p else {})},
                            **({"window": w} if w else {})},
              st.sampled_from([None, "feature"]), WINDOW),
)


@settings(max_examples=60, deadline=None)
@given(log=LOG, node=NODE, as_of_day=st.integers(5, 35))
def test_sweeps_are_monotone_and_match_evaluate(log: list, node: dict, as_of_day: int) -> None:
    events, users = [], []
    for u, (plan, signup_day, mine) in enumerate(log):
        users.append({"user_id": f"u{u}", "plan": plan, "signup_time": at(signup_day)})
        events += [(f"u{u}", name, at(day), rev, props) for name, day, rev, props in mine]
    data = make_data(events, users)
    as_of = at(as_of_day)
    rule = {"all": [{"attribute": "plan", "op": "eq", "value": "pro"}, node]}

    rows = sweep_threshold(rule, "all[1]", range(0, 7), data, as_of)
    got = sizes(rows)
    assert got == sorted(got, reverse=True)
    check_rows(rows, data, as_of)

    start = (node.get("window") or {}).get("from_signup_days", [0])[0]
    rows = sweep_window(rule, "all[1]", range(start + 1, start + 12, 2), data, as_of)
    got = sizes(rows)
    assert got == sorted(got)
    check_rows(rows, data, as_of)
