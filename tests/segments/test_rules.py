"""Rule trees: exact member sets per node and window type, validation paths, and a property test
against a naive per-user evaluator. Pure, no database.
"""

from __future__ import annotations

import fnmatch
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.frame import UserEvents, build_user_events
from segments.analytics.rules import (
    RuleError,
    describe_rule,
    evaluate_rule,
    validate_rule,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
DAY_US = 86_400_000_000


def at(days: float = 0, hours: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours)


def micros(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def make_data(events: list[tuple[Any, ...]], users: list[dict[str, Any]] | None = None,
              with_properties: bool = True) -> UserEvents:
    """Events as (user, event, time, revenue, properties dict or None)."""
    frame = pd.DataFrame({
        "user_id": [e[0] for e in events],
        "event": [e[1] for e in events],
        "timestamp": pd.to_datetime([e[2] for e in events], utc=True),
        "revenue": [float(e[3]) for e in events],
        "properties": pd.Series([None if e[4] is None else json.dumps(e[4], sort_keys=True)
                                 for e in events], dtype=object),
    })
    user_frame = None
    if users is not None:
        user_frame = pd.DataFrame(users)
        user_frame["signup_time"] = pd.to_datetime(user_frame["signup_time"], utc=True)
        user_frame["seats"] = user_frame["seats"].astype("float64")
    return build_user_events([frame], user_frame, with_properties=with_properties)


AS_OF = at(35)
EVENTS = [
    # u1: signup T0
    ("u1", "report_created", at(0), 0, None),
    ("u1", "report_created", at(1), 0, None),
    ("u1", "report_created", at(3), 0, None),
    ("u1", "report_created", at(10), 0, None),
    ("u1", "feature_used", at(2), 0, {"feature": "export"}),
    ("u1", "feature_used", at(4), 0, {"feature": "share"}),
    ("u1", "feature_used", at(5), 0, {"feature": "export"}),
    ("u1", "purchase", at(6), 50, {"plan": "pro"}),
    ("u1", "purchase", at(20), 60, None),
    # u2: signup day 2
    ("u2", "report_created", at(2), 0, None),
    ("u2", "report_created", at(12), 0, None),
    ("u2", "feature_used", at(3), 0, {"feature": "export", "n": 2}),
    ("u2", "feature_alpha", at(3), 0, None),
    ("u2", "feature_beta", at(4), 0, None),
    ("u2", "feature_gamma", at(5), 0, None),
    ("u2", "purchase", at(40), 20, None),  # after as_of
    # u3: no signup time, so its first event (day 30) stands in
    ("u3", "login", at(30), 0, None),
    ("u3", "report_created", at(31), 0, None),
    # u4: signup T0; a burst exactly at as_of that must be ignored
    ("u4", "report_created", at(1), 0, {"format": "pdf", "pages": 12}),
    ("u4", "report_created", at(2), 0, {"format": "csv", "pages": 3}),
    ("u4", "purchase", at(3), 100, None),
    *[("u4", "report_created", AS_OF, 0, None)] * 5,
    *[("u4", "feature_used", AS_OF, 0, {"feature": f}) for f in "abc"],
    # u5: signup T0
    ("u5", "feature_used", at(1), 0, {"feature": "export"}),
    ("u5", "login", at(50), 0, None),
]
USERS = [
    {"user_id": "u1", "plan": "pro", "seats": 5, "signup_time": at(0)},
    {"user_id": "u2", "plan": "free", "seats": 1, "signup_time": at(2)},
    {"user_id": "u3", "plan": None, "seats": None, "signup_time": None},
    {"user_id": "u4", "plan": "team", "seats": 20, "signup_time": at(0)},
    {"user_id": "u5", "plan": "pro", "seats": 2, "signup_time": at(0)},
]
ALL = {"u1", "u2", "u3", "u4", "u5"}


@pytest.fixture(scope="module")
def data() -> UserEvents:
    return make_data(EVENTS, USERS)


def members(rule: Any, data: UserEvents, as_of: Any = AS_OF) -> set[str]:
    mask = evaluate_rule(rule, data, as_of)
    assert mask.dtype == bool and mask.shape == (data.n_users,)
    return set(data.user_ids[mask])


# --------------------------------------------------------------------------------------------
# Exact member sets


@pytest.mark.parametrize(("rule", "expected"), [
    ({"event": "report_created"}, {"u1", "u2", "u3", "u4"}),
    ({"event": "report_created", "min_count": 3}, {"u1"}),  # u4's burst at as_of is ignored
    ({"event": "report_created", "min_count": 2, "max_count": 2}, {"u2", "u4"}),
    ({"event": "report_created", "min_count": 0, "max_count": 1}, {"u3", "u5"}),
    ({"event": "report_created", "min_count": 0}, ALL),
    ({"event": "never_happened"}, set()),
    ({"event": "purchase"}, {"u1", "u4"}),  # u2's purchase is after as_of
])
def test_event_counts(data: UserEvents, rule: dict, expected: set[str]) -> None:
    assert members(rule, data) == expected


@pytest.mark.parametrize(("window", "min_count", "expected"), [
    ({"from_signup_days": [0, 7]}, 2, {"u1", "u4"}),
    ({"from_signup_days": [0, 10]}, 2, {"u1", "u4"}),  # u2's day-10 report is outside [0, 10)
    ({"from_signup_days": [0, 11]}, 2, {"u1", "u2", "u4"}),
    ({"from_signup_days": [1, 2]}, 1, {"u1", "u3", "u4"}),  # u3's signup is its first event
    ({"from_signup_days": [3, 30]}, 2, {"u1"}),
    ({"between": ["2025-01-04T00:00:00Z", "2025-01-11T00:00:00Z"]}, 1, {"u1"}),
    ({"between": ["2025-01-02", "2025-01-03"]}, 1, {"u4", "u1"}),
    ({"between": ["2025-01-03T00:00:00+00:00", "2025-01-13T00:00:00+00:00"]}, 1,
     {"u1", "u2", "u4"}),
    ({"last_days": 10}, 1, {"u3"}),  # [day 25, day 35): u4's burst at as_of is out
    ({"last_days": 30}, 1, {"u1", "u2", "u3"}),
])
def test_windows(data: UserEvents, window: dict, min_count: int, expected: set[str]) -> None:
    rule = {"event": "report_created", "min_count": min_count, "window": window}
    assert members(rule, data) == expected


@pytest.mark.parametrize(("rule", "expected"), [
    ({"event": "feature_*"}, {"u1", "u2", "u5"}),
    ({"event": "feature_[ab]*"}, {"u2"}),
    ({"event": "*", "min_count": 9}, {"u1"}),
    ({"event": "feature_?????"}, {"u2"}),  # feature_alpha, feature_gamma
    ({"event": "feature_*", "min_count": 4}, {"u2"}),
])
def test_glob_patterns(data: UserEvents, rule: dict, expected: set[str]) -> None:
    assert members(rule, data) == expected


def _where(event: str, *filters: dict, **extra: Any) -> dict:
    return {"event": event, "where": list(filters), **extra}


@pytest.mark.parametrize(("rule", "expected"), [
    (_where("feature_used", {"property": "feature", "op": "eq", "value": "export"},
            min_count=2), {"u1"}),
    (_where("feature_used", {"property": "feature", "op": "ne", "value": "export"}), {"u1"}),
    (_where("feature_used", {"property": "feature", "op": "in", "value": ["share", "x"]}),
     {"u1"}),
    (_where("feature_used", {"property": "feature", "op": "contains", "value": "xp"}),
     {"u1", "u2", "u5"}),
    (_where("report_created", {"property": "pages", "op": "gt", "value": 5}), {"u4"}),
    (_where("report_created", {"property": "pages", "op": "lte", "value": 3}), {"u4"}),
    (_where("report_created", {"property": "pages", "op": "gte", "value": 13}), set()),
    (_where("report_created", {"property": "format", "op": "in", "value": ["csv"]},
            {"property": "pages", "op": "lt", "value": 10}), {"u4"}),
    (_where("report_created", {"property": "format", "op": "eq", "value": "csv"},
            {"property": "pages", "op": "gt", "value": 10}), set()),  # filters are per event
    (_where("report_created", {"property": "format", "op": "exists"}), {"u4"}),
    (_where("report_created", {"property": "format", "op": "exists", "value": False}),
     {"u1", "u2", "u3"}),
    # Typed comparisons: the text "2" is not the number 2; 2.0 is.
    (_where("feature_used", {"property": "n", "op": "eq", "value": "2"}), set()),
    (_where("feature_used", {"property": "n", "op": "eq", "value": 2.0}), {"u2"}),
    (_where("feature_used", {"property": "n", "op": "ne", "value": 3}), {"u2"}),
    (_where("*", {"property": "plan", "op": "eq", "value": "pro"}), {"u1"}),
    (_where("*", {"property": "feature", "op": "eq", "value": "export"},
            window={"from_signup_days": [0, 2]}), {"u2", "u5"}),
])
def test_property_filters(data: UserEvents, rule: dict, expected: set[str]) -> None:
    assert members(rule, data) == expected


@pytest.mark.parametrize(("rule", "expected"), [
    ({"distinct": {"event": "feature_used", "property": "feature"}, "min": 2}, {"u1"}),
    ({"distinct": {"event": "feature_used", "property": "feature"}, "min": 1, "max": 1},
     {"u2", "u5"}),
    ({"distinct": {"event": "feature_used", "property": "feature"}, "min": 2,
      "window": {"from_signup_days": [0, 4]}}, set()),
    ({"distinct": {"event": "feature_used", "property": "feature"}, "min": 2,
      "window": {"from_signup_days": [0, 5]}}, {"u1"}),
    ({"distinct": {"event": "*", "property": "feature"}, "min": 1,
      "where": [{"property": "feature", "op": "ne", "value": "export"}]}, {"u1"}),
    ({"distinct": {"event": "feature_*"}, "min": 4}, {"u2"}),
    ({"distinct": {"event": "feature_*"}, "max": 3}, {"u1", "u5"}),
    ({"distinct": {"event": "feature_*"}, "min": 3, "window": {"from_signup_days": [0, 3]}},
     {"u2"}),
    ({"distinct": {"event": "feature_*"}, "min": 4, "window": {"from_signup_days": [0, 3]}},
     set()),
    ({"distinct": {"event": "*"}, "min": 3}, {"u1", "u2"}),
])
def test_distinct(data: UserEvents, rule: dict, expected: set[str]) -> None:
    assert members(rule, data) == expected


@pytest.mark.parametrize(("revenue", "window", "expected"), [
    ({"op": "gte", "value": 100}, None, {"u1", "u4"}),  # u1: 50 + 60
    ({"op": "gt", "value": 100}, None, {"u1"}),
    ({"op": "lt", "value": 1}, None, {"u2", "u3", "u5"}),  # u2's purchase is after as_of
    ({"op": "lte", "value": 0}, None, {"u2", "u3", "u5"}),
    ({"op": "eq", "value": 100}, None, {"u4"}),
    ({"op": "between", "value": [50, 100]}, None, {"u4"}),
    ({"op": "gte", "value": 50}, {"from_signup_days": [0, 7]}, {"u1", "u4"}),
    ({"op": "gt", "value": 50}, {"from_signup_days": [0, 7]}, {"u4"}),
    ({"op": "gt", "value": 0}, {"last_days": 20}, {"u1"}),
    ({"op": "gt", "value": 0}, {"between": ["2025-01-01", "2025-01-05"]}, {"u4"}),
])
def test_revenue(data: UserEvents, revenue: dict, window: dict | None,
                 expected: set[str]) -> None:
    rule: dict[str, Any] = {"revenue": revenue}
    if window is not None:
        rule["window"] = window
    assert members(rule, data) == expected


@pytest.mark.parametrize(("rule", "expected"), [
    # first events: u1 d0, u2 d2, u3 d30, u4 d1, u5 d1
    ({"first_seen": {"op": "before", "value": "2025-01-02"}}, {"u1"}),
    ({"first_seen": {"op": "after", "value": "2025-01-02T00:00:00Z"}}, {"u2", "u3", "u4", "u5"}),
    ({"first_seen": {"op": "between", "value": ["2025-01-02", "2025-01-03"]}}, {"u4", "u5"}),
    ({"first_seen": {"op": "within_days", "value": 10}}, {"u3"}),
    # last events before as_of: u1 d20, u2 d12, u3 d31, u4 d3, u5 d1
    ({"last_seen": {"op": "within_days", "value": 10}}, {"u3"}),
    ({"last_seen": {"op": "within_days", "value": 20}}, {"u1", "u3"}),
    ({"last_seen": {"op": "before", "value": "2025-01-05"}}, {"u4", "u5"}),
    ({"last_seen": {"op": "after", "value": "2025-01-13"}}, {"u1", "u2", "u3"}),
])
def test_first_last_seen(data: UserEvents, rule: dict, expected: set[str]) -> None:
    assert members(rule, data) == expected


def test_seen_needs_an_event_before_as_of(data: UserEvents) -> None:
    rule = {"first_seen": {"op": "before", "value": "2030-01-01"}}
    assert members(rule, data, at(1)) == {"u1"}
    assert members(rule, data, at(0)) == set()


@pytest.mark.parametrize(("op", "value", "expected"), [
    ("eq", "pro", {"u1", "u5"}),
    ("ne", "pro", {"u2", "u4"}),  # a missing plan never matches
    ("in", ["free", "team"], {"u2", "u4"}),
    ("not_in", ["pro"], {"u2", "u4"}),
    ("is_null", None, {"u3"}),
    ("not_null", None, {"u1", "u2", "u4", "u5"}),
    ("contains", "ea", {"u4"}),
])
def test_text_attributes(data: UserEvents, op: str, value: Any, expected: set[str]) -> None:
    rule: dict[str, Any] = {"attribute": "plan", "op": op}
    if value is not None:
        rule["value"] = value
    assert members(rule, data) == expected


@pytest.mark.parametrize(("attribute", "op", "value", "expected"), [
    ("seats", "gt", 2, {"u1", "u4"}),
    ("seats", "gte", 2, {"u1", "u4", "u5"}),
    ("seats", "lt", 2, {"u2"}),
    ("seats", "lte", 5.0, {"u1", "u2", "u5"}),
    ("seats", "between", [2, 5], {"u1", "u5"}),
    ("seats", "eq", 20, {"u4"}),
    ("seats", "ne", 20, {"u1", "u2", "u5"}),
    ("seats", "in", [1, 2], {"u2", "u5"}),
    ("signup_time", "lt", "2025-01-02", {"u1", "u4", "u5"}),
    ("signup_time", "gte", "2025-01-03T00:00:00Z", {"u2"}),
    ("signup_time", "between", ["2025-01-01", "2025-01-03T00:00:00Z"], {"u1", "u2", "u4", "u5"}),
    ("signup_time", "eq", "2025-01-03T00:00:00+00:00", {"u2"}),
    ("country", "eq", "NL", set()),  # an attribute the data lacks is missing for everyone
    ("country", "is_null", None, ALL),
])
def test_numeric_and_datetime_attributes(data: UserEvents, attribute: str, op: str, value: Any,
                                         expected: set[str]) -> None:
    rule: dict[str, Any] = {"attribute": attribute, "op": op}
    if value is not None:
        rule["value"] = value
    assert members(rule, data) == expected


def test_text_attribute_holding_iso_dates() -> None:
    users = [{"user_id": u, "trial_end": t, "note": n} for u, t, n in (
        ("a", "2025-01-05T00:00:00Z", "2025-01-01"), ("b", "2025-02-01T10:00:00+01:00", "soon"),
        ("c", None, None))]
    frame = pd.DataFrame(users).astype({"trial_end": "str", "note": "str"})
    events = pd.DataFrame({"user_id": ["a", "b", "c"], "event": "e",
                           "timestamp": pd.to_datetime([T0] * 3, utc=True), "revenue": 0.0})
    data = build_user_events([events], frame)
    assert members({"attribute": "trial_end", "op": "lt", "value": "2025-02-01T09:30:00Z"},
                   data) == {"a", "b"}  # b's 10:00+01:00 is 09:00 UTC
    assert members({"attribute": "trial_end", "op": "between",
                    "value": ["2025-01-05", "2025-01-05T00:00:00Z"]}, data) == {"a"}
    assert members({"attribute": "trial_end", "op": "eq", "value": "2025-01-05T00:00:00Z"},
                   data) == {"a"}  # equality on text stays textual
    with pytest.raises(RuleError) as err:  # not every value is a date
        evaluate_rule({"attribute": "note", "op": "gt", "value": "2025-01-01"}, data, AS_OF)
    assert err.value.path == "op"


def test_attribute_type_mismatch_points_at_the_node(data: UserEvents) -> None:
    with pytest.raises(RuleError) as err:
        evaluate_rule({"all": [{"attribute": "plan", "op": "gt", "value": 3}]}, data, AS_OF)
    assert err.value.path == "all[0].op"
    with pytest.raises(RuleError) as err:
        evaluate_rule({"any": [{"attribute": "seats", "op": "gt", "value": "2025-01-01"}]},
                      data, AS_OF)
    assert err.value.path == "any[0].value"


@pytest.mark.parametrize(("rule", "expected"), [
    ({"all": []}, ALL),
    ({"any": []}, set()),
    ({"not": {"all": []}}, set()),
    ({"all": [{"attribute": "plan", "op": "eq", "value": "pro"},
              {"not": {"event": "report_created"}}]}, {"u5"}),
    ({"any": [{"revenue": {"op": "gte", "value": 100}},
              {"distinct": {"event": "feature_*"}, "min": 4}]}, {"u1", "u2", "u4"}),
    ({"not": {"any": [{"attribute": "plan", "op": "eq", "value": "pro"},
                      {"attribute": "plan", "op": "is_null"}]}}, {"u2", "u4"}),
    ({"all": [{"any": [{"event": "login"}, {"event": "purchase"}]},
              {"not": {"all": [{"attribute": "seats", "op": "gt", "value": 10},
                               {"revenue": {"op": "gt", "value": 0}}]}}]}, {"u1", "u3"}),
])
def test_nesting(data: UserEvents, rule: dict, expected: set[str]) -> None:
    assert members(rule, data) == expected


def test_as_of_as_int_or_aware_datetime(data: UserEvents) -> None:
    rule = {"event": "report_created", "min_count": 3}
    assert members(rule, data, micros(AS_OF)) == members(rule, data, AS_OF) == {"u1"}
    assert members(rule, data, micros(AS_OF) + 1) == {"u1", "u4"}  # the burst now counts
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate_rule(rule, data, datetime(2025, 2, 5))  # noqa: DTZ001 - naive on purpose


def test_property_filters_need_loaded_properties() -> None:
    data = make_data(EVENTS, USERS, with_properties=False)
    assert members({"event": "feature_used"}, data) == {"u1", "u2", "u5"}
    with pytest.raises(RuleError) as err:
        evaluate_rule({"all": [_where("feature_used", {"property": "feature", "op": "exists"})]},
                      data, AS_OF)
    assert err.value.path == "all[0].where"


def test_malformed_properties_count_as_missing() -> None:
    data = make_data([("a", "e", at(0), 0, None), ("b", "e", at(0), 0, None)])
    props = np.array(['{"k": 1', '["not", "an", "object"]'], dtype=object)
    data = UserEvents(**{**{f: getattr(data, f) for f in data.__dataclass_fields__},
                         "properties": props})
    assert members(_where("e", {"property": "k", "op": "exists"}), data, at(1)) == set()
    assert members(_where("e", {"property": "k", "op": "exists", "value": False}), data,
                   at(1)) == {"a", "b"}


def test_users_without_attributes() -> None:
    data = make_data([("a", "e", at(0), 3, None)])
    assert members({"attribute": "plan", "op": "is_null"}, data, at(1)) == {"a"}
    assert members({"revenue": {"op": "eq", "value": 3}}, data, at(1)) == {"a"}


def test_empty_data() -> None:
    data = build_user_events([], None, with_properties=True)
    rule = {"all": [_where("a", {"property": "x", "op": "exists"}),
                    {"distinct": {"event": "*", "property": "f"}},
                    {"first_seen": {"op": "within_days", "value": 3}},
                    {"attribute": "plan", "op": "is_null"}]}
    assert evaluate_rule(rule, data, AS_OF).shape == (0,)


def test_evaluate_returns_a_fresh_array(data: UserEvents) -> None:
    rule = {"event": "report_created"}
    first = evaluate_rule(rule, data, AS_OF)
    first[:] = False
    assert evaluate_rule(rule, data, AS_OF).sum() == 4


# --------------------------------------------------------------------------------------------
# Validation


NAMES = ["report_created", "feature_used", "feature_alpha", "purchase", "login"]
ATTRS = ["plan", "seats", "signup_time"]


@pytest.mark.parametrize(("rule", "path"), [
    ({"all": [{"event": "login"}, {"any": [
        {"event": "login", "window": {"from_signup_days": [7, 3]}}]}]},
     "all[1].any[0].window.from_signup_days"),
    ({"event": "login", "min_count": -1}, "min_count"),
    ({"any": [{"event": "login", "min_count": 3, "max_count": 2}]}, "any[0].max_count"),
    ({"event": "login", "min_count": "2"}, "min_count"),
    ({"attribute": "plan", "op": "like", "value": "x"}, "op"),
    ({"all": [{"event": "login", "bogus": 1}]}, "all[0].bogus"),
    ({"not": {"revenue": {"op": "gte", "value": "lots"}}}, "not.revenue.value"),
    ({"revenue": {"op": "ne", "value": 3}}, "revenue.op"),
    ({"event": "login", "window": {"between": ["2025-13-01", "2025-02-01"]}},
     "window.between[0]"),
    ({"event": "login", "window": {"between": ["2025-02-01", "2025-01-01"]}}, "window.between"),
    ({"event": "login", "window": {"last_days": 0}}, "window.last_days"),
    ({"event": "login", "window": {"weeks": 2}}, "window.weeks"),
    ({"event": "login", "window": {"from_signup_days": [0, 1.5]}},
     "window.from_signup_days[1]"),
    ({"all": [{"event": "nope"}]}, "all[0].event"),
    ({"distinct": {"event": "zzz_*"}, "min": 2}, "distinct.event"),
    ({"distinct": {"event": "feature_used", "prop": "x"}}, "distinct.prop"),
    ({"distinct": {"event": "feature_used"}, "min": 3, "max": 1}, "max"),
    ({"attribute": "country", "op": "eq", "value": "NL"}, "attribute"),
    ({"attribute": "seats", "op": "between", "value": [5, 1]}, "value"),
    ({"attribute": "plan", "op": "in", "value": ["a", {"b": 1}]}, "value[1]"),
    ({"attribute": "plan", "op": "is_null", "value": "x"}, "value"),
    ({"attribute": "plan", "op": "eq"}, "value"),
    ({"event": "login", "where": [{"property": "p", "op": "eq", "value": 1},
                                  {"property": "p", "op": "matches", "value": "x"}]},
     "where[1].op"),
    ({"event": "login", "where": [{"property": "p", "op": "gt", "value": "big"}]},
     "where[0].value"),
    ({"event": "login", "where": {"property": "p"}}, "where"),
    ({"first_seen": {"op": "within_days", "value": 0}}, "first_seen.value"),
    ({"last_seen": {"op": "before", "value": "yesterday"}}, "last_seen.value"),
    ({"last_seen": {"op": "between", "value": ["2025-02-01", "2025-01-01"]}},
     "last_seen.value"),
    ({"all": {"event": "login"}}, "all"),
    ({"any": [{"event": "login"}, "login"]}, "any[1]"),
    ({}, ""),
    ({"event": "login", "attribute": "plan"}, ""),
    ([{"event": "login"}], ""),
])
def test_validation_paths(rule: Any, path: str) -> None:
    with pytest.raises(RuleError) as err:
        validate_rule(rule, event_names=NAMES, attributes=ATTRS)
    assert err.value.path == path, str(err.value)
    assert str(err.value) == f"{path or '(root)'}: {err.value.message}"
    assert isinstance(err.value, ValueError)


def test_validation_limits() -> None:
    deep: dict[str, Any] = {"event": "login"}
    for _ in range(3):
        deep = {"not": deep}
    validate_rule(deep, max_depth=4)
    with pytest.raises(RuleError) as err:
        validate_rule(deep, max_depth=3)
    assert err.value.path == "not.not.not"
    wide = {"any": [{"event": "login"}] * 5}
    validate_rule(wide, max_nodes=6)
    with pytest.raises(RuleError) as err:
        validate_rule(wide, max_nodes=3)
    assert err.value.path == "any[2]"


def test_validation_is_structural_without_catalogs(data: UserEvents) -> None:
    rule = {"all": [{"event": "unknown_event"}, {"attribute": "unknown", "op": "is_null"}]}
    validate_rule(rule)
    assert members(rule, data) == set()
    with pytest.raises(RuleError) as err:
        evaluate_rule({"event": "login", "min_count": -2}, data, AS_OF)
    assert err.value.path == "min_count"


def test_valid_rules_pass() -> None:
    validate_rule({"all": [
        {"event": "feature_*", "min_count": 0, "max_count": None,
         "window": {"from_signup_days": [0, 7]},
         "where": [{"property": "feature", "op": "in", "value": ["a", 1, True]},
                   {"property": "n", "op": "exists", "value": False}]},
        {"distinct": {"event": "feature_used", "property": "feature"}, "min": 3,
         "window": {"between": ["2025-01-01", "2025-02-01T00:00:00Z"]}},
        {"revenue": {"op": "between", "value": [0, 10.5]}, "window": {"last_days": 30}},
        {"first_seen": {"op": "between", "value": ["2025-01-01", "2025-01-02"]}},
        {"not": {"attribute": "signup_time", "op": "gte", "value": "2025-01-01T00:00:00Z"}},
    ]}, event_names=NAMES, attributes=ATTRS)


# --------------------------------------------------------------------------------------------
# Description


def test_describe() -> None:
    rule = {"all": [
        {"event": "report_created", "min_count": 2, "window": {"from_signup_days": [0, 7]}},
        {"attribute": "plan", "op": "eq", "value": "pro"},
    ]}
    assert describe_rule(rule) == (
        "report_created at least 2 times in the first 7 days after signup AND plan is pro")
    text = describe_rule({"any": [
        {"distinct": {"event": "feature_used", "property": "feature"}, "min": 3,
         "window": {"from_signup_days": [0, 7]}},
        {"not": {"revenue": {"op": "gte", "value": 100}, "window": {"last_days": 30}}},
        {"all": [{"first_seen": {"op": "within_days", "value": 1}},
                 {"event": "feature_*", "min_count": 0, "max_count": 0,
                  "where": [{"property": "feature", "op": "eq", "value": "export"}]}]},
    ]})
    assert text == (
        "at least 3 distinct values of feature on feature_used in the first 7 days after "
        "signup OR NOT (revenue >= 100 in the last 30 days) OR (first seen in the last 1 day "
        "AND any event matching feature_* exactly 0 times with feature = 'export')")
    assert describe_rule({"all": []}) == "everyone"
    assert describe_rule({"any": []}) == "no one"
    with pytest.raises(RuleError):
        describe_rule({"event": 3})


# --------------------------------------------------------------------------------------------
# Property test: evaluate_rule against a naive per-user evaluator

EVENT_NAMES = ["a", "b", "feature_x", "feature_y"]
PATTERNS = [*EVENT_NAMES, "feature_*", "*", "c", "[ab]"]
FEATURES = ["f1", "f2", "f3"]
HOURS = 3_600_000_000


# Property payloads: absent, empty, text and numeric keys, an explicit null.
PROPS: list[dict[str, Any] | None] = [
    None, {}, {"feature": "f1"}, {"feature": "f2"}, {"feature": "f3", "n": 3},
    {"feature": "f1", "n": 0}, {"feature": None}, {"n": 5}, {"n": 2, "feature": "f2"},
]
# Times fall mostly on whole days, so events often sit exactly on window, signup and as_of
# boundaries (all whole days); a few are a quarter day off.
EVENT = st.tuples(st.sampled_from(EVENT_NAMES), st.integers(0, 40),
                  st.sampled_from([0, 0, 0, 6, 18]), st.sampled_from([0.0, 0.0, 5.0, 12.5, 100.0]),
                  st.sampled_from(PROPS))
USER = st.tuples(st.sampled_from(["free", "pro", "team", None]),
                 st.sampled_from([1.0, 3.0, 10.0, None]),
                 st.one_of(st.none(), st.tuples(st.integers(0, 19), st.sampled_from([0, 6]))),
                 st.lists(EVENT, min_size=1, max_size=8))


@st.composite
def event_logs(draw: st.DrawFn) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]], int]:
    events: list[tuple[Any, ...]] = []
    users: list[dict[str, Any]] = []
    for u, (plan, seats, signup, mine) in enumerate(draw(st.lists(USER, min_size=1,
                                                                  max_size=6))):
        uid = f"u{u}"
        users.append({"user_id": uid, "plan": plan, "seats": seats,
                      "signup_time": None if signup is None else at(*signup)})
        events += [(uid, name, at(day, hour), rev, props)
                   for name, day, hour, rev, props in mine]
    as_of = micros(at(days=draw(st.integers(5, 45)), hours=draw(st.sampled_from([0, 0, 12]))))
    return events, users, as_of


