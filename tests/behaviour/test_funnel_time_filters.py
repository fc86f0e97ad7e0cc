"""Funnel conversion by entry week, time-to-convert quantiles and bins, and per-step property
filters, each against plain-Python loops on generated data (exact). No database."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from behaviour.analytics.funnels import TTC_BINS, StepSpec, funnel, step_spec
from behaviour.analytics.step_filters import StepFilter, as_text
from events.frame import US_PER_DAY, UserEvents

HOUR = US_PER_DAY // 24
NAMES = ("a", "b", "c", "x")
PROPS = (None, '{"plan":"pro","n":3}', '{"plan":"free","n":1}', '{"plan":"team","n":3.5}',
         '{"flag":true}', "not json", '{"plan":"pro team"}')


def make_ue(rows: list[tuple[int, int, int, str | None]], n_users: int) -> UserEvents:
    """rows: (user, time µs, event code, properties JSON or None)."""
    user = np.array([r[0] for r in rows], dtype=np.int32)
    time = np.array([r[1] for r in rows], dtype=np.int64)
    event = np.array([r[2] for r in rows], dtype=np.int32)
    props = np.array([r[3] for r in rows], dtype=object)
    order = np.lexsort((time, user))
    return UserEvents(user_ids=np.array([f"u{i}" for i in range(n_users)], dtype=object),
                      user=user[order], time=time[order], event=event[order],
                      event_names=NAMES, revenue=np.zeros(len(rows)), cost=np.zeros(len(rows)),
                      signup=np.zeros(n_users, dtype=np.int64),
                      attributes=pd.DataFrame(index=pd.RangeIndex(n_users)),
                      properties=props[order])


GAPS_S = (0, 0, 20, 59, 60, 300, 600, 2400, 3600, 10800, 21600, 43200, 86400, 2 * 86400,
          3 * 86400, 5 * 86400, 7 * 86400, 14 * 86400)


def generated(seed: int, n_users: int = 80) -> tuple[UserEvents, int]:
    """Random logs over ~10 weeks from a Wednesday: per user a few runs of events whose gaps
    range from 0 (simultaneous) to 14 days, so every time bin and tie case occurs."""
    rng = np.random.default_rng(seed)
    t0 = int(datetime(2024, 1, 3, tzinfo=UTC).timestamp()) * 1_000_000
    rows = []
    for u in range(n_users):
        t = t0 + int(rng.integers(0, 70 * 24)) * HOUR
        for _ in range(int(rng.integers(0, 14))):
            t += int(rng.choice(GAPS_S)) * 1_000_000
            rows.append((u, t, int(rng.choice(4, p=[0.35, 0.3, 0.25, 0.1])),
                         PROPS[int(rng.integers(0, len(PROPS)))]))
    ue = make_ue(rows, n_users)
    return ue, t0 + 70 * US_PER_DAY  # users still active then have open windows


# ----------------------------------------------------------------------------- references
def matches(step: StepSpec, name: str, props: str | None) -> bool:
    """Does one event fill a step, read the slow way."""
    if name not in step.names:
        return False
    if step.filter is None:
        return True
    try:
        obj = json.loads(props) if props is not None else None
    except ValueError:
        obj = None
    f = step.filter
    if not isinstance(obj, dict) or f.key not in obj or obj[f.key] is None:
        return False
    got = as_text(obj[f.key])
    if f.op == "eq":
        return got == as_text(f.value)
    if f.op == "neq":
        return got != as_text(f.value)
    if f.op == "in":
        return any(got == as_text(v) for v in f.value)
    return str(f.value) in got


def reference(ue: UserEvents, steps: list[StepSpec], mode: str, window_us: int,
              as_of: int) -> dict[str, list]:
    """Per user: furthest step, still in window, the counted attempt's step times. Loops, from
    the stated rules (ordered / strict; ties: the candidate fit for the fewest later steps)."""
    k_steps = len(steps)
    out: dict[str, list] = {"furthest": [], "in_window": [], "times": []}
    for u in range(ue.n_users):
        evs = [(int(ue.time[i]), NAMES[ue.event[i]], ue.properties[i])
               for i in range(ue.starts[u], ue.starts[u + 1]) if ue.time[i] <= as_of]
        fits = [[matches(s, n, p) for s in steps] for _, n, p in evs]
        attempts = []
        for i, (t0, _, _) in enumerate(evs):
            if not fits[i][0]:
                continue
            used, t, times = {i}, t0, [t0]
            for k in range(1, k_steps):
                cands = [j for j, (tj, _, _) in enumerate(evs) if j not in used and fits[j][k]
                         and t <= tj <= t0 + window_us]
                if mode == "strict":
                    following = min((tj for tj, _, _ in evs if tj > t), default=None)
                    cands = [j for j in cands if evs[j][0] in (t, following)]
                if not cands:
                    break
                soonest = min(evs[j][0] for j in cands)
                later = {j: sum(1 << (k_steps - 1 - q) for q in range(k + 1, k_steps)
                                if fits[j][q]) for j in cands}
                j = min((j for j in cands if evs[j][0] == soonest), key=lambda j: (later[j], j))
                used.add(j)
                t = evs[j][0]
                times.append(t)
            attempts.append((len(times), times, t0))
        if not attempts:
            out["furthest"].append(0)
            out["in_window"].append(False)
            out["times"].append([])
            continue
        best = max(a[0] for a in attempts)
        latest = max(a[2] for a in attempts)
        out["furthest"].append(best)
        out["in_window"].append(best < k_steps and as_of - latest <= window_us)
        out["times"].append(min(a[1] for a in attempts if a[0] == best))
    return out


def monday(t_us: int) -> str:
    day = datetime.fromtimestamp(t_us // 1_000_000, tz=UTC).date()
    return (day - timedelta(days=day.weekday())).isoformat()


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between order statistics, written out."""
    xs = sorted(values)
    h = (len(xs) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


def bin_label(seconds: float) -> str:
    for label, low, high in [("< 1 min", 0, 60), ("1–10 min", 60, 600),
                             ("10–60 min", 600, 3600), ("1–6 h", 3600, 21600),
                             ("6–24 h", 21600, 86400), ("1–3 d", 86400, 259200),
                             ("3–7 d", 259200, 604800), ("7–14 d", 604800, 1209600)]:
        if low <= seconds < high:
            return label
    return "≥ 14 d"


STEP_SETS = [
    ["a", "b", "c"],
    ["a", {"event": "b", "filter": {"key": "plan", "op": "eq", "value": "pro"}}, "c"],
    [{"event": "a", "filter": {"key": "plan", "op": "neq", "value": "free"}}, "b",
     {"event": "c", "filter": {"key": "n", "op": "in", "value": ["3", 3.5]}}],
    ["a", {"event": "a", "filter": {"key": "plan", "op": "contains", "value": "pro"}},
     {"event": "b", "filter": {"key": "flag", "op": "eq", "value": "true"}}],
]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("mode", ["ordered", "strict"])
@pytest.mark.parametrize("which", range(len(STEP_SETS)))
@pytest.mark.parametrize("window_days", [4, 16])
def test_funnel_weeks_times_and_filters_match_loops(seed, mode, which, window_days):
    ue, as_of = generated(seed)
    raw = STEP_SETS[which]
    steps = [step_spec(s) for s in raw]
    res = funnel(ue, raw, as_of_us=as_of, window_days=window_days, mode=mode)
    ref = reference(ue, steps, mode, window_days * US_PER_DAY, as_of)
    k = len(steps)
    # Per-step filters: the furthest step of every user, from the loop.
    assert res.furthest.tolist() == ref["furthest"]
    assert res.in_window_users.tolist() == ref["in_window"]
    assert [s.users for s in res.overall.steps] == [
        sum(f >= j for f in ref["furthest"]) for j in range(1, k + 1)]

    # Conversion by entry week.
    weeks: dict[str, list[int]] = {}
    for f, w, times in zip(ref["furthest"], ref["in_window"], ref["times"], strict=True):
        if f == 0:
            continue
        row = weeks.setdefault(monday(times[0]), [0, 0, 0])
        row[0] += 1
        row[1] += f == k
        row[2] += w
    got = {w.week: [w.entered, w.converted, w.in_window] for w in res.over_time}
    assert got == weeks
    assert sum(w.entered for w in res.over_time) == res.overall.entered
    for w in res.over_time:
        assert w.not_converted == w.entered - w.converted - w.in_window
        assert (w.rate.numerator, w.rate.denominator) == (w.converted,
                                                          w.entered - w.in_window)
        if w.rate.denominator:
            assert w.rate.estimate == w.converted / (w.entered - w.in_window)

    # Time to convert: per transition and over the whole funnel.
    for j in range(2, k + 1):
        dts = [(t[j - 1] - t[j - 2]) / 1e6 for t in ref["times"] if len(t) >= j]
        ttc = res.overall.steps[j - 1].time_to_convert
        check_times(ttc, dts)
    whole = [(t[k - 1] - t[0]) / 1e6 for t in ref["times"] if len(t) >= k]
    check_times(res.overall.time_to_convert, whole)
    json.dumps(res.to_dict())


def check_times(ttc, dts: list[float]) -> None:
    assert ttc.n == len(dts)
    counts = {label: 0 for label, _, _ in TTC_BINS}
    for d in dts:
        counts[bin_label(d)] += 1
    assert dict(ttc.bins) == counts
    if not dts:
        assert ttc.median_seconds is None and ttc.p90_seconds is None
        return
    assert ttc.p25_seconds == pytest.approx(percentile(dts, 0.25), abs=1e-9)
    assert ttc.median_seconds == pytest.approx(percentile(dts, 0.5), abs=1e-9)
    assert ttc.p75_seconds == pytest.approx(percentile(dts, 0.75), abs=1e-9)
    assert ttc.p90_seconds == pytest.approx(percentile(dts, 0.9), abs=1e-9)


def test_hand_made_weeks_and_bins():
    # Monday 2024-01-08 00:00 UTC and the Sunday before it, one second to midnight.
    mon = int(datetime(2024, 1, 8, tzinfo=UTC).timestamp()) * 1_000_000
    sun = mon - 1_000_000
    rows = [(0, sun, 0, None), (0, sun + 59 * 1_000_000, 1, None),  # week of Jan 1, 59 s
            (1, mon, 0, None), (1, mon + 60 * 1_000_000, 1, None),  # week of Jan 8, 1 min
            (2, mon, 0, None),  # entered, never converts: window closed
            (3, mon + 9 * US_PER_DAY, 0, None)]  # week of Jan 15, window open at as_of
    ue = make_ue(rows, 4)
    res = funnel(ue, ["a", "b"], as_of_us=mon + 10 * US_PER_DAY, window_days=2)
    rows_out = [(w.week, w.entered, w.converted, w.not_converted, w.in_window)
                for w in res.over_time]
    assert rows_out == [("2024-01-01", 1, 1, 0, 0), ("2024-01-08", 2, 1, 1, 0),
                        ("2024-01-15", 1, 0, 0, 1)]
    assert res.over_time[2].rate.estimate is None  # nobody's window closed yet
    assert dict(res.overall.steps[1].time_to_convert.bins)["< 1 min"] == 1
    assert dict(res.overall.steps[1].time_to_convert.bins)["1–10 min"] == 1


def test_filter_text_comparison_and_validation():
    f = StepFilter("n", "eq", "3")
    assert f.passes({"n": 3}) and f.passes({"n": 3.0}) and f.passes({"n": "3"})
    assert not f.passes({"n": 3.5}) and not f.passes({}) and not f.passes(None)
    assert StepFilter("flag", "eq", "true").passes({"flag": True})
    assert not StepFilter("plan", "neq", "pro").passes({})  # missing never passes
    assert StepFilter("plan", "contains", "ro").passes({"plan": "pro"})
    with pytest.raises(ValueError):
        StepFilter("plan", "like", "x")
    with pytest.raises(ValueError):
        StepFilter("plan", "in", "x")
    assert step_spec({"event": "b", "filter": {"key": "plan", "op": "eq",
                                                "value": "pro"}}).display == "b [plan = pro]"


def test_any_order_counts_only_filtered_events():
    pro, free = '{"plan":"pro"}', '{"plan":"free"}'
    rows = [(0, 0, 1, free), (0, HOUR, 0, None),  # b is free: only step a (1 of 2)
            (1, 0, 1, pro), (1, HOUR, 0, None),  # b pro, then a: both, any order
            (2, 0, 1, free), (2, HOUR, 1, pro), (2, 2 * HOUR, 0, None)]  # starts at the pro b
    ue = make_ue(rows, 3)
    steps = ["a", {"event": "b", "filter": {"key": "plan", "op": "eq", "value": "pro"}}]
    res = funnel(ue, steps, as_of_us=10 * US_PER_DAY, window_days=1, mode="any_order")
    assert res.furthest.tolist() == [1, 2, 2]
    assert res.overall.time_to_convert.n == 2
    assert res.overall.time_to_convert.median_seconds == 3600.0
