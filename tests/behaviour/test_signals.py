"""High-value behaviour discovery (behaviour.analytics.signals): the demo's planted early
behaviour is ranked first, its odds-ratio interval covers the planted value and it is confirmed
on holdout; per-user counts and 2x2 tables against plain loops (hypothesis). No database."""

from __future__ import annotations

import json
import math
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from behaviour.analytics.signals import (
    Candidate,
    Outcome,
    association,
    behaviour_mask,
    candidates_grid,
    discover,
    early_counts,
    outcome_flags,
)
from events.demo import generate_demo
from events.frame import US_PER_DAY, UserEvents, build_user_events

HOUR = US_PER_DAY // 24
NAMES = ("a", "b", "up")


def make_ue(rows: list[tuple[int, int, int, float]], signup: list[int]) -> UserEvents:
    n = len(signup)
    user = np.array([r[0] for r in rows], dtype=np.int32)
    time = np.array([r[1] for r in rows], dtype=np.int64)
    event = np.array([r[2] for r in rows], dtype=np.int32)
    revenue = np.array([r[3] for r in rows], dtype=np.float64)
    order = np.lexsort((time, user))
    return UserEvents(user_ids=np.array([f"u{i}" for i in range(n)], dtype=object),
                      user=user[order], time=time[order], event=event[order], event_names=NAMES,
                      revenue=revenue[order], cost=np.zeros(len(rows)),
                      signup=np.array(signup, dtype=np.int64),
                      attributes=pd.DataFrame(index=pd.RangeIndex(n)))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), kind=st.sampled_from(["event", "active", "revenue"]))
def test_counts_outcomes_and_tables_match_loops(data, kind):
    n = data.draw(st.integers(1, 8))
    signup = [data.draw(st.integers(0, 10)) * 12 * HOUR for _ in range(n)]
    rows = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(-4, 40),
                                        st.integers(0, 2), st.sampled_from([0.0, 0.0, 9.5])),
                              max_size=40))
    rows = [(u, signup[u] + h * 12 * HOUR, e, r) for u, h, e, r in rows]
    ue = make_ue(rows, signup)
    windows = [1.0, 2.0, 5.0]
    users = np.arange(n)
    counts = early_counts(ue, ["a", "b"], windows, users)
    for u in range(n):
        for j, name in enumerate(["a", "b"]):
            for w_i, w in enumerate(windows):
                expected = sum(1 for uu, t, e, _ in rows if uu == u and NAMES[e] == name
                               and 0 <= t - signup[u] < w * US_PER_DAY)
                assert counts[u, j, w_i] == expected
    outcome = Outcome(kind=kind, event="up", days=10, from_days=3)
    flags = outcome_flags(ue, outcome, users)
    for u in range(n):
        lo = 3 if kind == "active" else 0
        expected = any(uu == u and lo * US_PER_DAY <= t - signup[u] < 10 * US_PER_DAY
                       and (kind == "active" or (kind == "event" and e == 2)
                            or (kind == "revenue" and r > 0))
                       for uu, t, e, r in rows)
        assert flags[u] == expected
    cand = Candidate("a", 2, 2.0)
    mask = behaviour_mask(ue, cand)
    assert mask.tolist() == (counts[:, 0, 1] >= 2).tolist()


def test_association_matches_statsmodels():
    from statsmodels.stats.contingency_tables import Table2x2

    a, b, c, d = 40, 60, 100, 400
    s = association(np.array([a]), np.array([b]), np.array([c]), np.array([d]))[0]
    t = Table2x2(np.array([[a, b], [c, d]]))
    assert s.odds_ratio.estimate == pytest.approx(t.oddsratio)
    lo, hi = t.oddsratio_confint()
    assert (s.odds_ratio.low, s.odds_ratio.high) == pytest.approx((lo, hi))
    assert s.lift.estimate == pytest.approx(t.riskratio)
    lo, hi = t.riskratio_confint()
    assert (s.lift.low, s.lift.high) == pytest.approx((lo, hi))
    assert s.p_value == pytest.approx(t.oddsratio_pvalue())
    phi = (a * d - b * c) / math.sqrt((a + b) * (c + d) * (a + c) * (b + d))
    assert s.phi == pytest.approx(phi)
    assert s.precision == pytest.approx(a / (a + b)) and s.recall == pytest.approx(a / (a + c))
    assert s.share == pytest.approx((a + b) / 600)
    z = association(np.array([0]), np.array([10]), np.array([5]), np.array([20]))[0]
    assert z.haldane and z.odds_ratio.estimate == pytest.approx((0.5 * 20.5) / (10.5 * 5.5))


