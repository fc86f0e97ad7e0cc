"""The two-pass fan-out refresh (``segments.analytics.partials``): equal to the single-process
refresh where exact, Poisson-bootstrap intervals within 2%, the same result for 1, 8 and 64
partitions, and parts whose size does not grow with users. Pure: no database."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from events.demo import generate_demo, write_demo
from events.frame import build_user_events
from events.ingest import ImportOptions, merge_into_store, parse_events, parse_users
from events.store import EventStore
from segments.analytics import clv as clv_core
from segments.analytics import partials as P
from segments.analytics.fanout import refresh_split
from segments.analytics.refresh import SegmentSpec, run_refresh
from segments.analytics.rfm import quantile_scores
from segments.analytics.value import mean_interval

COLUMNS = ["user_id", "event", "timestamp", "revenue", "cost", "properties"]
SPECS = [
    SegmentSpec("plan-team", "rule", {"attribute": "plan", "op": "eq", "value": "team"}),
    SegmentSpec("early-reports", "rule", {"event": "report_created", "min_count": 3,
                                          "window": {"from_signup_days": [0, 14]}}),
    SegmentSpec("invited", "rule", {"event": "invite_sent", "min_count": 1}),
    SegmentSpec("champions", "rfm", {"rfm": "Champions"}),
    SegmentSpec("bad-rfm", "rfm", {"rfm": "No such segment"}),
    SegmentSpec("nobody", "rule", {"attribute": "plan", "op": "eq", "value": "none"}),
]
RULES = [s for s in SPECS if s.kind != "rfm"]


def _store(tmp: Path, users: int, partitions: int) -> tuple[EventStore, str]:
    paths = write_demo(generate_demo(users=users, seed=7), tmp)
    store = EventStore(tmp / "store", partitions=partitions)
    options = ImportOptions(now=datetime(2030, 1, 1, tzinfo=UTC))
    merge_into_store(store, "demo", import_id="1",
                     events=parse_events(Path(paths["events"]), options),
                     users=parse_users(Path(paths["users"]), options), report={})
    return store, "demo"


def _frames(store: EventStore, key: str):
    users = store.read_users(key)
    parts = [build_user_events([f], users, with_properties=True)
             for f in store.iter_partitions(key, columns=COLUMNS)]
    whole = build_user_events(store.iter_partitions(key, columns=COLUMNS), users,
                              with_properties=True)
    return whole, parts


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[int, tuple]:
    out = {}
    for n in (1, 8, 64):
        store, key = _store(tmp_path_factory.mktemp(f"partials{n}"), 5000, n)
        out[n] = _frames(store, key)
    return out


def _fan_out(parts, specs, as_of: int, split: int, outcome: str | None = "upgrade"):
    """Both passes, each partial through its bytes, as the fan-out job runs them."""
    broadcast = P.stats_reduce(
        (P.partial_from_bytes(P.partial_bytes(P.stats_map(p, as_of=as_of))) for p in parts),
        any_rfm=any(s.kind == "rfm" for s in specs))
    mapped = [P.segments_map(p, specs, as_of=as_of, split=split, broadcast=broadcast, part=i,
                             partitions=len(parts), outcome_event=outcome)
              for i, p in enumerate(parts)]
    result = P.segments_reduce(
        (P.partial_from_bytes(P.partial_bytes(partial)) for partial, _ in mapped), specs,
        as_of=as_of, split=split, broadcast=broadcast)
    members = {s.key: np.concatenate([m[s.key] for _, m in mapped if s.key in m])
               for s in specs if any(s.key in m for _, m in mapped)}
    return result, members, broadcast


def _walk(a, b, path=""):
    """Yield (path, got, expected) for every leaf of two nested dicts / lists."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            yield from _walk(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _walk(x, y, f"{path}[{i}]")
    else:
        yield path, a, b


def _is_boot_bound(path: str, tree: dict) -> bool:
    """Whether ``path`` is the low/high of a signal whose interval is a bootstrap (or a lift
    whose baseline interval is one: its delta-method interval reads the baseline's width)."""
    if not path.endswith(("/low", "/high")):
        return False
    if "/lift_vs_baseline_ltv_90/" in path:
        return True
    node = tree
    for step in path.strip("/").split("/")[:-1]:
        node = node[step]
    return node.get("method") == "bootstrap"


