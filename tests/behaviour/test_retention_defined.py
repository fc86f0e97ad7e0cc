"""Behaviour retention you can define (start and return events, rolling N-day or calendar
periods, "on", "on or after" and "within [N, N+W)"): equal to a plain-Python loop over
dict-of-lists with datetimes; the fan-out's partials add up to the same table; bad
parameters name their field."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from behaviour.analytics import cohorts
from behaviour.analytics.fanout import analysis_map, analysis_reduce
from events.frame import build_user_events
from tests.segments.test_retention_definition import generated

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def monday(t: datetime) -> datetime:
    day = datetime(t.year, t.month, t.day, tzinfo=UTC)
    return day - timedelta(days=day.weekday())


def calendar_index(t: datetime, period: str) -> int:
    if period == "week":
        return (monday(t) - monday(EPOCH)).days // 7
    return t.year * 12 + t.month - 1


def reference(events: pd.DataFrame, users: pd.DataFrame, as_of: datetime, *, start_event,
              returns, period_kind, period_days, period, return_on, within, periods,
              mode="recurring"):
    """{cohort: (size, [(retained, eligible)] per period)} by loops. First-time mode: only
    the first return period from 1 on counts, and period 0 holds everyone eligible."""
    by_user: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for uid, name, ts in zip(events["user_id"], events["event"], events["timestamp"],
                             strict=True):
        by_user[uid].append((ts.to_pydatetime(), name))
    signup = dict(zip(users["user_id"], users["signup_time"], strict=True))
    w = within if return_on == "within" else 1
    rows: dict[str, list] = {}
    for uid, mine in by_user.items():
        mine = [(t, n) for t, n in mine if t <= as_of]
        if start_event is None:
            anchor = datetime.fromisoformat(signup[uid])
        else:
            starts = [t for t, n in mine if n == start_event]
            if not starts:
                continue
            anchor = min(starts)
        if anchor > as_of:
            continue
        if period == "week":
            cohort = monday(anchor).strftime("%Y-%m-%d")
        else:
            cohort = anchor.strftime("%Y-%m-01")
        ks = set()
        for t, n in mine:
            if t < anchor or (returns is not None and n not in returns):
                continue
            if period_kind == "rolling":
                ks.add((t - anchor) // timedelta(days=period_days))
            else:
                ks.add(calendar_index(t, period) - calendar_index(anchor, period))
        row = rows.setdefault(cohort, [0, [[0, 0] for _ in range(periods)]])
        row[0] += 1
        for k in range(periods):
            if period_kind == "rolling" and \
                    anchor + timedelta(days=(k + w) * period_days) > as_of:
                continue  # the cell's window has not passed
            row[1][k][1] += 1
            if mode == "first_time":
                later = [x for x in ks if x >= 1]
                first = min(later) if later else None
                hit = k == 0 or (first is not None and (
                    first == k if return_on == "on" else first >= k
                    if return_on == "on_or_after" else k <= first < k + w))
            elif return_on == "on":
                hit = k in ks
            elif return_on == "on_or_after":
                hit = any(x >= k for x in ks)
            else:
                hit = any(k <= x < k + w for x in ks)
            row[1][k][0] += hit
    return rows


def calendar_started(cohort: str, k: int, period: str, as_of: datetime) -> bool:
    start = datetime.fromisoformat(cohort).replace(tzinfo=UTC)
    if period == "week":
        return start + timedelta(weeks=k) <= as_of
    month = start.year * 12 + start.month - 1 + k
    return datetime(month // 12, month % 12 + 1, 1, tzinfo=UTC) <= as_of


CASES = [
    {"period_kind": "rolling", "period_days": 1, "return_on": "on", "max_periods": 35},
    {"period_kind": "rolling", "period_days": 7, "return_on": "on", "max_periods": 8,
     "return_events": ["session_start", "feature_used", "report_created"]},
    {"period_kind": "rolling", "period_days": 1, "return_on": "within", "within": 7,
     "max_periods": 35, "start_event": "feature_used", "return_events": ["session_start"]},
    {"period_kind": "rolling", "period_days": 30, "return_on": "on_or_after",
     "max_periods": 4, "period": "month"},
    {"period_kind": "calendar", "period": "week", "return_on": "within", "within": 2,
     "max_periods": 10, "return_events": ["report_created", "session_start"]},
    {"period_kind": "calendar", "period": "month", "return_on": "on", "max_periods": 5,
     "start_event": "purchase"},
    {"period_kind": "rolling", "period_days": 1, "return_on": "within", "within": 3,
     "max_periods": 20, "mode": "first_time", "return_events": ["report_created"]},
    {"period_kind": "rolling", "period_days": 7, "return_on": "on_or_after", "max_periods": 6,
     "mode": "first_time"},
    {"period_kind": "calendar", "period": "week", "return_on": "within", "within": 3,
     "max_periods": 8, "mode": "first_time", "return_events": ["feature_used"]},
]


@pytest.mark.parametrize("case", CASES, ids=range(len(CASES)))
def test_retention_equals_a_plain_loop(case):
    events, users = generated(seed=9, users=500)
    ue = build_user_events([events], users)
    as_of_us = int(ue.time.max()) + 1 - 4 * 86_400_000_000
    as_of = EPOCH + timedelta(microseconds=as_of_us)
    kw = {"period": "week", "within": 1, "period_days": 7, "mode": "recurring", **case}
    table = cohorts.retention(
        ue, as_of_us=as_of_us, mode=kw["mode"],
        cohort_by="first_event" if kw.get("start_event") else "signup",
        cohort_event=kw.get("start_event"), return_events=kw.get("return_events"),
        period=kw["period"], return_on=kw["return_on"], max_periods=kw["max_periods"],
        period_kind=kw["period_kind"], period_days=kw["period_days"], within=kw["within"],
    ).to_dict()
    expected = reference(events, users, as_of, start_event=kw.get("start_event"),
                         returns=None if kw.get("return_events") is None
                         else set(kw["return_events"]), period_kind=kw["period_kind"],
                         period_days=kw["period_days"], period=kw["period"],
                         return_on=kw["return_on"], within=kw["within"],
                         periods=kw["max_periods"], mode=kw["mode"])
    assert [r["cohort"] for r in table["rows"]] == sorted(expected)
    rolling = kw["period_kind"] == "rolling"
    checked = 0
    for row in table["rows"]:
        size, cells = expected[row["cohort"]]
        assert row["size"] == size
        for k, (retained, eligible) in enumerate(cells):
            if rolling:
                assert row["eligible"][k] == eligible, (row["cohort"], k)
                assert row["counts"][k] == (retained if eligible else None), (row["cohort"], k)
                share = retained / eligible if eligible else None
            else:
                started = calendar_started(row["cohort"], k, kw["period"], as_of)
                assert row["counts"][k] == (retained if started else None), (row["cohort"], k)
                share = retained / size if started else None
            assert row["shares"][k] == share
            checked += retained
    assert checked > 50  # the data exercises the cells
    assert len(table["labels"]) == kw["max_periods"]


def test_labels_and_definition_say_what_is_counted():
    events, users = generated(seed=9, users=100)
    ue = build_user_events([events], users)
    as_of = int(ue.time.max()) + 1

    def run(**kw):
        return cohorts.retention(ue, as_of_us=as_of, **kw).to_dict()

    daily = run(period_kind="rolling", period_days=1, max_periods=3)
    assert daily["labels"] == ["day 0", "day 1", "day 2"]
    assert daily["definition"].startswith("Share of users who returned on day N (rolling "
                                          "1-day periods from each user's signup")
    weekly = run(period_kind="rolling", period_days=7, max_periods=2, return_on="on_or_after")
    assert weekly["labels"] == ["days 0–6+", "days 7–13+"]
    assert "on or after 7-day period N" in weekly["definition"]
    window = run(period_kind="rolling", period_days=1, max_periods=2, return_on="within",
                 within=7, return_events=["session_start"], return_label="session_start")
    assert window["labels"] == ["[0, 7) d", "[1, 8) d"]
    assert "within [N, N+7) days" in window["definition"]
    assert "a return is session_start" in window["definition"]
    calendar = run(period="month", max_periods=2)
    assert calendar["labels"] == ["month 0", "month 1"]
    assert "in calendar month N" in calendar["definition"]


@pytest.mark.parametrize("case", CASES[:5], ids=range(5))
def test_partitions_add_up_to_the_single_process_table(case):
    events, users = generated(seed=4, users=400)
    whole = build_user_events([events], users)
    ids = users["user_id"].to_numpy()
    part_of = {u: i % 3 for i, u in enumerate(ids)}
    parts = [build_user_events([events[events["user_id"].map(part_of) == p]],
                               users[users["user_id"].map(part_of) == p].reset_index(drop=True))
             for p in range(3)]
    as_of = int(whole.time.max()) + 1
    start = case.get("start_event")
    p = {"cohort_by": "first_event" if start else "signup", "start_event": start or "signup",
         "period": case.get("period", "week"), "mode": "recurring",
         "return_on": case["return_on"], "max_periods": case["max_periods"],
         "period_kind": case["period_kind"], "period_days": case.get("period_days", 0),
         "within": case.get("within", 1), "return_events": case.get("return_events"),
         "return_set": "chosen"}
    from behaviour.services import compute

    expected = compute("retention", p, whole, as_of, None)
    got = analysis_reduce("retention", p, [analysis_map("retention", p, ue, as_of, None)
                                           for ue in parts], as_of)
    assert got == expected
    assert got["period_kind"] == case["period_kind"]


def test_eligible_users_stop_where_their_window_ends():
    """Two users, by hand: one starts 10 days before as_of, one 3 days before; day-7 cells
    count only the first, day-2 cells both."""
    t0 = datetime(2025, 3, 3, 12, tzinfo=UTC)  # a Monday
    rows = [("a", "signup", t0), ("a", "session_start", t0 + timedelta(days=2, hours=1)),
            ("a", "session_start", t0 + timedelta(days=7)),
            ("b", "signup", t0 + timedelta(days=7)),
            ("b", "session_start", t0 + timedelta(days=9, hours=5))]
    events = pd.DataFrame(rows, columns=["user_id", "event", "timestamp"])
    events["timestamp"] = events["timestamp"].astype("datetime64[us, UTC]")
    events["revenue"] = 0.0
    users = pd.DataFrame({"user_id": ["a", "b"], "signup_time": [t0.isoformat(), (
        t0 + timedelta(days=7)).isoformat()]})
    ue = build_user_events([events], users)
    as_of = int(pd.Timestamp(t0 + timedelta(days=10)).value // 1000)
    table = cohorts.retention(ue, as_of_us=as_of, period_kind="rolling", period_days=1,
                              max_periods=9, return_events=["session_start"])
    assert table.eligible.tolist() == [[1] * 9, [1, 1, 1, 0, 0, 0, 0, 0, 0]]
    # a: days 2 and 7; b (cohort of the next week): day 2.
    assert table.counts.tolist() == [[0, 0, 1, 0, 0, 0, 0, 1, 0], [0, 0, 1, 0, 0, 0, 0, 0, 0]]
    assert table.average[2] == 1.0 and table.average[7] == 1.0 and table.average[1] == 0.0
    assert np.isnan(table.shares[1][3])
