"""The A/B timeline (pure): exposures by arm counted by a loop, and the cumulative effect at a
date equal to the full analysis run on the data truncated to that date."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from events.frame import build_user_events
from experiments.data import (
    MetricSpec,
    RandomizedSettings,
    Scope,
    analyze_randomized,
    assignment_from_events,
)
from experiments.timeline import cutoffs, timeline

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
DAY = 86_400_000_000
ARMS = ["control", "treatment"]


@pytest.fixture(autouse=True)
def _event_store() -> None:  # pure: no Django fixtures needed
    return None


@pytest.fixture(autouse=True)
def _eager_tasks() -> None:
    return None


def events_frame(users: int = 600, seed: int = 3) -> pd.DataFrame:
    """Users assigned over 12 days; treatment buys more often; purchases carry revenue; some
    events before assignment (the CUPED pre-period)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        uid = f"u{u:04d}"
        arm = ARMS[int(rng.random() < 0.5)]
        start = T0 + timedelta(days=float(rng.uniform(0, 12)))
        rows.append((uid, "visit", start - timedelta(days=float(rng.uniform(1, 5))), 0.0, None))
        if rng.random() < 0.3:
            rows.append((uid, "buy", start - timedelta(hours=5), 9.0, None))
        rows.append((uid, "assigned", start, 0.0, {"experiment": "x", "arm": arm}))
        p = 0.25 if arm == "control" else 0.35
        for _ in range(int(rng.poisson(1.5))):
            if rng.random() < p:
                at = start + timedelta(days=float(rng.uniform(0, 9)))
                rows.append((uid, "buy", at, float(rng.gamma(2.0, 10.0)), None))
    return pd.DataFrame({
        "user_id": [r[0] for r in rows], "event": [r[1] for r in rows],
        "timestamp": pd.to_datetime([r[2] for r in rows], utc=True),
        "revenue": [r[3] for r in rows],
        "properties": pd.Series([None if r[4] is None else json.dumps(r[4]) for r in rows],
                                dtype=object)})


def frame_to_ue(frame: pd.DataFrame):  # type: ignore[no-untyped-def]
    return build_user_events([frame], None, with_properties=True)


CONVERSION = MetricSpec.from_dict({"name": "bought", "kind": "conversion", "event": "buy",
                                   "window_days": 7})
REVENUE = MetricSpec.from_dict({"name": "spend", "kind": "revenue", "window_days": 7})


def test_cutoffs_are_day_ends_then_weeks_for_long_tests() -> None:
    first = int(pd.Timestamp("2026-03-02 09:30", tz="UTC").value // 1000)
    day0 = int(pd.Timestamp("2026-03-02", tz="UTC").value // 1000)
    ends, unit = cutoffs(first, first + 2 * DAY)  # events through 2026-03-04 09:30
    assert unit == "day"
    assert ends == [day0 + DAY, day0 + 2 * DAY, day0 + 3 * DAY]
    ends, unit = cutoffs(first, first + 99 * DAY)  # 100 days: weekly, the last day closes it
    assert unit == "week"
    assert ends[:2] == [day0 + 7 * DAY, day0 + 14 * DAY]
    assert ends[-1] == day0 + 100 * DAY
    assert len(ends) == 15  # 14 whole weeks and the last two days


def test_exposures_by_arm_match_a_loop() -> None:
    frame = events_frame()
    ue = frame_to_ue(frame)
    a = assignment_from_events(ue, event="assigned", arms=ARMS, experiment_id="x")
    out = timeline(ue, a, CONVERSION, RandomizedSettings(weights=[0.5, 0.5]))
    exposures = frame[frame.event == "assigned"]
    for i, end_us in enumerate(out["ends_us"]):
        end = pd.Timestamp(end_us * 1000, tz="UTC")
        for arm in ARMS:
            count = 0
            for _, row in exposures.iterrows():
                if json.loads(row["properties"])["arm"] == arm and row["timestamp"] < end:
                    count += 1
            assert out["exposures"][arm][i] == count
    assert out["dates"][0] == "2026-03-02"
    assert out["exposures"]["control"][-1] + out["exposures"]["treatment"][-1] == 600


@pytest.mark.parametrize(("metric", "cuped"), [(CONVERSION, 0.0), (REVENUE, 0.0),
                                               (REVENUE, 7.0)])
def test_cumulative_effect_at_a_date_is_the_analysis_of_the_data_up_to_it(
        metric: MetricSpec, cuped: float) -> None:
    frame = events_frame()
    ue = frame_to_ue(frame)
    settings = RandomizedSettings(weights=[0.5, 0.5], cuped_pre_days=cuped)
    a = assignment_from_events(ue, event="assigned", arms=ARMS, experiment_id="x")
    out = timeline(ue, a, metric, settings)
    points = out["effects"]["treatment"]
    assert len(points) == len(out["dates"])
    checked = 0
    for i in (3, 6, 9, len(points) - 1):
        end = pd.Timestamp(out["ends_us"][i] * 1000, tz="UTC")
        cut = frame[frame.timestamp < end].reset_index(drop=True)
        ue_cut = frame_to_ue(cut)
        a_cut = assignment_from_events(ue_cut, event="assigned", arms=ARMS, experiment_id="x")
        full = analyze_randomized(ue_cut, a_cut, [metric], [Scope("all", "All")], settings)
        row = full["rows"][0]
        p = points[i]
        assert p["date"] == str((end - pd.Timedelta(microseconds=1)).date())
        assert (p["n_control"], p["n_arm"]) == (row["n_control"], row["n_treatment"])
        assert p["relative"] == pytest.approx(row["relative"], rel=1e-12)
        assert p["relative_ci"] == pytest.approx(row["relative_ci"], rel=1e-12)
        assert p["absolute_ci"] == pytest.approx(row["absolute_ci"], rel=1e-12)
        assert p["p_value"] == pytest.approx(row["p_value"], rel=1e-9)
        checked += 1
    assert checked == 4
    # The last cut-off follows the last event: the last point is the final analysis.
    final = analyze_randomized(ue, a, [metric], [Scope("all", "All")], settings)["rows"][0]
    assert points[-1]["relative_ci"] == pytest.approx(final["relative_ci"], rel=1e-12)


def test_early_points_without_enough_users_say_so() -> None:
    frame = events_frame(users=40)
    ue = frame_to_ue(frame)
    a = assignment_from_events(ue, event="assigned", arms=ARMS, experiment_id="x")
    points = timeline(ue, a, CONVERSION, RandomizedSettings(weights=[0.5, 0.5]))[
        "effects"]["treatment"]
    thin = [p for p in points if min(p["n_control"], p["n_arm"]) < 2]
    assert thin  # 40 users over 12 days: the first day has fewer than 2 in an arm
    assert all(p["status"] == "insufficient_data" and p["relative"] is None for p in thin)