def _compare(got: dict, expected: dict, *, boot_rtol: float) -> list[float]:
    """Exact leaves equal (floats to rounding); bootstrap bounds within ``boot_rtol``.
    Returns the relative differences of the bootstrap bounds."""
    rel = []
    for path, x, y in _walk(got, expected):
        if _is_boot_bound(path, expected) and x is not None and y is not None:
            rel.append(abs(x - y) / abs(y) if y else abs(x))
            assert rel[-1] <= boot_rtol, (path, x, y)
        elif isinstance(y, float) and isinstance(x, float):
            assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12), (path, x, y)
        elif path.endswith("/warning") and x != y and "interval too wide" in f"{x}{y}":
            continue  # a bootstrap interval's width decides this warning
        else:
            assert x == y, (path, x, y)
    return rel


def test_rule_segments_equal_the_single_process_refresh_and_intervals_within_2pct(stores):
    whole, parts = stores[8]
    as_of = int(whole.time.max()) + 1
    split = refresh_split(as_of, int(whole.time.min()))
    expected = run_refresh(whole, RULES, as_of=as_of, outcome_event="upgrade")
    got, members, broadcast = _fan_out(parts, RULES, as_of, split)
    # Both fit the CLV models from the same distinct rows and counts (the single process
    # builds them from all users, the merge from the partitions' rows): the same fit, so the
    # same predictions, to rounding.
    for model in ("bgnbd", "gamma_gamma"):
        assert got.clv_fit[model] == pytest.approx(expected.clv_fit[model], rel=1e-12)
    assert broadcast["users"] == whole.n_users and broadcast["events"] == whole.n_events
    rel = []
    for x, y in zip(got.segments, expected.segments, strict=True):
        assert (x.key, x.size, x.share, x.error) == (y.key, y.size, y.share, y.error)
        assert sorted(members.get(x.key, [])) == sorted(y.members)
        clv_x, clv_y = x.signals.pop("predicted_clv"), y.signals.pop("predicted_clv")
        if clv_y["estimate"] is not None:
            assert clv_x["estimate"] == pytest.approx(clv_y["estimate"], rel=1e-9)
            assert clv_x["n"] == clv_y["n"]
        rel += _compare(x.signals, y.signals, boot_rtol=0.02)
        rel += _compare(x.holdout, y.holdout, boot_rtol=0.02)
        assert repr(x.retention) == repr(y.retention), x.key
    got.baseline.pop("predicted_clv"), expected.baseline.pop("predicted_clv")
    rel += _compare(got.baseline, expected.baseline, boot_rtol=0.02)
    assert len(rel) > 20 and max(rel) > 0  # bootstraps were compared, and they do differ


def test_one_eight_and_sixty_four_partitions_give_the_same_result(stores):
    results = {}
    for n, (whole, parts) in stores.items():
        as_of = int(whole.time.max()) + 1
        split = refresh_split(as_of, int(whole.time.min()))
        assert len(parts) == n
        results[n] = _fan_out(parts, SPECS, as_of, split)
    one, _, b1 = results[1]
    for n in (8, 64):
        got, members, bn = results[n]
        assert bn["rfm"] == b1["rfm"] and bn["sizes"] == b1["sizes"]
        for k in ("r", "alpha", "a", "b"):
            assert got.clv_fit["bgnbd"][k] == pytest.approx(one.clv_fit["bgnbd"][k], rel=1e-6)
        for x, y in zip(got.segments, one.segments, strict=True):
            assert (x.key, x.size, x.share, x.error) == (y.key, y.size, y.share, y.error)
            assert sorted(members.get(x.key, [])) == sorted(results[1][1].get(y.key, []))
            # Two independent Poisson bootstraps (the draws are seeded per partition): each is
            # within 2% of the single process above, so within 3% of each other here.
            _compare(x.signals, y.signals, boot_rtol=0.03)
            _compare(x.holdout, y.holdout, boot_rtol=0.03)
            assert repr(x.retention) == repr(y.retention)
        _compare(got.baseline, one.baseline, boot_rtol=0.03)
    sizes = {s.key: s.size for s in one.segments}
    assert sizes["champions"] > 0 and sizes["plan-team"] > 0 and sizes["nobody"] == 0
    assert "unknown RFM segment" in {s.key: s.error for s in one.segments}["bad-rfm"]


