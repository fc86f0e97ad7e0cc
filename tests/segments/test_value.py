"""Value signals: per-user features, intervals, warnings, lift, retention curve, holdout check.

Pure tests, no database: tiny hand-computed inputs with exact expected values, plus a larger
random dataset checked against a naive per-user loop.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from events.frame import US_PER_DAY, UserEvents, build_user_events
from segments.analytics import value as value_module
from segments.analytics.holdout import holdout_check
from segments.analytics.retention import retention_curve
from segments.analytics.value import (
    Signal,
    bootstrap_means,
    mean_interval,
    segment_signals,
    signals_to_dict,
    to_us,
    user_features,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday
DAY = US_PER_DAY
Z = stats.norm.ppf(0.975)


# The shared conftest's autouse fixtures need Django; these tests need none of it.
@pytest.fixture(autouse=True)
def _event_store() -> None:
    return None


@pytest.fixture(autouse=True)
def _eager_tasks() -> Iterator[None]:
    yield


def us(dt: datetime) -> int:
    return to_us(dt)


def make_data(
    events: list[tuple[str, str, datetime, float | None, float | None]],
    signups: dict[str, datetime] | None = None,
) -> UserEvents:
    """UserEvents from (user, event, time, revenue, cost) rows and optional signup times."""
    frame = pd.DataFrame(events, columns=["user_id", "event", "timestamp", "revenue", "cost"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).dt.as_unit("us")
    frame["revenue"] = frame["revenue"].astype("float64")
    frame["cost"] = frame["cost"].astype("float64")
    users = None
    if signups:
        users = pd.DataFrame({"user_id": list(signups),
                              "signup_time": pd.to_datetime(list(signups.values()), utc=True)})
    return build_user_events([frame], users)


def wilson(k: int, n: int) -> tuple[float, float]:
    """Closed-form Wilson score interval."""
    p = k / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z / (1 + Z**2 / n) * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    return centre - half, centre + half


def features_frame(n: int, **columns: object) -> pd.DataFrame:
    """A hand-built features table: defaults are zeros / False, attrs like user_features."""
    base: dict[str, object] = {
        "active_period": np.zeros(n, bool), "revenue_period": np.zeros(n),
        "cost_period": np.zeros(n), "converted": np.zeros(n, bool),
    }
    for h in (30, 90, 365):
        base[f"ltv_{h}"] = np.zeros(n)
        base[f"matured_{h}"] = np.zeros(n, bool)
    for d in (1, 7, 30):
        base[f"retained_d{d}"] = np.zeros(n, bool)
        base[f"eligible_d{d}"] = np.zeros(n, bool)
    base.update(columns)
    frame = pd.DataFrame(base)
    frame.attrs.update(period_days=30, outcome=["purchase"], outcome_found=True, has_cost=False,
                       horizons=[30, 90, 365], retention_days=[1, 7, 30])
    return frame


# ----------------------------------------------------------------------------- features


def test_user_features_hand_computed() -> None:
    as_of = T0 + timedelta(days=100)
    data = make_data(
        [
            ("a", "view", T0, None, None),
            ("a", "view", T0 + timedelta(hours=3), None, None),  # same UTC day
            ("a", "purchase", T0 + timedelta(days=1, hours=2), 10.0, 1.0),  # D1, LTV30
            ("a", "purchase", T0 + timedelta(days=40), 5.0, None),  # LTV90
            ("a", "view", T0 + timedelta(days=95), None, 0.5),  # last period
            ("a", "view", T0 + timedelta(days=120), None, None),  # after as_of: ignored
            ("b", "view", T0 + timedelta(days=7, hours=1), None, None),  # signup+7d: D7
            ("b", "purchase", T0 + timedelta(days=60), 20.0, None),
            ("c", "view", T0 + timedelta(days=99, hours=12), None, None),
        ],
        signups={"a": T0, "b": T0, "c": T0 + timedelta(days=99)},
    )
    f = user_features(data, as_of, outcome="purchase")
    assert list(data.user_ids) == ["a", "b", "c"]
    assert f["n_events"].tolist() == [5, 2, 1]
    assert f["active_days"].tolist() == [4, 2, 1]
    assert f["revenue_total"].tolist() == [15.0, 20.0, 0.0]
    assert f["revenue_period"].tolist() == [0.0, 0.0, 0.0]
    assert f["active_period"].tolist() == [True, False, True]
    assert f["cost_total"].tolist() == [1.5, 0.0, 0.0]
    assert f["cost_period"].tolist() == [0.5, 0.0, 0.0]
    assert f["ltv_30"].tolist() == [10.0, 0.0, 0.0]
    assert f["ltv_90"].tolist() == [15.0, 20.0, 0.0]
    assert f["matured_30"].tolist() == [True, True, False]
    assert f["matured_90"].tolist() == [True, True, False]
    assert f["matured_365"].tolist() == [False, False, False]
    assert f["retained_d1"].tolist() == [True, False, False]
    assert f["retained_d7"].tolist() == [False, True, False]
    assert f["eligible_d1"].tolist() == [True, True, False]  # c: signup + 2 days > as_of
    assert f["converted"].tolist() == [True, True, False]
    assert f["recency_days"].tolist() == pytest.approx([5.0, 40.0, 0.5])
    assert f["event:view"].tolist() == [3, 1, 1]
    assert f["event:purchase"].tolist() == [2, 1, 0]
    assert f.loc[0, "last_seen"] == pd.Timestamp(T0 + timedelta(days=95))
    assert f.attrs["as_of"] == us(as_of) and f.attrs["has_cost"] is True


def test_retention_day_window_and_eligibility_edges() -> None:
    d1_start = T0 + timedelta(days=1)
    data = make_data(
        [
            ("on_start", "view", d1_start, None, None),  # first µs of day 1: retained
            ("on_end", "view", T0 + timedelta(days=2, microseconds=-1), None, None),  # last µs
            ("after", "view", T0 + timedelta(days=2), None, None),  # day 2: not day 1
            ("before", "view", T0 + timedelta(days=1, microseconds=-1), None, None),  # day 0
        ],
        signups=dict.fromkeys(["on_start", "on_end", "after", "before"], T0),
    )
    f = user_features(data, T0 + timedelta(days=3))
    assert list(data.user_ids) == ["after", "before", "on_end", "on_start"]
    assert f["retained_d1"].tolist() == [False, False, True, True]
    # Eligible only once the whole day-1 window has closed: signup + 2 days <= as_of.
    not_yet = user_features(data, T0 + timedelta(days=2, microseconds=-1))
    assert not not_yet["eligible_d1"].any()
    assert user_features(data, T0 + timedelta(days=2))["eligible_d1"].all()


def test_ltv_maturity_boundary() -> None:
    data = make_data([("u", "purchase", T0 + timedelta(days=89), 7.0, None)], {"u": T0})
    assert not user_features(data, T0 + timedelta(days=90, microseconds=-1))["matured_90"][0]
    f = user_features(data, T0 + timedelta(days=90))
    assert f["matured_90"][0] and f["ltv_90"][0] == 7.0 and f["ltv_30"][0] == 0.0


def test_signup_defaults_to_first_event_and_naive_times_rejected() -> None:
    data = make_data([("u", "view", T0 + timedelta(days=3), None, None)])
    assert data.signup[0] == us(T0 + timedelta(days=3))
    with pytest.raises(ValueError, match="timezone-aware"):
        user_features(data, datetime(2024, 2, 1))  # noqa: DTZ001 - the naive time under test


def naive_features(events: pd.DataFrame, signup: dict[str, int], as_of: int,
                   period_days: int) -> pd.DataFrame:
    """Per-user features by a plain Python loop over users and their events."""
    rows = {}
    for user, group in events.groupby("user_id"):
        s = signup[user]
        n_events = 0
        days: set[int] = set()
        revenue = cost = rev_period = cost_period = 0.0
        ltv = dict.fromkeys((30, 90, 365), 0.0)
        retained = dict.fromkeys((1, 7, 30), False)
        active = converted = False
        last = None
        for t, name, r, c in zip(group["t"], group["event"], group["revenue"], group["cost"],
                                 strict=True):
            if t > as_of:
                continue
            n_events += 1
            days.add(t // DAY)
            revenue += r
            cost += c
            last = t if last is None else max(last, t)
            if t > as_of - period_days * DAY:
                active = True
                rev_period += r
                cost_period += c
            for h in ltv:
                if t < s + h * DAY:
                    ltv[h] += r
            for d in retained:
                if s + d * DAY <= t < s + (d + 1) * DAY:
                    retained[d] = True
            if name == "purchase":
                converted = True
        row = {"n_events": n_events, "active_days": len(days), "revenue_total": revenue,
               "cost_total": cost, "revenue_period": rev_period, "cost_period": cost_period,
               "active_period": active, "converted": converted,
               "recency_days": (as_of - last) / DAY if last is not None else np.nan}
        for h in ltv:
            row[f"ltv_{h}"] = ltv[h]
            row[f"matured_{h}"] = s + h * DAY <= as_of
        for d in retained:
            row[f"retained_d{d}"] = retained[d]
            row[f"eligible_d{d}"] = s + (d + 1) * DAY <= as_of
        rows[user] = row
    return pd.DataFrame.from_dict(rows, orient="index").sort_index()


def test_vectorized_features_match_naive_loop() -> None:
    rng = np.random.default_rng(3)
    n_users, n_events = 300, 6000
    start = us(T0)
    ids = np.array([f"u{i:03d}" for i in range(n_users)])
    user = ids[rng.integers(0, n_users, n_events)]
    t = start + rng.integers(0, 500 * DAY, n_events)
    name = rng.choice(["view", "purchase", "share"], n_events, p=[0.7, 0.1, 0.2])
    revenue = np.where(name == "purchase", rng.exponential(30, n_events).round(2), 0.0)
    cost = rng.random(n_events).round(3)
    events = pd.DataFrame({"user_id": user, "event": name,
                           "timestamp": pd.to_datetime(t, unit="us", utc=True),
                           "revenue": revenue, "cost": cost, "t": t})
    first = events.groupby("user_id")["t"].min()
    # Half the users have a signup attribute (some after their first event), half do not.
    with_attr = first.index[::2]
    signup_attr = first[with_attr] + rng.integers(-5 * DAY, 5 * DAY, len(with_attr))
    users = pd.DataFrame({"user_id": with_attr,
                          "signup_time": pd.to_datetime(signup_attr.to_numpy(), unit="us",
                                                        utc=True)})
    data = build_user_events([events.drop(columns="t")], users)
    signup = first.to_dict() | signup_attr.to_dict()
    as_of = start + 420 * DAY
    f = user_features(data, as_of, period_days=45, outcome="purchase")
    naive = naive_features(events, signup, as_of, 45)
    assert list(naive.index) == list(data.user_ids)
    for column in naive.columns:
        got = f[column].to_numpy()
        want = naive[column].to_numpy()
        if want.dtype == bool:
            assert (got == want).all(), column
        else:
            np.testing.assert_allclose(got, want.astype(float), rtol=1e-9, atol=1e-9,
                                       err_msg=column)


# ----------------------------------------------------------------------------- signals


def test_size_share_and_conversion_are_exact_with_wilson() -> None:
    converted = np.array([1, 1, 0, 0, 1, 0, 0, 0, 0, 0], bool)
    f = features_frame(10, converted=converted)
    mask = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0], bool)
    s = segment_signals(mask, f)
    assert s["size"].estimate == 3 and s["size"].method == "count" and s["size"].low is None
    assert s["size"].warning == "small sample: n=3 (< 30)"
    assert s["share"].estimate == pytest.approx(0.3) and s["share"].n == 10
    assert (s["share"].low, s["share"].high) == pytest.approx(wilson(3, 10))
    assert s["conversion"].estimate == pytest.approx(2 / 3)
    assert (s["conversion"].low, s["conversion"].high) == pytest.approx(wilson(2, 3))
    assert s["conversion"].method == "wilson"


def test_revenue_per_active_user_mean_and_bootstrap() -> None:
    active = np.array([1, 1, 1, 1, 0, 1], bool)
    revenue = np.array([10.0, 0.0, 30.0, 20.0, 100.0, 999.0])
    f = features_frame(6, active_period=active, revenue_period=revenue)
    mask = np.array([1, 1, 1, 1, 1, 0], bool)  # user 4 is inactive, user 5 outside
    s = segment_signals(mask, f, seed=7)["revenue_per_active_user"]
    assert s.estimate == 15.0 and s.n == 4 and s.method == "bootstrap"
    assert 0.0 <= s.low <= 15.0 <= s.high <= 30.0
    again = segment_signals(mask, f, seed=7)["revenue_per_active_user"]
    assert (again.low, again.high) == (s.low, s.high)  # deterministic for a seed
    other = segment_signals(mask, f, seed=8)["revenue_per_active_user"]
    assert (other.low, other.high) != (s.low, s.high)


def test_ltv_uses_matured_users_only_and_warns_when_none_matured() -> None:
    f = features_frame(
        5,
        ltv_30=np.array([1.0, 2.0, 3.0, 4.0, 50.0]),
        matured_30=np.array([1, 1, 1, 1, 0], bool),
        ltv_90=np.array([5.0, 5.0, 8.0, 0.0, 0.0]),
        matured_90=np.array([1, 1, 1, 0, 0], bool),
    )
    s = segment_signals(np.ones(5, bool), f)
    assert s["ltv_30"].estimate == 2.5 and s["ltv_30"].n == 4
    assert s["ltv_90"].estimate == 6.0 and s["ltv_90"].n == 3
    assert s["ltv_365"].estimate is None and s["ltv_365"].low is None
    assert s["ltv_365"].warning == "no user has 365 days of history"


def test_retention_uses_eligible_users_only() -> None:
    f = features_frame(
        6,
        retained_d7=np.array([1, 0, 1, 0, 1, 1], bool),
        eligible_d7=np.array([1, 1, 1, 1, 0, 0], bool),  # last two too young
    )
    s = segment_signals(np.ones(6, bool), f)
    assert s["retention_d7"].estimate == 0.5 and s["retention_d7"].n == 4
    assert (s["retention_d7"].low, s["retention_d7"].high) == pytest.approx(wilson(2, 4))
    assert s["retention_d30"].estimate is None
    assert "needs 31 days" in s["retention_d30"].warning


def test_too_wide_warning_reports_relative_half_width() -> None:
    n = 40
    f = features_frame(n, converted=np.arange(n) < 4)  # 4 / 40
    s = segment_signals(np.ones(n, bool), f)["conversion"]
    low, high = wilson(4, n)
    rel = (high - low) / 2 / 0.1
    assert rel > 0.5
    assert s.warning == f"interval too wide to act on: ±{rel * 100:.0f}%"
    narrow = segment_signals(np.ones(n, bool), f, max_rel_width=rel + 0.01)["conversion"]
    assert narrow.warning is None


def test_both_warnings_combine() -> None:
    f = features_frame(4, converted=np.array([1, 0, 0, 0], bool))
    w = segment_signals(np.ones(4, bool), f)["conversion"].warning
    assert w.startswith("small sample: n=4 (< 30); interval too wide to act on: ±")


def test_cost_only_with_cost_data_and_no_outcome() -> None:
    f = features_frame(3, active_period=np.ones(3, bool), cost_period=np.array([1.0, 2.0, 6.0]))
    assert "cost_to_serve" not in segment_signals(np.ones(3, bool), f)
    f.attrs["has_cost"] = True
    f.attrs["outcome"] = None
    s = segment_signals(np.ones(3, bool), f)
    assert s["cost_to_serve"].estimate == 3.0 and s["cost_to_serve"].method == "bootstrap"
    assert s["conversion"].estimate is None and s["conversion"].warning == "no outcome event chosen"
    lift = s["lift_vs_baseline_conversion"]
    assert lift.estimate is None and lift.warning == "no outcome event chosen"


def test_outcome_never_seen_and_empty_data() -> None:
    data = make_data([("a", "view", T0, None, None)])
    f = user_features(data, T0, outcome="purchase")
    s = segment_signals(np.ones(1, bool), f)["conversion"]
    assert s.estimate == 0.0 and "never occurs in the data: purchase" in s.warning
    empty = make_data([])
    f = user_features(empty, T0)
    assert len(f) == 0 and "n_events" in f
    s = segment_signals(np.zeros(0, bool), f)
    assert s["size"].estimate == 0 and s["share"].estimate is None


def test_lift_delta_method_against_given_baseline() -> None:
    n = 200
    converted = np.zeros(n, bool)
    converted[:30] = True  # segment (first 50): 30 / 50
    converted[50:70] = True  # rest: 20 / 150
    f = features_frame(n, converted=converted)
    mask = np.arange(n) < 50
    baseline = signals_to_dict(segment_signals(np.ones(n, bool), f))
    s = segment_signals(mask, f, baseline=baseline)["lift_vs_baseline_conversion"]
    p_s, p_b = 0.6, 0.25
    se_s = math.sqrt(p_s * (1 - p_s) / 50)
    b_low, b_high = wilson(50, 200)
    se_b = (b_high - b_low) / (2 * Z)  # implied by the baseline's interval
    se_log = math.sqrt((se_s / p_s) ** 2 + (se_b / p_b) ** 2)
    assert s.method == "delta" and s.n == 50
    assert s.estimate == pytest.approx(2.4)
    assert s.low == pytest.approx(2.4 * math.exp(-Z * se_log))
    assert s.high == pytest.approx(2.4 * math.exp(Z * se_log))
    # Without a baseline: all rows of the features table with analytic standard errors.
    own = segment_signals(mask, f)["lift_vs_baseline_conversion"]
    se_b_analytic = math.sqrt(p_b * (1 - p_b) / 200)
    se_log = math.sqrt((se_s / p_s) ** 2 + (se_b_analytic / p_b) ** 2)
    assert own.estimate == pytest.approx(2.4)
    assert own.high == pytest.approx(2.4 * math.exp(Z * se_log))


def test_lift_ltv90_and_zero_segment() -> None:
    ltv = np.array([10.0, 20.0, 30.0, 0.0, 0.0, 0.0, 0.0, 20.0])
    f = features_frame(8, ltv_90=ltv, matured_90=np.ones(8, bool))
    seg = np.array([1, 1, 1, 0, 0, 0, 0, 0], bool)
    s = segment_signals(seg, f)["lift_vs_baseline_ltv_90"]
    se_s = np.std(ltv[:3], ddof=1) / math.sqrt(3)
    se_b = np.std(ltv, ddof=1) / math.sqrt(8)
    se_log = math.sqrt((se_s / 20) ** 2 + (se_b / 10) ** 2)
    assert s.estimate == pytest.approx(2.0)
    assert (s.low, s.high) == pytest.approx((2 * math.exp(-Z * se_log), 2 * math.exp(Z * se_log)))
    zero = segment_signals(np.array([0, 0, 0, 1, 1, 0, 0, 0], bool), f)["lift_vs_baseline_ltv_90"]
    assert zero.estimate == 0.0 and zero.low is None and "no interval" in zero.warning


def test_signals_are_json_ready_and_round_trip() -> None:
    f = features_frame(5, converted=np.array([1, 0, 1, 0, 0], bool))
    s = segment_signals(np.ones(5, bool), f)
    payload = json.loads(json.dumps(signals_to_dict(s)))
    assert set(payload["share"]) == {"name", "estimate", "low", "high", "n", "method", "unit",
                                     "warning"}
    assert Signal.from_dict(payload["conversion"]) == s["conversion"]
    assert all(sig.method in value_module.METHODS for sig in s.values())


def test_mask_and_period_validation() -> None:
    f = features_frame(3)
    with pytest.raises(ValueError, match="shape"):
        segment_signals(np.ones(4, bool), f)
    with pytest.raises(TypeError):
        segment_signals(np.ones(3, int), f)
    with pytest.raises(ValueError, match="period_days"):
        segment_signals(np.ones(3, bool), f, period_days=7)


# ----------------------------------------------------------------------------- bootstrap


def test_sparse_bootstrap_matches_plain_bootstrap_distribution() -> None:
    rng = np.random.default_rng(0)
    x = np.where(rng.random(400) < 0.15, rng.exponential(50, 400), 0.0)
    sparse = bootstrap_means(x, np.random.default_rng(1), 20_000)
    plain = x[np.random.default_rng(2).integers(0, 400, (20_000, 400))].mean(axis=1)
    assert sparse.mean() == pytest.approx(x.mean(), rel=0.01)
    assert sparse.std() == pytest.approx(plain.std(), rel=0.03)
    assert np.quantile(sparse, 0.975) == pytest.approx(np.quantile(plain, 0.975), rel=0.03)


def test_t_interval_for_very_large_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(value_module, "BOOTSTRAP_MAX_NONZERO", 5)
    x = np.arange(1.0, 21.0)
    est, low, high, method = mean_interval(x, np.random.default_rng(0))
    half = stats.t.ppf(0.975, 19) * np.std(x, ddof=1) / math.sqrt(20)
    assert method == "t" and est == 10.5
    assert (low, high) == pytest.approx((10.5 - half, 10.5 + half))


# ----------------------------------------------------------------------------- cohort curve


def test_retention_curve_weekly_cohorts_and_average() -> None:
    w = timedelta(days=7)
    data = make_data(
        [
            ("a", "view", T0, None, None),
            ("a", "view", T0 + w + timedelta(days=1), None, None),  # period 1
            ("b", "view", T0 + timedelta(days=2), None, None),
            ("b", "view", T0 + timedelta(days=2) + 2 * w, None, None),  # period 2
            ("c", "view", T0 + w, None, None),  # next week's cohort
            ("c", "view", T0 + 2 * w, None, None),  # period 1
            ("x", "view", T0, None, None),  # not in the mask
        ],
        signups={"a": T0, "b": T0 + timedelta(days=2), "c": T0 + w, "x": T0},
    )
    mask = np.array([True, True, True, False])
    as_of = T0 + timedelta(days=30)  # c: 23 days -> periods 0..2 closed; a, b: 0..3 / 0..3
    on = retention_curve(mask, data, as_of, cohort="week", max_periods=5)
    assert on["cohort"].tolist() == ["2024-01-01", "2024-01-08", "average"]
    assert on["size"].tolist() == [2, 1, 3]
    assert on.loc[0, [0, 1, 2, 3]].tolist() == [1.0, 0.5, 0.5, 0.0]
    assert math.isnan(on.loc[0, 4])  # no user has 5 whole weeks
    assert on.loc[1, [0, 1, 2]].tolist() == [1.0, 1.0, 0.0]
    assert math.isnan(on.loc[1, 3])
    assert on.loc[2, [0, 1, 2, 3]].tolist() == [1.0, 2 / 3, 1 / 3, 0.0]  # pooled over cohorts
    after = retention_curve(mask, data, as_of, cohort="week", max_periods=5, mode="on_or_after")
    assert after.loc[0, [0, 1, 2, 3]].tolist() == [1.0, 1.0, 0.5, 0.0]
    assert after.loc[2, [0, 1, 2]].tolist() == [1.0, 1.0, 1 / 3]
    month = retention_curve(mask, data, as_of, cohort="month", max_periods=2)
    assert month["cohort"].tolist() == ["2024-01-01", "average"]
    assert month.loc[0, 0] == 1.0 and math.isnan(month.loc[0, 1])


# ----------------------------------------------------------------------------- holdout


def test_holdout_stable_segment_held_and_spike_not_held() -> None:
    rng = np.random.default_rng(11)
    split = T0 + timedelta(days=60)
    rows = []
    for i in range(80):  # stable: a purchase every ~10 days in both windows
        for day in range(2, 120, 10):
            rows.append((f"s{i:02d}", "purchase", T0 + timedelta(days=day + int(rng.integers(3))),
                         float(rng.uniform(5, 15)), None))
    for i in range(80):  # spike: spent only in the calibration window
        rows.append((f"p{i:02d}", "purchase", T0 + timedelta(days=int(rng.integers(1, 55))),
                     float(rng.uniform(50, 80)), None))
        rows.append((f"p{i:02d}", "view", T0 + timedelta(days=int(rng.integers(61, 119))), None,
                     None))
    data = make_data(rows, signups={r[0]: T0 for r in rows})
    stable = np.char.startswith(data.user_ids.astype(str), "s")
    end = T0 + timedelta(days=120)
    held = holdout_check(stable, data, split, end)
    assert held["held"] is True and held["segment"]["overlap"]
    assert 0.5 <= held["ratio"] <= 2
    assert held["sentence"].startswith("Held: the 80 members")
    assert held["calibration_window"] == [us(T0), us(split)]
    spike = holdout_check(~stable, data, split, end)
    assert spike["held"] is False and spike["ratio"] == 0.0
    assert not spike["segment"]["overlap"]
    assert spike["sentence"].startswith("Not held")
    json.dumps(held)
    json.dumps(spike)
    # Hand check of the value: revenue per member per 30 days in the 60-day calibration window.
    cal_rev = sum(r[3] for r in rows if r[0].startswith("s") and r[2] < split)
    assert held["segment"]["calibration"]["estimate"] == pytest.approx(cal_rev / 80 / 2)


def test_holdout_small_sample_warning_and_validation() -> None:
    data = make_data([("a", "purchase", T0 + timedelta(days=1), 5.0, None),
                      ("a", "purchase", T0 + timedelta(days=15), 5.0, None)], {"a": T0})
    out = holdout_check(np.array([True]), data, T0 + timedelta(days=10),
                        T0 + timedelta(days=20), start=T0)
    assert out["warning"] == "small sample: n=1 (< 30)"
    assert out["held"] is True and "Caution" in out["sentence"]
    with pytest.raises(ValueError):
        holdout_check(np.array([True]), data, T0 + timedelta(days=10), T0)


# ----------------------------------------------------------------------------- vectorized paths


def _random_log(seed: int, n_users: int = 200, n_events: int = 5000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = us(T0)
    t = start + rng.integers(0, 400 * DAY, n_events)
    name = rng.choice(["view", "purchase", "share", "invite", "export"], n_events,
                      p=[0.5, 0.1, 0.2, 0.1, 0.1])
    return pd.DataFrame({
        "user_id": np.array([f"u{i:03d}" for i in range(n_users)])[
            rng.integers(0, n_users, n_events)],
        "event": name,
        "timestamp": pd.to_datetime(t, unit="us", utc=True),
        "revenue": np.where(name == "purchase", rng.exponential(30, n_events).round(2), 0.0),
        "cost": np.where(rng.random(n_events) < 0.3, rng.random(n_events).round(3), 0.0),
    })


def test_user_features_index_path_matches_filtering_path() -> None:
    """With nothing after as_of the features read the dataset's name index and shared arrays;
    with later events they filter first and count the plain way. Same events: same table."""
    events = _random_log(11)
    as_of = int(events["timestamp"].max().value // 1000) + 1
    late = events.groupby("user_id").head(1).assign(
        timestamp=pd.Timestamp(as_of + 5 * DAY, unit="us", tz="UTC"), revenue=7.0, cost=1.0,
        event="purchase")
    whole = build_user_events([events])
    filtered = build_user_events([pd.concat([events, late], ignore_index=True)])
    assert list(whole.user_ids) == list(filtered.user_ids)
    for top in (20, 2):
        a = user_features(whole, as_of, period_days=30, outcome=["purchase", "export"],
                          top_events=top)
        b = user_features(filtered, as_of, period_days=30, outcome=["purchase", "export"],
                          top_events=top)
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        # The event counts, by hand.
        counts = events.groupby(["user_id", "event"]).size().unstack(fill_value=0)
        for column in (c for c in a.columns if c.startswith("event:")):
            want = counts[column[len("event:"):]].reindex(whole.user_ids, fill_value=0)
            assert (a[column].to_numpy() == want.to_numpy()).all(), column
        assert len([c for c in a.columns if c.startswith("event:")]) == min(top, 5)


def test_user_features_two_threads_match_one(monkeypatch: pytest.MonkeyPatch) -> None:
    data = build_user_events([_random_log(12)])
    as_of = int(data.time.max()) + 1
    monkeypatch.setattr(value_module, "PARALLEL_MIN_EVENTS", 10**12)
    one = user_features(data, as_of, period_days=30, outcome="purchase")
    monkeypatch.setattr(value_module, "PARALLEL_MIN_EVENTS", 0)
    two = user_features(data, as_of, period_days=30, outcome="purchase")
    pd.testing.assert_frame_equal(one, two, check_exact=True)
    assert list(one.columns[:3]) == ["n_events", "active_days", "first_seen"]


def test_active_days_by_running_count() -> None:
    day = DAY
    data = make_data([("a", "x", T0, 0, 0), ("a", "x", T0 + timedelta(hours=23), 0, 0),
                      ("a", "x", T0 + timedelta(days=1), 0, 0),
                      ("a", "x", T0 + timedelta(days=5, hours=1), 0, 0),
                      ("b", "x", T0 + timedelta(days=5, hours=2), 0, 0),
                      ("c", "x", T0 + timedelta(days=9), 0, 0),
                      ("c", "x", T0 + timedelta(days=9, hours=3), 0, 0)])
    f = user_features(data, us(T0) + 20 * day)
    assert f["active_days"].tolist() == [3, 1, 1]
    assert f["n_events"].tolist() == [4, 1, 2]


def test_segment_signals_member_rows_equal_masked_columns() -> None:
    data = build_user_events([_random_log(13, n_users=400, n_events=8000)])
    as_of = int(data.time.max()) + 1
    f = user_features(data, as_of, period_days=30, outcome="purchase")
    rng = np.random.default_rng(14)
    mask = rng.random(len(f)) < 0.4
    s = segment_signals(mask, f, seed=0)
    # The old way: each whole column masked by the segment.
    active = mask & f["active_period"].to_numpy()
    assert s["revenue_per_active_user"].estimate == float(
        f["revenue_period"].to_numpy()[active].mean())
    assert s["revenue_per_active_user"].n == int(active.sum())
    for h in (30, 90, 365):
        x = f[f"ltv_{h}"].to_numpy()[mask & f[f"matured_{h}"].to_numpy()]
        assert s[f"ltv_{h}"].estimate == (float(x.mean()) if len(x) else None)
    for d in (1, 7, 30):
        eligible = mask & f[f"eligible_d{d}"].to_numpy()
        assert s[f"retention_d{d}"].n == int(eligible.sum())
        if eligible.any():
            assert s[f"retention_d{d}"].estimate == int(
                (eligible & f[f"retained_d{d}"].to_numpy()).sum()) / int(eligible.sum())
    assert s["conversion"].estimate == int((mask & f["converted"].to_numpy()).sum()) / mask.sum()
    assert s["cost_to_serve"].estimate == float(f["cost_period"].to_numpy()[active].mean())


def test_inlined_wilson_and_t_quantile_equal_the_library_calls() -> None:
    from statsmodels.stats.proportion import proportion_confint

    rng = np.random.default_rng(15)
    trials = [*range(1, 60), *rng.integers(60, 2_000_000_000, 300).tolist()]
    for n in trials:
        for k in {0, 1 % (n + 1), n // 3, n - 1, n}:
            low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
            assert value_module.wilson_interval(k, n) == (float(low), float(high)), (k, n)
            assert value_module.wilson_interval(np.int64(k), np.int64(n)) == (float(low),
                                                                              float(high))
    for df in [*range(1, 500), *rng.integers(500, 10**8, 200).tolist()]:
        assert value_module.t_quantile_975(df) == float(stats.t.ppf(0.975, df)), df
