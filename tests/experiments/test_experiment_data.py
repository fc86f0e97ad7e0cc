"""Experiment data from events (pure): assignments, per-user metrics, panels, analyses.

Checked against brute-force loops, statsmodels fits made here, and the demo's planted A/B test.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from events.demo import generate_demo
from events.frame import build_user_events
from experiments import stats
from experiments.data import (
    ExperimentDataError,
    MetricSpec,
    RandomizedSettings,
    Scope,
    analyze_did,
    analyze_randomized,
    analyze_summaries,
    assignment_from_events,
    assignment_from_table,
    metric_values,
    period_panel,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
DAY = 86_400_000_000


@pytest.fixture(autouse=True)
def _event_store() -> None:  # pure: the shared conftest's Django fixtures are not needed
    return None


@pytest.fixture(autouse=True)
def _eager_tasks() -> None:
    return None


def make(events: list[tuple]) -> object:
    """Events as (user, event, days after T0, revenue, properties or None)."""
    frame = pd.DataFrame({
        "user_id": [e[0] for e in events],
        "event": [e[1] for e in events],
        "timestamp": pd.to_datetime([T0 + timedelta(days=e[2]) for e in events], utc=True),
        "revenue": [float(e[3]) for e in events],
        "properties": pd.Series([None if e[4] is None else json.dumps(e[4]) for e in events],
                                dtype=object),
    })
    return build_user_events([frame], None, with_properties=True)


def exposure(arm: str, experiment: str = "x1") -> dict:
    return {"experiment": experiment, "arm": arm}


def test_assignment_first_exposure_conflicts_and_unknown_arms() -> None:
    ue = make([
        ("a", "assigned", 1, 0, exposure("control")),
        ("a", "assigned", 3, 0, exposure("control")),  # repeat exposure: first one counts
        ("b", "assigned", 2, 0, exposure("treatment")),
        ("c", "assigned", 1, 0, exposure("control")),
        ("c", "assigned", 2, 0, exposure("treatment")),  # two arms: left out
        ("d", "assigned", 1, 0, exposure("holdout")),  # not a configured arm
        ("e", "assigned", 1, 0, exposure("treatment", "other")),  # another experiment
        ("f", "signup", 0, 0, None),
    ])
    a = assignment_from_events(ue, event="assigned", arms=["control", "treatment"],
                               experiment_id="x1")
    assert [ue.user_ids[u] for u in a.user] == ["a", "b"]
    assert a.arm.tolist() == [0, 1]
    assert a.time.tolist() == [ue.time[ue.starts[ue.user_ids.tolist().index("a")]],
                               ue.time[ue.starts[ue.user_ids.tolist().index("b")]]]
    assert (a.conflicting, a.unknown_arm) == (1, 1)
    with pytest.raises(ExperimentDataError, match="no 'nope' events"):
        assignment_from_events(ue, event="nope", arms=["control", "treatment"])


def test_assignment_from_table_counts_unknown_users() -> None:
    ue = make([("a", "signup", 0, 0, None), ("b", "signup", 0, 0, None)])
    table = pd.DataFrame({"user_id": ["a", "b", "zz"], "arm": ["control", "treatment", "control"],
                          "assigned_at": ["2025-01-02T00:00:00Z"] * 3})
    a = assignment_from_table(ue, table, ["control", "treatment"])
    assert a.counts() == [1, 1] and a.unknown_users == 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metric_values_match_a_per_user_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    events = []
    for u in range(30):
        for _ in range(rng.integers(0, 12)):
            kind = ["buy", "view", "assigned"][rng.integers(0, 3)]
            events.append((f"u{u:02d}", kind, float(rng.integers(0, 40 * 24)) / 24,
                           float(rng.integers(0, 50)) if kind == "buy" else 0.0, None))
    events.append(("u00", "view", 0, 0, None))
    ue = make(events)
    users = np.arange(ue.n_users, dtype=np.int64)[::2]
    start = (np.datetime64("2025-01-10", "us").astype(np.int64)
             + rng.integers(0, 10 * DAY, len(users)))
    for spec, pre in [({"kind": "conversion", "event": "buy", "window_days": 7}, None),
                      ({"kind": "count", "event": "view", "window_days": 3.5}, None),
                      ({"kind": "revenue", "window_days": 10}, None),
                      ({"kind": "count", "event": "view", "window_days": 7}, 5.0)]:
        metric = MetricSpec.from_dict(spec)
        got = metric_values(ue, users, start, metric, pre_days=pre)
        expected = []
        for u, s in zip(users, start, strict=True):
            lo, hi = (s, s + int(metric.window_days * DAY)) if pre is None else (
                s - int(pre * DAY), s)
            total = 0.0
            for i in range(ue.starts[u], ue.starts[u + 1]):
                name = ue.event_names[ue.event[i]]
                if lo <= ue.time[i] < hi:
                    if metric.kind == "revenue" and ue.revenue[i] != 0:
                        total += ue.revenue[i]
                    elif metric.kind != "revenue" and name == metric.event:
                        total += 1
            expected.append(min(total, 1.0) if metric.kind == "conversion" else total)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


def test_metric_spec_errors_name_the_field() -> None:
    with pytest.raises(ExperimentDataError, match="primary.kind"):
        MetricSpec.from_dict({"kind": "clicks"}, "primary")
    with pytest.raises(ExperimentDataError, match="needs an event"):
        MetricSpec.from_dict({"kind": "count", "window_days": 3})
    with pytest.raises(ExperimentDataError, match="positive"):
        MetricSpec.from_dict({"kind": "revenue", "window_days": 0})


# ----- the demo's planted experiment -------------------------------------------------------------
@lru_cache(maxsize=1)
def demo():
    data = generate_demo(users=50_000, seed=7)  # the size `make demo` uses
    events = data.events.assign(timestamp=pd.to_datetime(data.events["timestamp"], utc=True))
    users = data.users.assign(signup_time=pd.to_datetime(data.users["signup_time"], utc=True))
    return data.truth, build_user_events([events], users, with_properties=True)


def test_demo_experiment_effect_recovered_in_web_and_not_claimed_on_mobile() -> None:
    truth, ue = demo()
    x = truth["experiment"]
    a = assignment_from_events(ue, event=x["assignment_event"], arms=x["arms"],
                               experiment_id=x["experiment_id"])
    device = ue.attributes["device"].to_numpy()
    scopes = [Scope("all", "All assigned"), Scope("web", "Web", device == "web"),
              Scope("mobile", "Mobile", np.isin(device, ["ios", "android"]))]
    metric = MetricSpec.from_dict({"kind": "conversion", "event": "onboarding_completed",
                                   "window_days": 7, "name": "onboarded"})
    result = analyze_randomized(ue, a, [metric], scopes, RandomizedSettings(weights=[0.5, 0.5]))
    rows = {r["scope"]: r for r in result["rows"]}
    for scope in ("web", "mobile"):
        realized = x["segments"][scope]["realized"]
        row = rows[scope]
        # Exactly the generator's own counts: same users, same window.
        assert (row["n_control"], row["n_treatment"]) == (realized["control"]["users"],
                                                          realized["treatment"]["users"])
        assert row["control_mean"] == pytest.approx(realized["control"]["rate"], abs=1e-12)
        assert row["absolute"] == pytest.approx(realized["effect"], abs=1e-12)
        planted = x["segments"][scope]["planted_effect"]
        assert row["absolute_ci"][0] <= planted <= row["absolute_ci"][1]
    assert rows["web"]["significant"] and rows["web"]["absolute_ci"][0] > 0
    assert not rows["mobile"]["significant"] and rows["mobile"]["absolute_ci"][0] < 0
    # Holm over the three primary comparisons: the smallest p times 3, then running max.
    ps = sorted((r["p_value"], k) for k, r in rows.items())
    assert rows[ps[0][1]]["p_adjusted"] == pytest.approx(min(1, ps[0][0] * 3))
    assert rows[ps[1][1]]["p_adjusted"] == pytest.approx(min(1, max(ps[0][0] * 3,
                                                                    ps[1][0] * 2)))
    assert not result["srm_flagged"] and result["counts"] == a.counts()


def test_cuped_keeps_the_estimate_unbiased_and_narrows_the_interval() -> None:
    truth, ue = demo()
    x = truth["experiment"]
    a = assignment_from_events(ue, event=x["assignment_event"], arms=x["arms"],
                               experiment_id=x["experiment_id"])
    metric = MetricSpec.from_dict({"kind": "count", "event": "session_start",
                                   "window_days": 28})
    plain = analyze_randomized(ue, a, [metric], [Scope("all", "All")],
                               RandomizedSettings(weights=[0.5, 0.5]))["rows"][0]
    cuped = analyze_randomized(ue, a, [metric], [Scope("all", "All")],
                               RandomizedSettings(weights=[0.5, 0.5],
                                                  cuped_pre_days=28))["rows"][0]
    assert cuped["method"] == "cuped"
    # Same users; the covariate is the pre-assignment session count.
    y = metric_values(ue, a.user, a.time, metric)
    xcov = metric_values(ue, a.user, a.time, metric, pre_days=28)
    direct = stats.cuped_effect(y[a.arm == 0], xcov[a.arm == 0], y[a.arm == 1], xcov[a.arm == 1])
    assert cuped["absolute"] == pytest.approx(direct.absolute, abs=1e-12)
    width = lambda r: r["absolute_ci"][1] - r["absolute_ci"][0]  # noqa: E731
    assert width(cuped) <= width(plain)


def test_summaries_give_the_same_numbers_as_the_stats_functions() -> None:
    metrics = [MetricSpec.from_dict({"kind": "conversion", "event": "buy", "window_days": 7,
                                     "name": "buy"}),
               MetricSpec.from_dict({"kind": "revenue", "window_days": 7, "name": "rev"})]
    rows = [
        {"scope": "all", "metric": "buy", "arm": "control", "n": 1000, "sum": 100, "sum_sq": 100},
        {"scope": "all", "metric": "buy", "arm": "b", "n": 1010, "sum": 131, "sum_sq": 131},
        {"scope": "all", "metric": "rev", "arm": "control", "n": 1000, "sum": 5000.0,
         "sum_sq": 90000.0},
        {"scope": "all", "metric": "rev", "arm": "b", "n": 1010, "sum": 5600.0,
         "sum_sq": 99000.0},
    ]
    out = analyze_summaries(rows, ["control", "b"], metrics,
                            RandomizedSettings(weights=[0.5, 0.5], correction="none"))
    by = {r["metric"]: r for r in out["rows"]}
    p = stats.proportion_effect(100, 1000, 131, 1010)
    assert by["buy"]["absolute"] == pytest.approx(131 / 1010 - 0.1, abs=1e-12)
    assert by["buy"]["p_value"] == pytest.approx(p.p_value, abs=1e-12)
    m = stats.mean_effect(stats.ArmStats(1000, 5000.0, 90000.0),
                          stats.ArmStats(1010, 5600.0, 99000.0))
    assert by["rev"]["absolute_ci"] == pytest.approx(list(m.absolute_ci), abs=1e-12)
    assert out["counts"] == [1000, 1010]
    assert out["srm"]["all"]["p_value"] == pytest.approx(
        stats.srm_check([1000, 1010], [0.5, 0.5]).p_value)


# ----- quasi-experiments -------------------------------------------------------------------------
def _did_data(effect: float, seed: int = 3) -> tuple:
    """Weekly purchase counts: treated users buy `effect` more per week after day 56."""
    rng = np.random.default_rng(seed)
    events = []
    for u in range(400):
        treated = u < 200
        events.append((f"u{u:03d}", "signup", 0.0, 0, None))
        for week in range(16):
            rate = 1.0 + 0.3 * treated + (effect if treated and week >= 8 else 0.0)
            for _ in range(rng.poisson(rate)):
                events.append((f"u{u:03d}", "buy", week * 7 + rng.uniform(0, 6.99), 0, None))
    ue = make(events)
    treated = np.array([int(uid[1:]) < 200 for uid in ue.user_ids])
    return ue, treated


def test_period_panel_matches_a_loop_and_did_matches_statsmodels() -> None:
    ue, treated = _did_data(effect=0.5)
    metric = MetricSpec.from_dict({"kind": "count", "event": "buy", "window_days": 7})
    launch = int(pd.Timestamp(T0 + timedelta(days=56)).value // 1000)
    panel = period_panel(ue, treated=treated, control=~treated, metric=metric, launch_us=launch,
                         period_days=7, pre_periods=8, post_periods=8)
    assert len(panel) == 400 * 16
    # Loop check of a few cells.
    for _, row in panel.sample(25, random_state=1).iterrows():
        u = ue.user_ids.tolist().index(row["unit"])
        lo, hi = launch + row["period"] * 7 * DAY, launch + (row["period"] + 1) * 7 * DAY
        n = sum(1 for i in range(ue.starts[u], ue.starts[u + 1])
                if ue.event_names[ue.event[i]] == "buy" and lo <= ue.time[i] < hi)
        assert row["y"] == n
    out = analyze_did(ue, treated=treated, control=~treated, metric=metric, launch_us=launch,
                      period_days=7, pre_periods=8, post_periods=8)
    fit = smf.ols("y ~ treated + post + treated:post", data=panel).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(panel["unit"])[0]})
    assert out["estimate"] == pytest.approx(fit.params["treated:post"], abs=1e-9)
    assert out["se"] == pytest.approx(fit.bse["treated:post"], rel=1e-9)
    assert out["ci"][0] <= 0.5 <= out["ci"][1]
    assert out["pre_trend_p"] is not None and out["pre_trend_p"] > 0.01
    assert out["units"] == {"treated": 200, "control": 200}


def test_overlapping_groups_are_rejected() -> None:
    ue, treated = _did_data(effect=0.0)
    metric = MetricSpec.from_dict({"kind": "count", "event": "buy", "window_days": 7})
    with pytest.raises(ExperimentDataError, match="overlap"):
        period_panel(ue, treated=treated, control=np.ones_like(treated), metric=metric,
                     launch_us=int(pd.Timestamp(T0 + timedelta(days=56)).value // 1000))


def test_ratio_metric_uses_the_delta_method_on_per_user_pairs() -> None:
    truth, ue = demo()
    x = truth["experiment"]
    a = assignment_from_events(ue, event=x["assignment_event"], arms=x["arms"],
                               experiment_id=x["experiment_id"])
    spec = MetricSpec.from_dict({"kind": "ratio", "window_days": 30,
                                 "numerator": {"kind": "revenue"},
                                 "denominator": {"kind": "count", "event": "session_start"}})
    assert spec.name == "revenue per count:session_start"
    row = analyze_randomized(ue, a, [spec], [Scope("all", "All")],
                             RandomizedSettings(weights=[0.5, 0.5]))["rows"][0]
    # Independently: per-user sums by a loop over the events of the assigned users.
    sums = {}
    start = dict(zip(a.user.tolist(), a.time.tolist(), strict=True))
    for u, t0 in start.items():
        rev = ses = 0.0
        for i in range(ue.starts[u], ue.starts[u + 1]):
            if t0 <= ue.time[i] < t0 + 30 * DAY:
                rev += ue.revenue[i]
                ses += ue.event_names[ue.event[i]] == "session_start"
        sums[u] = (rev, ses)
    arms = dict(zip(a.user.tolist(), a.arm.tolist(), strict=True))
    pairs = [np.array([sums[u] for u in sums if arms[u] == k]) for k in (0, 1)]
    expected = stats.ratio_effect(stats.RatioArmStats.from_values(pairs[0][:, 0], pairs[0][:, 1]),
                                  stats.RatioArmStats.from_values(pairs[1][:, 0], pairs[1][:, 1]))
    assert row["method"] == "ratio_delta"
    assert row["control_mean"] == pytest.approx(pairs[0][:, 0].sum() / pairs[0][:, 1].sum())
    assert row["absolute"] == pytest.approx(expected.absolute, rel=1e-12)
    assert row["absolute_ci"] == pytest.approx(list(expected.absolute_ci), rel=1e-12)
    with pytest.raises(ExperimentDataError, match="numerator"):
        MetricSpec.from_dict({"kind": "ratio", "denominator": {"kind": "count", "event": "x"}})
    with pytest.raises(ExperimentDataError, match="ratio metric"):
        analyze_summaries([], ["control", "b"], [spec], RandomizedSettings(weights=[0.5, 0.5]))