def test_segment_partials_have_the_same_size_for_1k_and_10k_users(tmp_path):
    sizes = {}
    first = {}
    for users in (1000, 10_000):
        store, key = _store(tmp_path / str(users), users, 4)
        whole, parts = _frames(store, key)
        as_of = int(whole.time.max()) + 1
        split = refresh_split(as_of, int(whole.time.min()))
        stats = [P.stats_map(p, as_of=as_of) for p in parts]
        broadcast = P.stats_reduce(stats)
        partial, _ = P.segments_map(parts[0], SPECS, as_of=as_of, split=split,
                                    broadcast=broadcast, part=0, outcome_event="upgrade")
        sizes[users] = len(P.partial_bytes(partial))
        first[users] = stats[0]
        # Pass 1 is bounded by the data's span and value range, not by its users.
        span_days = (as_of - int(whole.time.min())) // 86_400_000_000 + 1
        assert len(stats[0]["rfm_r_v"]) <= span_days
    assert sizes[1000] == sizes[10_000]
    assert first[10_000]["users"][0] > 5 * first[1000]["users"][0]


def test_weighted_clv_fits_reach_the_optimum_of_the_per_user_likelihood():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 4, 300).astype(float)
    T = rng.integers(5, 30, 300).astype(float)
    tx = np.where(x > 0, np.minimum(T, rng.integers(1, 30, 300)), 0.0)
    (ux, utx, uT), n = clv_core.unique_rows([x, tx, T])
    assert n.sum() == 300 and len(n) < 300

    def ll(params):  # the per-user log-likelihood, summed over all 300 rows
        return clv_core.bgnbd_log_likelihood(params.r, params.alpha, params.a, params.b,
                                             x, tx, T).sum()

    full = clv_core.fit_bgnbd(x, tx, T)
    weighted = clv_core.fit_bgnbd(ux, utx, uT, weights=n)
    # This sample's optimum is flat in r and alpha (both drift together), so the parameters
    # may differ; the likelihood they reach may not.
    assert weighted.log_likelihood == pytest.approx(ll(weighted), rel=1e-9)
    assert ll(weighted) == pytest.approx(ll(full), rel=1e-7)
    m = rng.choice([5.0, 7.5, 12.0, 20.0], 300)
    (gx, gm), gn = clv_core.unique_rows([x[x > 0], m[x > 0]])

    def gg_ll(params):
        return clv_core.gamma_gamma_log_likelihood(params.p, params.q, params.v, x[x > 0],
                                                   m[x > 0]).sum()

    full_gg = clv_core.fit_gamma_gamma(x[x > 0], m[x > 0])
    weighted_gg = clv_core.fit_gamma_gamma(gx, gm, weights=gn)
    assert weighted_gg.n_customers == full_gg.n_customers == int((x > 0).sum())
    # at least as good an optimum (here the per-user fit stops a hair earlier: -675.2206)
    assert gg_ll(weighted_gg) >= gg_ll(full_gg) - 1e-7 * abs(gg_ll(full_gg))
    assert gg_ll(weighted_gg) == pytest.approx(gg_ll(full_gg), rel=1e-5)


def test_rfm_thresholds_from_histograms_give_the_rank_scores_without_boundary_ties():
    rng = np.random.default_rng(5)
    values = rng.permutation(np.arange(1, 1001)) * 3  # distinct: no tie at any boundary
    expected = quantile_scores(pd.Series(values.astype(float))).to_numpy()
    # Histograms of four "partitions", merged, then the thresholds.
    v, n = clv_core.unique_rows([values])
    thresholds = P._thresholds(v[0].astype(np.int64), n, 5)
    score = np.ones(len(values), np.int64)
    for value, share in thresholds:
        score += values > value
        assert share == 1.0  # no tie: the boundary value's only user is at or below
    assert (score == expected).all()
    assert np.bincount(score).tolist() == [0, 200, 200, 200, 200, 200]