def iso(day: int) -> str:
    return (T0 + timedelta(days=day)).isoformat().replace("+00:00", "Z")


WINDOWS = st.one_of(
    st.none(),
    st.tuples(st.integers(0, 10), st.integers(1, 15)).map(
        lambda t: {"from_signup_days": [t[0], t[0] + t[1]]}),
    st.tuples(st.integers(0, 40), st.integers(1, 20)).map(
        lambda t: {"between": [iso(t[0]), iso(t[0] + t[1])]}),
    st.integers(1, 30).map(lambda n: {"last_days": n}),
)
FILTERS = st.one_of(
    st.builds(lambda op, v: {"property": "feature", "op": op, "value": v},
              st.sampled_from(["eq", "ne"]), st.sampled_from([*FEATURES, "zz"])),
    st.lists(st.sampled_from(FEATURES), max_size=2).map(
        lambda v: {"property": "feature", "op": "in", "value": v}),
    st.sampled_from(["f", "1", "x"]).map(
        lambda v: {"property": "feature", "op": "contains", "value": v}),
    st.builds(lambda op, v: {"property": "n", "op": op, "value": v},
              st.sampled_from(["gt", "gte", "lt", "lte", "eq", "ne"]), st.integers(0, 5)),
    st.just({"property": "n", "op": "eq", "value": "3"}),
    st.builds(lambda p, v: {"property": p, "op": "exists", **({} if v is None else {"value": v})},
              st.sampled_from(["feature", "n"]), st.sampled_from([None, True, False])),
)


