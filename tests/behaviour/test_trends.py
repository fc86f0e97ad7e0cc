"""Trends (behaviour.analytics.trends) against a plain-Python loop over generated events with
Python dates: counts, unique users and revenue per day / week / month, breakdowns (top N and
other), formulas and the previous period, exactly. No DB."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from behaviour.analytics import trends as tr
from events.frame import UserEvents

NAMES = ("buy", "signup", "view")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
PLANS = ("free", "pro", "team", "edu")
COLOURS = ("red", "green", "blue", "grey", "pink")


def us(when: datetime) -> int:
    return int((when - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000


def generated(seed: int = 3, n_users: int = 60, n_events: int = 1500) -> tuple[UserEvents, list]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n_events):
        u = rng.randrange(n_users)
        when = T0 + timedelta(seconds=rng.randrange(0, 150 * 86400))
        name = rng.choice(NAMES)
        revenue = round(rng.uniform(1, 50), 2) if name == "buy" else 0.0
        props = json.dumps({"colour": rng.choice(COLOURS)}) if rng.random() < 0.8 else None
        rows.append((u, us(when), NAMES.index(name), revenue, props))
    rows.sort(key=lambda r: (r[0], r[1]))
    plans = [rng.choice(PLANS) if rng.random() < 0.9 else None for _ in range(n_users)]
    ue = UserEvents(
        user_ids=np.array([f"u{i:03d}" for i in range(n_users)], dtype=object),
        user=np.array([r[0] for r in rows], dtype=np.int32),
        time=np.array([r[1] for r in rows], dtype=np.int64),
        event=np.array([r[2] for r in rows], dtype=np.int32), event_names=NAMES,
        revenue=np.array([r[3] for r in rows]), cost=np.zeros(len(rows)),
        signup=np.zeros(n_users, dtype=np.int64),
        attributes=pd.DataFrame({"plan": plans}),
        properties=np.array([r[4] for r in rows], dtype=object))
    events = [{"user": r[0], "when": datetime.fromtimestamp(r[1] / 1e6, tz=UTC),
               "us": r[1], "event": NAMES[r[2]], "revenue": r[3],
               "colour": json.loads(r[4])["colour"] if r[4] else "(none)",
               "plan": plans[r[0]] or "(none)"} for r in rows]
    return ue, events


def bucket_of(day: date, interval: str) -> date:
    if interval == "day":
        return day
    if interval == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def buckets_between(first: date, last: date, interval: str) -> list[date]:
    out, d = [], first
    while d <= last:
        b = bucket_of(d, interval)
        if not out or out[-1] != b:
            out.append(b)
        d += timedelta(days=1)
    return out


def reference(events: list, event: str | None, measure: str, lo: int, hi: int, interval: str,
              shift: int = 0, keep=lambda e: True) -> dict[date, float]:
    """The measure per bucket, one event at a time."""
    counts: dict[date, float] = defaultdict(float)
    users: dict[date, set] = defaultdict(set)
    for e in events:
        if not lo <= e["us"] < hi or (event and e["event"] != event) or not keep(e):
            continue
        b = bucket_of((e["when"] + timedelta(microseconds=shift)).date(), interval)
        if measure == "count":
            counts[b] += 1
        elif measure == "sum_revenue":
            counts[b] += e["revenue"]
        else:
            users[b].add(e["user"])
    if measure == "unique_users":
        return {b: float(len(s)) for b, s in users.items()}
    return dict(counts)


LO = us(datetime(2026, 1, 20, 13, tzinfo=UTC))  # mid-day, mid-week: partial first buckets
HI = us(datetime(2026, 4, 10, tzinfo=UTC))


@pytest.mark.parametrize("interval", ["day", "week", "month"])
@pytest.mark.parametrize("measure", ["count", "unique_users", "sum_revenue"])
def test_series_match_a_loop_reference(interval, measure):
    ue, events = generated()
    got = tr.trends(ue, [tr.Series("buy", measure), tr.Series(None, measure)],
                    interval=interval, from_us=LO, to_us=HI, compare=True)
    first = datetime.fromtimestamp(LO / 1e6, tz=UTC).date()
    last = datetime.fromtimestamp((HI - 1) / 1e6, tz=UTC).date()
    labels = buckets_between(first, last, interval)
    assert got["buckets"] == [b.isoformat() for b in labels]
    for s, event in zip(got["series"], ["buy", None], strict=True):
        ref = reference(events, event, measure, LO, HI, interval)
        # Empty buckets are 0, not missing; sums of revenue compared to the cent's rounding.
        assert s["values"] == pytest.approx([ref.get(b, 0.0) for b in labels], abs=1e-9)
        prev = reference(events, event, measure, LO - (HI - LO), LO, interval, shift=HI - LO)
        assert s["previous"] == pytest.approx([prev.get(b, 0.0) for b in labels], abs=1e-9)
    assert got["previous"]["to"] == "2026-01-20"
    if measure == "count":  # exact integers
        ref = reference(events, "buy", "count", LO, HI, interval)
        assert got["series"][0]["values"] == [ref.get(b, 0.0) for b in labels]
        assert got["series"][0]["sum"] == sum(ref.values())


def test_empty_buckets_are_zero():
    ue, events = generated(n_events=40)
    got = tr.trends(ue, [tr.Series("signup", "count")], interval="day", from_us=LO, to_us=HI)
    values = got["series"][0]["values"]
    assert len(values) == 80  # 2026-01-20 .. 2026-04-09
    assert 0.0 in values and None not in values
    assert sum(values) == sum(1 for e in events if e["event"] == "signup" and LO <= e["us"] < HI)


@pytest.mark.parametrize("by", ["attribute", "property"])
@pytest.mark.parametrize("measure", ["count", "unique_users"])
def test_breakdown_top_n_and_other(by, measure):
    ue, events = generated()
    field = "plan" if by == "attribute" else "colour"
    labels_in = ue.attributes["plan"].to_numpy(dtype=object) if by == "attribute" \
        else tr.property_values(ue, "colour")
    got = tr.trends(ue, [tr.Series("view", measure), tr.Series("buy", "count")],
                    interval="week", from_us=LO, to_us=HI,
                    breakdown=tr.Breakdown(by=by, key=field, labels=labels_in, top=2))
    # Ranking by series A's total over the whole range, ties by label.
    totals = {}
    for value in {e[field] for e in events}:
        ref = reference(events, "view", measure, LO, HI, "week",
                        keep=lambda e, v=value: e[field] == v)
        if measure == "unique_users":
            totals[value] = len({e["user"] for e in events if e[field] == value
                                 and e["event"] == "view" and LO <= e["us"] < HI})
        else:
            totals[value] = sum(ref.values())
    top = sorted(totals, key=lambda v: (-totals[v], v))[:2]
    assert got["breakdown"]["groups"] == [*top, "other"]
    first = datetime.fromtimestamp(LO / 1e6, tz=UTC).date()
    weeks = buckets_between(first, date(2026, 4, 9), "week")
    for k, ser_event, ser_measure in [(0, "view", measure), (1, "buy", "count")]:
        rows = got["series"][k]["breakdown"]
        for row, value in zip(rows, [*top, None], strict=True):
            keep = (lambda e, v=value: e[field] == v) if value else \
                (lambda e: e[field] not in top)
            ref = reference(events, ser_event, ser_measure, LO, HI, "week", keep=keep)
            assert row["values"] == [ref.get(b, 0.0) for b in weeks], (k, value)


def test_breakdown_by_overlapping_segments():
    ue, events = generated()
    low = np.arange(ue.n_users) < 30
    even = np.arange(ue.n_users) % 2 == 0
    odd3 = np.arange(ue.n_users) % 3 == 0
    got = tr.trends(ue, [tr.Series("buy", "unique_users")], interval="month", from_us=LO,
                    to_us=HI, breakdown=tr.Breakdown(by="segments", masks=(
                        ("low", low), ("even", even), ("third", odd3)), top=2))
    tot = {n: len({e["user"] for e in events if m[e["user"]] and e["event"] == "buy"
                   and LO <= e["us"] < HI}) for n, m in (("low", low), ("even", even),
                                                          ("third", odd3))}
    top = sorted(tot, key=lambda n: (-tot[n], n))[:2]
    masks = {"low": low, "even": even, "third": odd3}
    assert got["breakdown"]["groups"] == [*top, "other"]
    months = [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1), date(2026, 4, 1)]
    for row, name in zip(got["series"][0]["breakdown"], [*top, None], strict=True):
        keep = (lambda e, n=name: masks[n][e["user"]]) if name else \
            (lambda e: not any(masks[n][e["user"]] for n in top))
        ref = reference(events, "buy", "unique_users", LO, HI, "month", keep=keep)
        assert row["values"] == [ref.get(b, 0.0) for b in months]


def test_formula_per_bucket_with_division_by_zero_as_null():
    ue, events = generated(n_events=200)
    got = tr.trends(ue, [tr.Series("view", "count"), tr.Series("buy", "count")],
                    interval="day", from_us=LO, to_us=HI, formula="B / A * 100", compare=True)
    first = datetime.fromtimestamp(LO / 1e6, tz=UTC).date()
    days = buckets_between(first, date(2026, 4, 9), "day")
    a = reference(events, "view", "count", LO, HI, "day")
    b = reference(events, "buy", "count", LO, HI, "day")
    expected = [None if not a.get(d) else b.get(d, 0.0) / a[d] * 100 for d in days]
    assert got["formula"]["values"] == pytest.approx(expected)
    assert None in expected  # the generated data has days without views
    zero_days = [d.isoformat() for d, v in zip(days, expected, strict=True) if v is None]
    assert got["notes"] == ["formula: division by zero gives no value (null) in "
                            + ", ".join(zero_days)]
    pa = reference(events, "view", "count", LO - (HI - LO), LO, "day", shift=HI - LO)
    pb = reference(events, "buy", "count", LO - (HI - LO), LO, "day", shift=HI - LO)
    assert got["formula"]["previous"] == pytest.approx(
        [None if not pa.get(d) else pb.get(d, 0.0) / pa[d] * 100 for d in days])


def test_formula_arithmetic_and_refusals():
    ue, _ = generated(n_events=300)
    got = tr.trends(ue, [tr.Series(None, "count"), tr.Series("buy", "count")],
                    interval="month", from_us=LO, to_us=HI, formula="-(A - B) * 2 + 1.5")
    a, b = got["series"][0]["values"], got["series"][1]["values"]
    assert got["formula"]["values"] == [-(x - y) * 2 + 1.5 for x, y in zip(a, b, strict=True)]
    for bad in ["A ** 2", "__import__('os')", "A.real", "C + A", "A +", "abs(A)", "A // B",
                "'x'", "[A]", "A if B else 1"]:
        with pytest.raises(tr.FormulaError):
            tr.parse_formula(bad, ["A", "B"])


def test_users_scope_and_week_starts_monday():
    ue, events = generated()
    scope = np.arange(ue.n_users) % 4 == 1
    got = tr.trends(ue, [tr.Series("view", "count")], interval="week", from_us=LO, to_us=HI,
                    users=scope)
    assert all(date.fromisoformat(b).weekday() == 0 for b in got["buckets"])
    ref = reference(events, "view", "count", LO, HI, "week", keep=lambda e: scope[e["user"]])
    weeks = [date.fromisoformat(b) for b in got["buckets"]]
    assert got["series"][0]["values"] == [ref.get(w, 0.0) for w in weeks]
