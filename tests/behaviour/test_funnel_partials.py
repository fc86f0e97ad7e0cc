"""Funnel and discovery fan-out partials (``funnel_partials``, ``signals.DiscoveryPartial``):
1, 8 and 64 partitions give the single process's result (exactly; the quantiles through the
sketch within its stated 0.5%), and the parts do not grow with users. Pure: no database."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from behaviour.analytics import funnel_partials as FP
from behaviour.analytics import signals
from behaviour.analytics.fanout import analysis_map, analysis_reduce
from behaviour.services import compute
from events.demo import generate_demo, write_demo
from events.frame import US_PER_DAY, UserEvents, build_user_events
from events.ingest import ImportOptions, merge_into_store, parse_events, parse_users
from events.store import EventStore
from segments.analytics.partials import partial_bytes, partial_from_bytes
from segments.analytics.rules import evaluate_rule

COLUMNS = ["user_id", "event", "timestamp", "revenue", "cost", "properties"]
FUNNEL = {"steps": ["signup", "onboarding_completed", "report_created", "invite_sent",
                    "upgrade"], "window_days": 14.0, "mode": "ordered", "exclusions": [],
          "breakdown": "plan", "breakdown_segments": [], "segment": None}
DISCOVERY = {"outcome_event": "upgrade", "outcome_days": 60.0,
             "events": ["feature_used", "invite_sent", "onboarding_completed",
                        "report_created", "session_start"],
             "thresholds": [1, 2, 3, 5], "windows": [1.0, 3.0, 7.0, 14.0], "segment": None}
TEAM = {"attribute": "plan", "op": "eq", "value": "team"}


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> dict[int, tuple[UserEvents, list[UserEvents]]]:
    tmp = tmp_path_factory.mktemp("funnel-partials")
    paths = write_demo(generate_demo(users=3000, seed=11), tmp)
    options = ImportOptions(now=datetime(2030, 1, 1, tzinfo=UTC))
    out = {}
    for n in (1, 8, 64):
        store = EventStore(tmp / f"store{n}", partitions=n)
        merge_into_store(store, "demo", import_id="1",
                         events=parse_events(Path(paths["events"]), options),
                         users=parse_users(Path(paths["users"]), options), report={})
        users = store.read_users("demo")
        parts = [build_user_events([f], users, with_properties=True)
                 for f in store.iter_partitions("demo", columns=COLUMNS)]
        whole = build_user_events(store.iter_partitions("demo", columns=COLUMNS), users,
                                  with_properties=True)
        out[n] = (whole, parts)
    return out


def _fan_out(kind: str, params: dict, parts: list[UserEvents], as_of: int,
             segments: bool = True) -> dict:
    """Every part through its bytes, as the fan-out job runs them."""
    mapped = []
    for ue in parts:
        masks = [("team", evaluate_rule(TEAM, ue, as_of))] if segments else []
        mapped.append(partial_from_bytes(partial_bytes(
            analysis_map(kind, params, ue, as_of, None, masks))))
    return analysis_reduce(kind, params, iter(mapped), as_of, ["team"] if segments else [])


@pytest.mark.parametrize("params", [
    FUNNEL,
    {**FUNNEL, "mode": "strict", "exclusions": ["purchase"], "window_days": 30.0,
     "breakdown": "acquisition_channel"},
    {**FUNNEL, "mode": "any_order", "steps": ["report_created", "invite_sent"],
     "breakdown": ""},
], ids=["ordered", "strict", "any_order"])
def test_funnel_partials_equal_the_single_process_for_1_8_and_64_partitions(frames, params):
    whole = frames[1][0]
    as_of = int(whole.time.max()) + 1
    expected = compute("funnel", params, whole, as_of, None,
                       [("team", evaluate_rule(TEAM, whole, as_of))])
    assert expected["overall"]["entered"] > 100
    for n in (1, 8, 64):
        whole_n, parts = frames[n]
        assert len(parts) == n and sum(p.n_users for p in parts) == whole.n_users
        got = _fan_out("funnel", params, parts, as_of)
        assert repr(got) == repr(expected), n
    step = expected["overall"]["steps"][1]["time_to_convert"]
    assert step["n"] > 0 and step["quantile_relative_error"] == 0.0
    assert expected["over_time"] and expected["breakdown"][-1]["label"] == "segment: team"


def test_funnel_quantiles_through_the_sketch_are_within_half_a_percent(frames):
    """Above ``cap`` users a statistic's quantiles come from the merged log-bucket sketch:
    the same for any partitioning, within 0.5% of the exact ones; counts and means exact."""
    whole = frames[1][0]
    as_of = int(whole.time.max()) + 1
    from behaviour.analytics.fanout import _funnel_options

    options = _funnel_options(FUNNEL, as_of)
    exact = compute("funnel", {**FUNNEL, "breakdown": ""}, whole, as_of, None, [])
    results = []
    for n in (1, 8, 64):
        parts = [partial_from_bytes(partial_bytes(FP.funnel_partial(
            ue, FUNNEL["steps"], options, cap=20).to_arrays())) for ue in frames[n][1]]
        results.append(FP.funnel_from_partials(iter(parts), FUNNEL["steps"], options, cap=20))
    assert repr(results[0]) == repr(results[1]) == repr(results[2])
    got = results[0]
    checked = 0
    for s_exact, s_got in zip(exact["overall"]["steps"][1:], got["overall"]["steps"][1:],
                              strict=True):
        a, b = s_exact["time_to_convert"], s_got["time_to_convert"]
        assert s_exact["users"] == s_got["users"] and s_exact["dropped"] == s_got["dropped"]
        assert (a["n"], a["bins"], a["histogram_counts"]) == (b["n"], b["bins"],
                                                               b["histogram_counts"])
        assert b["mean_seconds"] == a["mean_seconds"]
        if a["n"] > 20:
            assert b["quantile_relative_error"] == FP.SKETCH_ALPHA
            for key in ("p25_seconds", "median_seconds", "p75_seconds", "p90_seconds",
                        "median_from_start_seconds"):
                assert b[key] == pytest.approx(a[key], rel=FP.SKETCH_ALPHA, abs=1e-9), key
                checked += 1
    assert checked >= 10


def test_the_sketch_quantile_error_is_bounded_on_planted_durations():
    rng = np.random.default_rng(5)
    us = np.r_[np.zeros(300, np.int64),
               np.round(rng.lognormal(12, 3, size=20_000)).astype(np.int64)]
    window = int(us.max())
    halves = [FP.Quantiles.of(us[:7000], window, 10), FP.Quantiles.of(us[7000:], window, 10)]
    merged = halves[0].merge(halves[1], window, 10)
    assert not merged.exact and merged.n == len(us)
    qs = [1, 5, 25, 50, 75, 90, 99]
    truth = np.percentile(us / 1e6, qs)
    got = merged.percentiles_seconds(qs)
    for t, g in zip(truth, got, strict=True):
        assert abs(g - t) <= FP.SKETCH_ALPHA * t + 1e-12
    assert FP.Quantiles.of(us, window, 10).percentiles_seconds(qs) == got
    # Exact below the cap: the same numbers as numpy.
    small = FP.Quantiles.of(us[:50], window, 100).merge(FP.Quantiles.of(us[50:90], window, 100),
                                                         window, 100)
    assert small.exact and small.percentiles_seconds(qs) == list(np.percentile(us[:90] / 1e6, qs))
    assert FP.total_us(np.array([2**62, 2**62, 5], np.int64)) == 2**63 + 5


def test_funnel_parts_do_not_grow_with_users(frames):
    whole = frames[1][0]
    as_of = int(whole.time.max()) + 1
    from behaviour.analytics.fanout import _funnel_options

    options = _funnel_options(FUNNEL, as_of)
    sizes = {}
    for n in (8, 1):
        ue = frames[n][1][0]
        arrays = FP.funnel_partial(ue, FUNNEL["steps"], options, cap=0).to_arrays()
        sizes[n] = {k: np.asarray(v).size for k, v in arrays.items()
                    if not k.startswith(("week", "g", "group"))}
    assert sizes[1] == sizes[8]  # 3,000 users and ~375: the same shapes
    # The largest arrays are the sketches: one count per bucket up to the 14-day window.
    assert max(sizes[1].values()) == FP.sketch_size(14 * US_PER_DAY)


# ----- discovery ---------------------------------------------------------------------------
def test_discovery_partials_equal_the_single_process_for_1_8_and_64_partitions(frames):
    whole = frames[1][0]
    as_of = int(whole.time.max()) + 1
    expected = compute("discovery", DISCOVERY, whole, as_of, None)
    assert expected["calibration_users"] > 0 and expected["holdout_users"] > 0
    for n in (1, 8, 64):
        assert repr(_fan_out("discovery", DISCOVERY, frames[n][1], as_of, False)) \
            == repr(expected), n
    # The holdout starts at a UTC midnight; the tables add up to the eligible users.
    assert expected["holdout_us"][0] % US_PER_DAY == 0
    top = expected["signals"][0]["calibration"]
    assert top["a"] + top["b"] + top["c"] + top["d"] == expected["calibration_users"]


def _tiny(signup_days: list[float], upgrade: list[bool], reports: list[int]) -> UserEvents:
    import pandas as pd

    rows = []
    for u, (day, up, k) in enumerate(zip(signup_days, upgrade, reports, strict=True)):
        t = int(day * US_PER_DAY)
        rows.append((f"u{u:02d}", "signup", t))
        rows += [(f"u{u:02d}", "report", t + 3600 * 10**6 * (i + 1)) for i in range(k)]
        if up:
            rows.append((f"u{u:02d}", "upgrade", t + 2 * US_PER_DAY))
    frame = pd.DataFrame(rows, columns=["user_id", "event", "timestamp"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="us", utc=True)
    frame["revenue"] = np.nan
    frame["cost"] = np.nan
    return build_user_events([frame])


def test_discovery_split_by_day_and_tables_by_hand():
    # 9 users: days 0.1, 0.5, 1.2, 1.9, 2.3, 3.0, 3.5, 4.2, 4.8. 2n//3 = 6: the 7th signup
    # (day 3.5) is on day 3, so calibration = days 0-2 (5 users), holdout = days 3-4 (4).
    days = [0.1, 0.5, 1.2, 1.9, 2.3, 3.0, 3.5, 4.2, 4.8]
    upgrade = [True, False, True, False, False, True, True, False, True]
    reports = [2, 0, 3, 1, 0, 2, 2, 0, 1]
    ue = _tiny(days, upgrade, reports)
    as_of = int(40 * US_PER_DAY)
    outcome = signals.Outcome(kind="event", event="upgrade", days=10)
    cand = [signals.Candidate("report", 2, 1.0)]
    res = signals.discover(ue, as_of_us=as_of, outcome=outcome, candidates=cand)
    assert res.calibration_users == 5 and res.holdout_users == 4
    assert res.holdout_us[0] == 3 * US_PER_DAY
    cal = res.signals[0].calibration  # exposed = 2+ reports: u0 (up), u2 (up); others not
    assert (cal.exposed_outcome, cal.exposed_no_outcome, cal.unexposed_outcome,
            cal.unexposed_no_outcome) == (2, 0, 0, 3)
    # Split in two partitions (users 0-3, 4-8): the same result through the partials.
    parts = [signals.discovery_partial(sub, as_of_us=as_of, outcome=outcome, candidates=cand)
             for sub in (_tiny(days[:4], upgrade[:4], reports[:4]),
                         _tiny(days[4:], upgrade[4:], reports[4:]))]
    merged = signals.discover_from_partials(parts, as_of_us=as_of, outcome=outcome,
                                            candidates=cand)
    assert repr(merged.to_dict()) == repr(res.to_dict())
    # Every signup on the first day but one: the holdout starts the next day.
    first = signals.discover(_tiny([0.1, 0.2, 0.3, 0.4, 1.5], [True] * 5, [1] * 5),
                             as_of_us=as_of, outcome=outcome, candidates=cand)
    assert (first.calibration_users, first.holdout_users) == (4, 1)
    assert not math.isnan(first.signals[0].calibration.p_value)