def _bounds(draw: st.DrawFn, lo_key: str, hi_key: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    lo = draw(st.one_of(st.none(), st.integers(0, 3)))
    if lo is not None:
        out[lo_key] = lo
    if draw(st.booleans()):
        out[hi_key] = (1 if lo is None else lo) + draw(st.integers(0, 3))
    return out


@st.composite
def leaves(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["plan", "seats", "event", "distinct", "revenue", "seen"]))
    extra: dict[str, Any] = {}
    window = draw(WINDOWS)
    if window is not None:
        extra["window"] = window
    if kind == "plan":
        op = draw(st.sampled_from(["eq", "ne", "in", "not_in", "is_null", "not_null",
                                   "contains"]))
        if op in ("in", "not_in"):
            return {"attribute": "plan", "op": op,
                    "value": draw(st.lists(st.sampled_from(["free", "pro", "x"]), max_size=2))}
        if op in ("is_null", "not_null"):
            return {"attribute": "plan", "op": op}
        return {"attribute": "plan", "op": op,
                "value": draw(st.sampled_from(["free", "pro", "ro", "e"]))}
    if kind == "seats":
        op = draw(st.sampled_from(["gt", "gte", "lt", "lte", "eq", "ne", "between", "in"]))
        if op == "between":
            lo = draw(st.integers(0, 10))
            return {"attribute": "seats", "op": op, "value": [lo, lo + draw(st.integers(0, 9))]}
        if op == "in":
            return {"attribute": "seats", "op": op,
                    "value": draw(st.lists(st.sampled_from([1, 3, 10.0]), max_size=2))}
        return {"attribute": "seats", "op": op, "value": draw(st.sampled_from([1, 3, 10, 2.5]))}
    if kind == "event":
        where = draw(st.lists(FILTERS, max_size=2))
        return {"event": draw(st.sampled_from(PATTERNS)),
                **_bounds(draw, "min_count", "max_count"), **extra,
                **({"where": where} if where else {})}
    if kind == "distinct":
        spec: dict[str, Any] = {"event": draw(st.sampled_from(PATTERNS))}
        prop = draw(st.sampled_from([None, "feature", "n"]))
        if prop:
            spec["property"] = prop
        where = draw(st.lists(FILTERS, max_size=1))
        return {"distinct": spec, **_bounds(draw, "min", "max"), **extra,
                **({"where": where} if where else {})}
    if kind == "revenue":
        op = draw(st.sampled_from(["gt", "gte", "lt", "lte", "eq", "between"]))
        values = [0, 5, 12.5, 17.5, 100]
        value: Any = (sorted(draw(st.lists(st.sampled_from(values), min_size=2, max_size=2)))
                      if op == "between" else draw(st.sampled_from(values)))
        return {"revenue": {"op": op, "value": value}, **extra}
    which = draw(st.sampled_from(["first_seen", "last_seen"]))
    op = draw(st.sampled_from(["before", "after", "between", "within_days"]))
    if op == "within_days":
        return {which: {"op": op, "value": draw(st.integers(1, 30))}}
    day = draw(st.integers(0, 40))
    if op == "between":
        return {which: {"op": op, "value": [iso(day), iso(day + draw(st.integers(1, 10)))]}}
    return {which: {"op": op, "value": iso(day)}}


