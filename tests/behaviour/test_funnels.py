"""Funnels (behaviour.analytics.funnels): vectorized code against a plain-Python per-user
reference on random small logs (hypothesis), and the demo data's planted funnel. No database."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from behaviour.analytics.funnels import StepSpec, funnel, wilson
from events.demo import generate_demo
from events.frame import US_PER_DAY, UserEvents, build_user_events

HOUR = US_PER_DAY // 24
NAMES = ("a", "b", "c", "d", "x")


def make_ue(rows: list[tuple[int, int, int]], n_users: int) -> UserEvents:
    """rows: (user, time µs, event code); stored order = (user, time), ties in list order."""
    user = np.array([r[0] for r in rows], dtype=np.int32)
    time = np.array([r[1] for r in rows], dtype=np.int64)
    event = np.array([r[2] for r in rows], dtype=np.int32)
    order = np.lexsort((time, user))
    ids = np.array([f"u{i}" for i in range(n_users)], dtype=object)
    signup = np.zeros(n_users, dtype=np.int64)
    return UserEvents(user_ids=ids, user=user[order], time=time[order], event=event[order],
                      event_names=NAMES, revenue=np.zeros(len(rows)), cost=np.zeros(len(rows)),
                      signup=signup, attributes=pd.DataFrame(index=pd.RangeIndex(n_users)))


logs = st.integers(1, 5).flatmap(lambda n: st.tuples(
    st.just(n),
    st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 16).map(lambda h: h * 6 * HOUR),
                       st.integers(0, len(NAMES) - 1)), max_size=30)))


# ----------------------------------------------------------------------------- reference
def reference(ue: UserEvents, steps: list[set[int]], mode: str, window_us: int,
              excl: set[int], users: np.ndarray | None, as_of: int) -> dict[str, list]:
    """Plain loops, one user at a time, straight from the stated rules: only times order
    events (events of one time are simultaneous), an event fills one step, strict and
    exclusions look strictly between two times."""
    k_steps = len(steps)
    out = {"furthest": [], "in_window": [], "excluded": [], "times": []}
    for u in range(ue.n_users):
        evs = [(int(ue.time[i]), int(ue.event[i])) for i in range(ue.starts[u], ue.starts[u + 1])
               if ue.time[i] <= as_of]
        if users is not None and not users[u]:
            evs = []
        attempts = []  # (reached, times, start time)
        for i, (t0, e0) in enumerate(evs):
            if mode == "any_order":
                if not any(e0 in s for s in steps):
                    continue
                done = [min((t for t, e in evs if e in s and t0 <= t <= t0 + window_us),
                            default=None) for s in steps]
                times = sorted(t for t in done if t is not None)
                reached = len(times)
                last_t = max(times)
            else:
                if e0 not in steps[0]:
                    continue
                used, t, times = {i}, t0, [t0]
                for k in range(1, k_steps):
                    cands = [j for j, (tj, ej) in enumerate(evs) if j not in used
                             and ej in steps[k] and t <= tj <= t0 + window_us]
                    if mode == "strict":
                        following = min((tj for tj, _ in evs if tj > t), default=None)
                        cands = [j for j in cands if evs[j][0] in (t, following)]
                    if not cands:
                        break
                    soonest = min(evs[j][0] for j in cands)

                    # Among simultaneous candidates: the one fit for the fewest next steps.
                    later = {j: sum(1 << (k_steps - 1 - q) for q in range(k + 1, k_steps)
                                    if evs[j][1] in steps[q]) for j in cands}
                    j = min((j for j in cands if evs[j][0] == soonest), key=lambda j: (later[j], j))
                    used.add(j)
                    t = evs[j][0]
                    times.append(t)
                reached = len(times)
                last_t = times[-1]
            if any(e in excl and t0 < t < last_t for t, e in evs):
                reached = 0
            attempts.append((reached, times, t0))
        if not attempts:
            out["furthest"].append(0)
            out["in_window"].append(False)
            out["excluded"].append(False)
            out["times"].append([])
            continue
        best = max(a[0] for a in attempts)
        first = min(a[1][:best] for a in attempts if a[0] == best)
        latest = max(a[2] for a in attempts)
        out["furthest"].append(best)
        out["excluded"].append(best == 0)
        out["in_window"].append(0 < best < k_steps and as_of - latest <= window_us)
        out["times"].append(first if best else [])
    return out


def shuffle_ties(ue: UserEvents, seed: int) -> UserEvents:
    """The same events with the stored order of events sharing user and time shuffled."""
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(ue.n_events), ue.time, ue.user))
    return replace(ue, user=ue.user[order], time=ue.time[order], event=ue.event[order],
                   revenue=ue.revenue[order], cost=ue.cost[order], starts=None)


step_sets = st.lists(st.sets(st.sampled_from("abcd"), min_size=1, max_size=2), min_size=2,
                     max_size=4)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log=logs, mode=st.sampled_from(["ordered", "strict", "any_order"]),
       n_steps=st.integers(2, 4), with_excl=st.booleans(), window_h=st.sampled_from([6, 24, 48]),
       as_of_h=st.sampled_from([50, 80, 120]), scoped=st.booleans(),
       repeat=st.booleans(), sets=st.none() | step_sets, seed=st.integers(0, 2**16))
def test_funnel_matches_reference(log, mode, n_steps, with_excl, window_h, as_of_h, scoped,
                                  repeat, sets, seed):
    n_users, rows = log
    ue = make_ue(rows, n_users)
    names: list[str | StepSpec] = list("abcd"[:n_steps])
    if repeat and mode != "any_order":
        names[1] = "a"  # a repeated step event: each event fills one step only
    if sets is not None and mode != "any_order":  # steps of several events that overlap
        names = [StepSpec(tuple(sorted(s))) for s in sets]
    excl = ["x"] if with_excl else []
    users = (np.arange(n_users) % 2 == 0) if scoped else None
    as_of = as_of_h * HOUR
    window_us = window_h * HOUR
    res = funnel(ue, names, window_days=window_h / 24, mode=mode, exclusions=excl, users=users,
                 as_of_us=as_of)
    ref = reference(ue, [{NAMES.index(n) for n in StepSpec(n).names} if isinstance(n, str)
                         else {NAMES.index(x) for x in n.names} for n in names], mode, window_us,
                    {NAMES.index(x) for x in excl}, users, as_of)
    assert res.furthest.tolist() == ref["furthest"]
    assert res.in_window_users.tolist() == ref["in_window"]
    assert res.excluded_users.tolist() == ref["excluded"]
    f = np.array(ref["furthest"])
    for k, step in enumerate(res.overall.steps, start=1):
        assert step.users == int((f >= k).sum())
        if k > 1 and step.users:
            dts = [(t[k - 1] - t[k - 2]) / 1e6 for t in ref["times"] if len(t) >= k]
            assert step.time_to_convert.median_seconds == pytest.approx(np.median(dts))
            assert sum(step.time_to_convert.histogram_counts) == len(dts)
    assert res.overall.excluded == sum(ref["excluded"])
    json.dumps(res.to_dict())
    # Events sharing a time are simultaneous: their stored order changes nothing.
    again = funnel(shuffle_ties(ue, seed), names, window_days=window_h / 24, mode=mode,
                   exclusions=excl, users=users, as_of_us=as_of)
    assert again.to_dict() == res.to_dict()
    assert again.furthest.tolist() == res.furthest.tolist()


def test_inclusive_window_boundary_and_new_attempts():
    a, b, c = 0, 1, 2
    rows = [
        (0, 0, a), (0, 24 * HOUR, b),  # exactly at the window: counts
        (1, 0, a), (1, 24 * HOUR + 1, b),  # one µs late: dropped
        (2, 0, a), (2, 30 * HOUR, a), (2, 50 * HOUR, b), (2, 51 * HOUR, c),  # second attempt
    ]
    ue = make_ue(rows, 3)
    res = funnel(ue, ["a", "b", "c"], window_days=1, as_of_us=500 * HOUR)
    assert res.furthest.tolist() == [2, 1, 3]
    assert res.dropoff_mask(1).tolist() == [False, True, False]
    assert res.dropoff_mask(2).tolist() == [True, False, False]
    s = res.overall.steps
    assert [x.users for x in s] == [3, 2, 1]
    assert s[1].conversion_from_previous.numerator == 2
    assert s[2].time_to_convert.median_seconds == 3600.0


def test_in_window_users_are_separate_from_dropped():
    rows = [(0, 0, 0), (1, 90 * HOUR, 0), (2, 90 * HOUR, 0), (2, 91 * HOUR, 1)]
    ue = make_ue(rows, 3)
    res = funnel(ue, ["a", "b"], window_days=1, as_of_us=100 * HOUR)
    s = res.overall.steps[0]
    assert (s.users, s.dropped, s.in_window) == (3, 1, 1)
    assert res.dropoff_mask(1).tolist() == [True, False, False]
    assert res.dropoff_mask(1, include_in_window=True).tolist() == [True, True, False]


def test_strict_and_exclusion():
    rows = [(0, 0, 0), (0, HOUR, 3), (0, 2 * HOUR, 1),  # a d b: ordered yes, strict no
            (1, 0, 0), (1, HOUR, 4), (1, 2 * HOUR, 1)]  # a x b: excluded
    ue = make_ue(rows, 2)
    assert funnel(ue, ["a", "b"], as_of_us=10**12).furthest.tolist() == [2, 2]
    assert funnel(ue, ["a", "b"], mode="strict", as_of_us=10**12).furthest.tolist() == [1, 1]
    res = funnel(ue, ["a", "b"], exclusions=["x"], as_of_us=10**12)
    assert res.furthest.tolist() == [2, 0]
    assert res.excluded_users.tolist() == [False, True]
    assert res.overall.excluded == 1 and res.overall.entered == 1


def test_validation():
    ue = make_ue([(0, 0, 0)], 1)
    with pytest.raises(ValueError):
        funnel(ue, ["a"], as_of_us=1)
    with pytest.raises(ValueError):
        funnel(ue, ["a", "b"], mode="sideways", as_of_us=1)
    with pytest.raises(ValueError):
        funnel(ue, ["a", StepSpec(("a", "b"))], mode="any_order", as_of_us=1)
    with pytest.raises(ValueError):
        funnel(ue, ["a", "b"], exclusions=["b"], as_of_us=1)


# ----------------------------------------------------------------------------- demo truth
@lru_cache(maxsize=1)
def demo_ue():
    data = generate_demo(users=20_000, seed=7)
    events = data.events.assign(timestamp=pd.to_datetime(data.events["timestamp"], utc=True))
    users = data.users.assign(signup_time=pd.to_datetime(data.users["signup_time"], utc=True))
    return data, build_user_events([events], users)


def test_demo_funnel_recovers_planted_conversions():
    data, ue = demo_ue()
    truth = data.truth["funnel"]
    end = pd.Timestamp(data.truth["meta"]["end"]).value // 1000
    before = pd.Timestamp(truth["cohort"]["signup_before"]).value // 1000
    cohort = (ue.attributes["plan"] == "free").to_numpy() & (ue.signup < before)
    # The demo's window is "< 14 days"; ours is inclusive, so one µs less gives the same rule.
    res = funnel(ue, truth["steps"], window_days=(14 * US_PER_DAY - 1) / US_PER_DAY,
                 users=cohort, as_of_us=end, breakdown=ue.attributes["device"].to_numpy())
    steps = res.overall.steps
    assert [s.users for s in steps] == truth["realized"]["users_reaching"]
    for s, planted in zip(steps[1:], truth["planted"]["step_conversion"][1:], strict=True):
        conv = s.conversion_from_previous
        assert conv.low <= planted <= conv.high, (s.label, conv, planted)
    for s, planted in zip(steps, truth["planted"]["cumulative"], strict=True):
        assert s.conversion_from_start.low <= planted <= s.conversion_from_start.high
    assert res.overall.in_window == 0  # the cohort is long past its window
    # Onboarding by device, from the breakdown.
    for series in res.breakdown:
        conv = series.steps[1].conversion_from_previous
        p = truth["planted_onboarding_by_device"][series.label]
        assert conv.low <= p <= conv.high
    assert sum(s.entered for s in res.breakdown) == res.overall.entered
    # Drop-off at step 2 as a segment: onboarded, no report.
    drop = res.dropoff_mask(2)
    assert drop.sum() == steps[1].users - steps[2].users
    json.dumps(res.to_dict())


def test_wilson_matches_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    p, lo, hi = wilson(np.array([3, 50]), np.array([10, 80]))
    ref = proportion_confint([3, 50], [10, 80], method="wilson")
    assert np.allclose(lo, ref[0]) and np.allclose(hi, ref[1])