def test_right_censoring_excludes_users_without_a_full_window():
    signup = [0, 0, 50 * US_PER_DAY, 90 * US_PER_DAY]
    rows = [(0, HOUR, 0, 0.0), (0, 2 * HOUR, 0, 0.0), (0, 5 * US_PER_DAY, 2, 0.0),
            (1, HOUR, 1, 0.0), (2, HOUR, 0, 0.0), (3, HOUR, 0, 0.0), (3, 2 * HOUR, 0, 0.0)]
    ue = make_ue(rows, signup)
    res = discover(ue, as_of_us=100 * US_PER_DAY, outcome=Outcome("event", "up", 30),
                   candidates=[Candidate("a", 2, 7)], calibration_us=(0, 1),
                   holdout_us=(1, 10**15))
    assert res.censored_users == 1  # signed up 10 days before as_of: 30 days not observed
    assert res.calibration_users == 2 and res.holdout_users == 1
    assert res.correlational is True
    json.dumps(res.to_dict())


@lru_cache(maxsize=1)
def demo_ue():
    data = generate_demo(users=20_000, seed=7)
    events = data.events.assign(timestamp=pd.to_datetime(data.events["timestamp"], utc=True))
    users = data.users.assign(signup_time=pd.to_datetime(data.users["signup_time"], utc=True))
    return data, build_user_events([events], users)


def test_demo_planted_behaviour_is_ranked_first_and_confirmed():
    data, ue = demo_ue()
    truth = data.truth["early_behaviour"]
    end = pd.Timestamp(data.truth["meta"]["end"]).value // 1000
    free = (ue.attributes["plan"] == "free").to_numpy()
    events = ["session_start", "onboarding_completed", "feature_used", "report_created",
              "invite_sent"]
    # as_of one µs before the end: "signup + 60 days <= as_of" is then the demo's cohort rule
    # "signup < end - 60 days".
    res = discover(ue, as_of_us=end - 1, users=free, outcome=Outcome("event", "upgrade", 60),
                   candidates=candidates_grid(events, (1, 2, 3, 5), (1, 3, 7, 14)))
    top = res.signals[0]
    assert (top.candidate.event, top.candidate.min_count, top.candidate.window_days) == \
        ("report_created", 2, 7.0)
    assert top.significant and top.confirmed
    planted = truth["planted_odds_ratio"]
    assert top.calibration.odds_ratio.covers(planted)
    assert top.holdout.odds_ratio.covers(planted)
    # Calibration + holdout = the demo's cohort: the realized 2x2 table exactly.
    assert res.calibration_users + res.holdout_users == truth["cohort"]["users"]
    r = truth["realized"]
    for key, attr in (("exposed_upgraded", "exposed_outcome"),
                      ("exposed_not_upgraded", "exposed_no_outcome"),
                      ("unexposed_upgraded", "unexposed_outcome"),
                      ("unexposed_not_upgraded", "unexposed_no_outcome")):
        assert getattr(top.calibration, attr) + getattr(top.holdout, attr) == r[key]
    # BH: q-values are >= p-values, and unrelated noise is rarely "confirmed".
    assert all(s.q_value >= s.calibration.p_value - 1e-12 for s in res.signals)
    assert res.to_dict()["correlational"] is True
    json.dumps(res.to_dict())