def rule_trees(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    if depth == 0:
        return leaves()
    child = rule_trees(depth - 1)
    return st.one_of(
        leaves(),
        st.lists(child, max_size=3).map(lambda c: {"all": c}),
        st.lists(child, max_size=3).map(lambda c: {"any": c}),
        child.map(lambda c: {"not": c}),
    )


def _micros_iso(text: str) -> int:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return micros(moment)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    return a == b


def _cmp(x: float, op: str, v: Any) -> bool:
    if op == "gt":
        return x > v
    if op == "gte":
        return x >= v
    if op == "lt":
        return x < v
    if op == "lte":
        return x <= v
    if op == "eq":
        return x == v
    if op == "between":
        return v[0] <= x <= v[1]
    raise AssertionError(op)


class NaiveUser:
    """One user's attributes and events, evaluated with plain loops."""

    def __init__(self, attrs: dict[str, Any], events: list[tuple[Any, ...]], as_of: int) -> None:
        self.attrs = attrs
        self.as_of = as_of
        self.events = [(name, micros(t), rev, props) for _, name, t, rev, props in events]
        signup = attrs.get("signup_time")
        self.signup = micros(signup) if signup is not None else min(e[1] for e in self.events)

    def match(self, node: dict[str, Any]) -> bool:
        if "all" in node:
            return all(self.match(c) for c in node["all"])
        if "any" in node:
            return any(self.match(c) for c in node["any"])
        if "not" in node:
            return not self.match(node["not"])
        if "attribute" in node:
            return self.attribute(node)
        if "event" in node:
            count = len(self.matching(node["event"], node))
            hi = node.get("max_count")
            return count >= node.get("min_count", 1) and (hi is None or count <= hi)
        if "distinct" in node:
            spec = node["distinct"]
            seen = set()
            for name, _, _, props in self.matching(spec["event"], node):
                if "property" not in spec:
                    seen.add(name)
                elif props and props.get(spec["property"]) is not None:
                    seen.add(props[spec["property"]])
            hi = node.get("max")
            return len(seen) >= node.get("min", 1) and (hi is None or len(seen) <= hi)
        if "revenue" in node:
            total = 0.0
            for _, _, rev, _ in self.matching("*", node):
                total += rev
            return _cmp(total, node["revenue"]["op"], node["revenue"]["value"])
        kind = "first_seen" if "first_seen" in node else "last_seen"
        times = [t for _, t, _, _ in self.events if t < self.as_of]
        if not times:
            return False
        t = min(times) if kind == "first_seen" else max(times)
        op, value = node[kind]["op"], node[kind]["value"]
        if op == "before":
            return t < _micros_iso(value)
        if op == "after":
            return t >= _micros_iso(value)
        if op == "between":
            return _micros_iso(value[0]) <= t < _micros_iso(value[1])
        return t >= self.as_of - value * DAY_US

    def attribute(self, node: dict[str, Any]) -> bool:
        v = self.attrs.get(node["attribute"])
        op, value = node["op"], node.get("value")
        if op == "is_null":
            return v is None
        if v is None:
            return False
        if op == "not_null":
            return True
        if op == "eq":
            return v == value
        if op == "ne":
            return v != value
        if op == "in":
            return v in value
        if op == "not_in":
            return v not in value
        if op == "contains":
            return value in v
        return _cmp(v, op, value)

    def in_window(self, t: int, window: dict[str, Any] | None) -> bool:
        if window is None:
            return True
        if "from_signup_days" in window:
            a, b = window["from_signup_days"]
            return self.signup + a * DAY_US <= t < self.signup + b * DAY_US
        if "between" in window:
            lo, hi = window["between"]
            return _micros_iso(lo) <= t < _micros_iso(hi)
        return t >= self.as_of - window["last_days"] * DAY_US

    def matching(self, pattern: str, node: dict[str, Any]) -> list[tuple[Any, ...]]:
        out = []
        for event in self.events:
            name, t, _, props = event
            if t >= self.as_of or not fnmatch.fnmatchcase(name, pattern):
                continue
            if not self.in_window(t, node.get("window")):
                continue
            if all(_filter_ok(props, f) for f in node.get("where", [])):
                out.append(event)
        return out


def _filter_ok(props: dict[str, Any] | None, f: dict[str, Any]) -> bool:
    v = (props or {}).get(f["property"])
    op, value = f["op"], f.get("value")
    if op == "exists":
        return (v is not None) == (True if value is None else value)
    if v is None:
        return False
    if op == "eq":
        return _same(v, value)
    if op == "ne":
        return not _same(v, value)
    if op == "in":
        return any(_same(v, x) for x in value)
    if op == "contains":
        return isinstance(v, str) and value in v
    return isinstance(v, int | float) and not isinstance(v, bool) and _cmp(v, op, value)


def naive_members(rule: dict[str, Any], events: list[tuple[Any, ...]],
                  users: list[dict[str, Any]], as_of: int) -> set[str]:
    out = set()
    for attrs in users:
        mine = [e for e in events if e[0] == attrs["user_id"]]
        if mine and NaiveUser(attrs, mine, as_of).match(rule):
            out.add(attrs["user_id"])
    return out


# Boundary-sensitive leaves checked on every generated log, beside the random trees.
BATTERY_WINDOWS: list[dict[str, Any] | None] = [
    None, {"from_signup_days": [0, 1]}, {"from_signup_days": [0, 3]},
    {"from_signup_days": [1, 2]}, {"from_signup_days": [2, 10]}, {"last_days": 1},
    {"last_days": 3}, {"last_days": 10}, {"between": [iso(3), iso(5)]},
    {"between": [iso(10), iso(20)]},
]
BATTERY: list[dict[str, Any]] = [
    *[{"event": "*", "min_count": k, **({"window": w} if w else {})}
      for w in BATTERY_WINDOWS for k in (1, 2)],
    *[{"revenue": {"op": "gt", "value": 0}, **({"window": w} if w else {})}
      for w in BATTERY_WINDOWS],
    *[{"distinct": {"event": "*", **({"property": p} if p else {})}, "min": k}
      for p in (None, "feature", "n") for k in (2, 3)],
    *[{"event": "*", "where": [f]} for f in (
        {"property": "feature", "op": "exists"},
        {"property": "feature", "op": "exists", "value": False},
        {"property": "n", "op": "exists"},
        {"property": "n", "op": "gte", "value": 3},
        {"property": "n", "op": "lt", "value": 3},
        {"property": "n", "op": "eq", "value": "2"},
        {"property": "feature", "op": "ne", "value": "f1"},
        {"property": "feature", "op": "in", "value": ["f2", "f3"]},
        {"property": "feature", "op": "contains", "value": "1"},
    )],
    *[{seen: {"op": op, "value": iso(day)}} for seen in ("first_seen", "last_seen")
      for op in ("before", "after") for day in (1, 5, 20)],
    *[{seen: {"op": "within_days", "value": n}} for seen in ("first_seen", "last_seen")
      for n in (1, 5)],
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log=event_logs(), trees=st.lists(rule_trees(3), min_size=1, max_size=3),
       more_leaves=st.lists(leaves(), min_size=4, max_size=10))
def test_matches_naive_evaluator(log: tuple[list, list, int], trees: list[dict],
                                 more_leaves: list[dict]) -> None:
    events, users, as_of = log
    data = make_data(events, users)
    for rule in trees + more_leaves + BATTERY:
        validate_rule(rule, attributes=["plan", "seats", "signup_time"])
        assert isinstance(describe_rule(rule), str)
        for node in subtrees(rule):  # every subtree, so a wrong leaf cannot hide in the tree
            got = set(data.user_ids[evaluate_rule(node, data, as_of)])
            assert got == naive_members(node, events, users, as_of), node


def subtrees(node: dict[str, Any]) -> list[dict[str, Any]]:
    children = node.get("all") or node.get("any") or ([node["not"]] if "not" in node else [])
    return [node] + [sub for child in children for sub in subtrees(child)]


# --------------------------------------------------------------------------------------------
# Vectorized paths against the straightforward computations they replace


def test_distinct_per_user_seen_table_matches_sorting(monkeypatch: pytest.MonkeyPatch) -> None:
    from segments.analytics import rules as rules_module

    rng = np.random.default_rng(5)
    n_users = 500
    users = rng.integers(0, n_users, 4000)
    codes = rng.integers(-1, 12, 4000)  # -1 = nothing to count
    keep = codes >= 0
    width = int(codes.max()) + 1
    pairs = np.unique(users[keep] * width + codes[keep])  # the sort-based count, by hand
    expected = np.bincount(pairs // width, minlength=n_users)
    got = rules_module.distinct_per_user(users, codes, n_users)
    assert got.dtype == np.int64 and (got == expected).all()
    from segments.analytics.rules import evaluate as rules_evaluate

    monkeypatch.setattr(rules_evaluate, "SEEN_MATRIX_CELLS", 0)  # the sorting fallback
    assert (rules_module.distinct_per_user(users, codes, n_users) == expected).all()
    assert (rules_module.distinct_per_user(users[:0], codes[:0], n_users) == 0).all()


def test_event_order_matches_lexsort() -> None:
    from events.frame import event_order

    rng = np.random.default_rng(6)
    user = np.sort(rng.integers(0, 50, 400))
    time = rng.integers(0, 1000, 400)
    for u in np.unique(user):  # times in order within each user, with ties
        time[user == u] = np.sort(time[user == u])
    assert event_order(user, time) is None  # already sorted: nothing to do
    # Partitions of disjoint users, each sorted, concatenated out of user order.
    parts = [user % 3 == k for k in (2, 0, 1)]
    shuffled_user = np.concatenate([user[p] for p in parts])
    shuffled_time = np.concatenate([time[p] for p in parts])
    order = event_order(shuffled_user, shuffled_time)
    assert (order == np.lexsort((shuffled_time, shuffled_user))).all()
    # Times out of order within a user: the full lexsort.
    messy_time = rng.integers(0, 1000, 400)
    assert (event_order(shuffled_user, messy_time)
            == np.lexsort((messy_time, shuffled_user))).all()


def test_events_named_matches_a_scan() -> None:
    rng = np.random.default_rng(7)
    data = make_data([(f"u{rng.integers(0, 20)}", f"e{rng.integers(0, 6)}",
                       at(float(rng.integers(0, 30))), 0, None) for _ in range(300)])
    event = data.event.copy()
    event[::17] = -1  # an event without a known name is in no slice
    data = UserEvents(**{**{f: getattr(data, f) for f in data.__dataclass_fields__},
                         "event": event})
    for codes in ([0], [2, 4], [5, 1, 1], [], [-1, 3]):
        expected = np.flatnonzero(np.isin(event, [c for c in codes if c >= 0]))
        got = data.events_named(np.array(codes, dtype=np.int64))
        assert (got == expected).all(), codes


def test_revenue_rules_read_only_revenue_events_with_identical_sums() -> None:
    from segments.analytics.rules import RuleEvaluator

    rng = np.random.default_rng(8)
    events = [(f"u{rng.integers(0, 30)}", "e", at(float(rng.uniform(0, 40))),
               float(rng.choice([0.0, 0.0, 0.1, 2.5, 1e6, -0.0])), None) for _ in range(500)]
    data = make_data(events)
    as_of = micros(at(33))
    for window in (None, {"last_days": 10}, {"from_signup_days": [0, 5]}):
        node: dict[str, Any] = {"revenue": {"op": "gt", "value": 0}}
        if window:
            node["window"] = window
        evaluator = RuleEvaluator(data, as_of)
        got = evaluator.stat(node)
        # Every event before as_of in the window, zero revenue or not, summed in event order.
        idx = np.flatnonzero(data.time < as_of)
        if window:
            idx = idx[evaluator._in_window(window, idx)]
        expected = np.bincount(data.user[idx], weights=data.revenue[idx],
                               minlength=data.n_users)
        assert got.tobytes() == expected.tobytes(), window  # bit for bit
        assert set(evaluator.matching_events(node)) <= set(np.flatnonzero(data.revenue != 0))


def test_text_attributes_match_pandas_isin() -> None:
    rng = np.random.default_rng(9)
    plans = rng.choice(np.array(["free", "pro", "team", None], dtype=object), 200)
    users = [{"user_id": f"u{i:03d}", "signup_time": at(0), "plan": plans[i], "seats": 1}
             for i in range(200)]
    data = make_data([(f"u{i:03d}", "e", at(1), 0, None) for i in range(200)], users)
    col = data.attributes["plan"]
    present = col.notna().to_numpy()
    for op, value in (("eq", "pro"), ("eq", "nope"), ("eq", 3), ("in", ["free", "team"]),
                      ("ne", "free"), ("not_in", ["pro", "team"]), ("in", [])):
        values = list(value) if op in ("in", "not_in") else [value]
        hit = col.isin(values).to_numpy(dtype=bool)
        expected = (~hit if op in ("ne", "not_in") else hit) & present
        for _ in range(2):  # the second time reads the cached codes
            got = evaluate_rule({"attribute": "plan", "op": op, "value": value}, data, AS_OF)
            assert (got == expected).all(), (op, value)


def test_properties_dictionary_coded_like_an_object_array() -> None:
    import pyarrow as pa

    from events.frame import encode_properties

    rng = np.random.default_rng(10)
    texts = [None, '{"feature": "export"}', '{"feature": "share", "n": 2}', '{"n": 2.0}',
             '{"feature": 1}', "not json", "", '{"flag": true}']
    rows = [(f"u{rng.integers(0, 25)}", str(rng.choice(["feature_used", "e"])),
             at(float(rng.uniform(0, 30))), 0.0, texts[rng.integers(0, len(texts))])
            for _ in range(400)]
    base = pd.DataFrame({"user_id": [r[0] for r in rows], "event": [r[1] for r in rows],
                         "timestamp": pd.to_datetime([r[2] for r in rows], utc=True),
                         "revenue": [r[3] for r in rows]})
    raw = pd.Series([r[4] for r in rows], dtype=object)
    as_text = build_user_events([base.assign(properties=raw.astype("str"))],
                                with_properties=True)
    as_category = build_user_events([base.assign(properties=raw.astype("category"))],
                                    with_properties=True)
    as_object = build_user_events([base.assign(properties=raw)], with_properties=True)
    assert isinstance(as_text.properties, pa.DictionaryArray)
    order = np.lexsort((base["timestamp"].to_numpy(dtype="datetime64[us]").astype(np.int64),
                        pd.factorize(base["user_id"], sort=True)[0]))
    expected = [t if isinstance(t, str) else None for t in raw.to_numpy()[order]]
    assert as_text.properties.to_pylist() == expected  # the texts, in event order
    # The old representation: one Python object per event.
    old = UserEvents(**{**{f: getattr(as_object, f) for f in as_object.__dataclass_fields__},
                        "properties": raw.to_numpy()[order]})
    rules = [
        {"distinct": {"event": "feature_used", "property": "feature"}, "min": 2},
        {"distinct": {"event": "*", "property": "n"}},
        {"event": "*", "where": [{"property": "feature", "op": "exists"}]},
        {"event": "*", "where": [{"property": "feature", "op": "exists", "value": False}]},
        {"event": "*", "min_count": 2, "where": [{"property": "n", "op": "eq", "value": 2}]},
        {"event": "feature_used", "where": [{"property": "feature", "op": "ne",
                                             "value": "share"}]},
        {"event": "e", "where": [{"property": "flag", "op": "eq", "value": True}]},
    ]
    for rule in rules:
        want = evaluate_rule(rule, old, AS_OF)
        for data in (as_text, as_category, as_object):
            assert (evaluate_rule(rule, data, AS_OF) == want).all(), rule
    assert encode_properties(pd.Series([1, 2], dtype=object), None).tolist() == [1, 2]
