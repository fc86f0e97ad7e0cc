"""Per-user analyses split into contiguous ranges of users on several threads equal the same
analysis on one thread, bit for bit (funnels, retention), and the ranges and slices are what
they say."""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from behaviour.analytics import cohorts, funnel_partials, funnels
from events.demo import generate_demo
from events.frame import build_user_events


@lru_cache(maxsize=1)
def demo():
    data = generate_demo(users=3000, seed=11)
    events = data.events.assign(timestamp=pd.to_datetime(data.events["timestamp"], utc=True))
    users = data.users.assign(signup_time=pd.to_datetime(data.users["signup_time"], utc=True))
    ue = build_user_events([events], users, with_properties=True)
    return ue, int(ue.time.max()) + 1


def _both(monkeypatch, module, run):
    """``run()`` on one thread, then on three threads with every frame split."""
    monkeypatch.setattr(module, "PARALLEL_MIN_EVENTS", 0)
    monkeypatch.setattr(funnel_partials, "PARALLEL_MIN_USERS", 0)  # a series' statistics too
    monkeypatch.setenv("SP_ANALYTIC_THREADS", "1")
    one = run()
    monkeypatch.setenv("SP_ANALYTIC_THREADS", "3")
    return one, run()


def test_user_ranges_cover_every_user_once_with_balanced_events():
    ue, _ = demo()
    ranges = ue.user_ranges(3)
    assert ranges[0][0] == 0 and ranges[-1][1] == ue.n_users and len(ranges) == 3
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    events = [int(ue.starts[hi] - ue.starts[lo]) for lo, hi in ranges]
    assert sum(events) == ue.n_events
    assert max(events) - min(events) <= 2 * int(np.diff(ue.starts).max())
    assert ue.user_ranges(3, min_events=ue.n_events + 1) == [(0, ue.n_users)]
    assert ue.user_ranges(1) == [(0, ue.n_users)]


def test_a_user_slice_is_the_rows_of_its_users_renumbered_from_zero():
    ue, _ = demo()
    lo, hi = 1000, 1400
    part = ue.user_slice(lo, hi)
    a, b = int(ue.starts[lo]), int(ue.starts[hi])
    assert list(part.user_ids) == list(ue.user_ids[lo:hi])
    np.testing.assert_array_equal(part.user, ue.user[a:b] - lo)
    np.testing.assert_array_equal(part.time, ue.time[a:b])
    np.testing.assert_array_equal(part.starts, ue.starts[lo:hi + 1] - a)
    np.testing.assert_array_equal(part.signup, ue.signup[lo:hi])
    assert part.attributes["plan"].tolist() == ue.attributes["plan"].iloc[lo:hi].tolist()
    assert part.properties.to_pylist() == ue.properties[a:b].to_pylist()


@pytest.mark.parametrize("mode", ["ordered", "strict", "any_order"])
@pytest.mark.parametrize("scoped", [False, True])
def test_a_funnel_on_three_threads_equals_one_thread(monkeypatch, mode, scoped):
    ue, as_of = demo()
    steps = ["signup", "onboarding_completed", "report_created", "invite_sent"]
    scope = (np.arange(ue.n_users) % 3 != 0) if scoped else None
    exclusions = ["support_ticket"] if mode != "any_order" and "support_ticket" in \
        ue.event_names else []
    one, many = _both(monkeypatch, funnels, lambda: funnels.funnel(
        ue, steps, as_of_us=as_of, window_days=7, mode=mode, users=scope,
        exclusions=exclusions))
    assert json.dumps(one.to_dict(), sort_keys=True) == json.dumps(many.to_dict(), sort_keys=True)
    np.testing.assert_array_equal(one.furthest, many.furthest)
    np.testing.assert_array_equal(one.in_window_users, many.in_window_users)
    np.testing.assert_array_equal(one.excluded_users, many.excluded_users)
    assert one.overall.steps[1].users > 0


def test_a_funnel_with_a_step_filter_on_three_threads_equals_one_thread(monkeypatch):
    ue, as_of = demo()
    key = next(k for text in ue.properties.dictionary.to_pylist() if text
               for k in json.loads(text))
    value = next(json.loads(t)[key] for t in ue.properties.dictionary.to_pylist()
                 if t and key in json.loads(t))
    steps = [{"event": "signup"}, {"event": list(ue.event_names),
                                   "filter": {"key": key, "op": "eq", "value": value}}]
    one, many = _both(monkeypatch, funnels, lambda: funnels.funnel(
        ue, steps, as_of_us=as_of, window_days=30))
    assert one.to_dict() == many.to_dict()
    assert one.overall.steps[1].users > 0


@pytest.mark.parametrize("options", [
    {"cohort_by": "signup", "period": "week"},
    {"cohort_by": "first_event", "period": "month", "mode": "first_time"},
    {"cohort_by": "signup", "period": "week", "period_kind": "rolling", "period_days": 3,
     "return_on": "within", "within": 2},
    {"cohort_by": "signup", "period": "week", "return_on": "on_or_after",
     "return_events": ["report_created"]},
])
def test_retention_on_three_threads_equals_one_thread(monkeypatch, options):
    ue, as_of = demo()
    scope = np.arange(ue.n_users) % 4 != 1
    one, many = _both(monkeypatch, cohorts, lambda: cohorts.retention(
        ue, as_of_us=as_of, users=scope, **options))
    assert one.to_dict() == many.to_dict()
    np.testing.assert_array_equal(one.counts, many.counts)
    assert int(one.counts.sum()) > 0


def test_retention_rejects_a_users_mask_of_the_wrong_length():
    ue, as_of = demo()
    with pytest.raises(ValueError, match="one entry per user"):
        cohorts.retention(ue, as_of_us=as_of, users=np.ones(ue.n_users + 1, dtype=bool))