def test_tied_users_at_a_boundary_are_split_by_hash_in_the_needed_share():
    values = np.r_[np.zeros(600, np.int64), np.arange(1, 401)]  # 600 tied at the bottom
    v, n = clv_core.unique_rows([values])
    thresholds = P._thresholds(v[0].astype(np.int64), n, 5)
    assert [t[0] for t in thresholds[:3]] == [0.0, 0.0, 0.0]
    assert [t[1] for t in thresholds[:3]] == pytest.approx([200 / 600, 400 / 600, 1.0])
    ids = np.array([f"user-{i:05d}" for i in range(len(values))], dtype=object)
    u = P.user_hash01(ids)
    assert ((u >= 0) & (u < 1)).all()
    assert (P.user_hash01(ids[::-1]) == u[::-1]).all()  # per user, whatever the order
    score = np.ones(len(values), np.int64)
    for value, share in thresholds:
        score += (values > value) | ((values == value) & (u >= share))
    counts = np.bincount(score, minlength=6)[1:]
    # The tied block fills bins 1-3 up to the hash's binomial noise (sd ~ 11 users here).
    assert abs(counts[0] - 200) < 45 and abs(counts[1] - 200) < 45
    assert counts[:3].sum() == 600 and counts[3] == 200 and counts[4] == 200


def test_mean_partials_give_the_t_interval_of_the_whole_sample_when_large():
    rng = np.random.default_rng(11)
    x = np.where(rng.random(40_000) < 0.3, rng.gamma(2.0, 30.0, 40_000), 0.0)
    acc: dict = {}
    for i, chunk in enumerate(np.array_split(x, 7)):
        part: dict = {}
        P._mean_partial(part, "g/m", chunk, P._rng(0, "m", "g", i), 1000)
        for key, value in part.items():
            acc[key] = value if key not in acc else acc[key] + value
    signal, se = P._mean_signal(acc, "g/m", "m", "unit", "empty", min_n=30, max_rel_width=0.5)
    estimate, low, high, method = mean_interval(x, None)
    assert method == "t" == signal.method
    assert signal.estimate == pytest.approx(estimate, rel=1e-12)
    assert signal.low == pytest.approx(low, rel=1e-10)
    assert signal.high == pytest.approx(high, rel=1e-10)
    assert se == pytest.approx(x.std(ddof=1) / math.sqrt(len(x)), rel=1e-10)


def test_poisson_bootstrap_of_a_small_sample_matches_the_resampling_bootstrap():
    rng = np.random.default_rng(2)
    x = np.where(rng.random(3000) < 0.2, rng.gamma(2.0, 25.0, 3000), 0.0)  # 600 nonzero
    acc: dict = {}
    for i, chunk in enumerate(np.array_split(x, 5)):
        part: dict = {}
        P._mean_partial(part, "g/m", chunk, P._rng(1, "m", "g", i), 4000)
        for key, value in part.items():
            acc[key] = value if key not in acc else acc[key] + value
    signal, _ = P._mean_signal(acc, "g/m", "m", "unit", "empty", min_n=30, max_rel_width=0.5)
    # The resampling bootstrap by brute force: 4,000 resamples of the whole sample.
    draws = np.random.default_rng(9).integers(0, len(x), size=(4000, len(x)))
    low, high = np.quantile(x[draws].mean(axis=1), [0.025, 0.975])
    assert signal.method == "bootstrap"
    assert signal.estimate == pytest.approx(x.mean(), rel=1e-12)
    assert signal.low == pytest.approx(low, rel=0.02)
    assert signal.high == pytest.approx(high, rel=0.02)


def test_segments_refreshed_two_at_a_time_equal_one_at_a_time_in_spec_order(stores, monkeypatch):
    whole, _ = stores[8]
    as_of = int(whole.time.max()) + 1
    results = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("SP_ANALYTIC_THREADS", threads)
        fresh = build_user_events([pd.DataFrame({
            "user_id": whole.user_ids[whole.user], "event": np.asarray(whole.event_names)[
                whole.event], "timestamp": pd.to_datetime(whole.time, unit="us", utc=True),
            "revenue": whole.revenue, "cost": whole.cost})], None)  # no shared caches
        fresh = type(whole)(**{**{f: getattr(fresh, f) for f in (
            "user_ids", "user", "time", "event", "event_names", "revenue", "cost", "starts",
            "has_cost")}, "signup": whole.signup, "attributes": whole.attributes})
        results[threads] = run_refresh(fresh, SPECS, as_of=as_of, outcome_event="upgrade")
    one, two = results["1"], results["2"]
    assert [s.key for s in two.segments] == [s.key for s in SPECS]
    assert [s.error is None for s in two.segments] == [True] * 4 + [False, True]
    for a, b in zip(one.segments, two.segments, strict=True):
        assert (a.key, a.size, a.signals, a.holdout, a.retention, a.error) == \
            (b.key, b.size, b.signals, b.holdout, b.retention, b.error)
        assert list(a.members) == list(b.members)
    assert one.baseline == two.baseline
