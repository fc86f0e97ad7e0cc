"""Benchmark: refresh 20 segments with all value signals on one shared per-user feature table.

Requirement: refresh 20 segments (mixed attribute and behavioural rules) with all value signals
on 10M events / 1M users. Report seconds, peak memory and the ratio to the same computation
written as DuckDB SQL in the same run. Target: at least 3x faster than DuckDB (ratio <= 0.33)
and peak memory under 2.5 GB; the per-user feature table is computed once per refresh and shared
by all segments.

    .venv/bin/python bench/bench_refresh.py              # full scale (1M users, ~11M events)
    BENCH_SCALE=small .venv/bin/python bench/bench_refresh.py
    .venv/bin/python bench/bench_refresh.py --profile    # also cProfile of ours (to stderr)
    .venv/bin/python bench/bench_refresh.py --run-refresh   # also the whole run_refresh

Data: ``events.demo.generate_demo(users)`` (full 1M users, medium 200k, small 50k; ~11 events
per user), generated once per scale into ``bench/data/refresh-<scale>/`` as ``events.parquet``
(user_id, event, timestamp UTC, revenue, properties; sorted by user then time, like a store
partition; 8 row groups, read as one frame each like the store's 8 partitions) and
``users.parquet`` (signup_time as a UTC timestamp, like the store's users file). ``as_of`` =
last event + 1 µs, as the refresh job sets it.

Phases (each in its own fresh process, see bench/common.py):

* ``ours``: the data published once as an ``EventStore`` (``<folder>/store/``, 8 user-hash
  partitions, the store's current layout: integer user codes and a user dictionary), loaded the
  way the refresh job loads it (``events.loading.read_frame``; properties on first use; timed apart
  as ``load_seconds``), then what ``run_refresh`` does for the value signals: ``user_features``
  once, the all-users baseline, and per segment ``evaluate_rule`` + ``segment_signals`` (with
  the product's percentile-bootstrap intervals; baseline passed in for the lifts). The
  headline ``seconds`` is that compute, without the load.
* ``ours_analytic``: the same code with the bootstrap switched off
  (``value.BOOTSTRAP_MAX_NONZERO = -1``: every mean gets its Student t interval), the fair
  like-for-like against SQL, which has no bootstrap.
* ``anchor``: DuckDB: load the same Parquet files into tables (timed apart as
  ``anchor_load_seconds``), then one GROUP BY over events joined to users for the per-user
  features and every rule's per-user statistic (COUNT/SUM ... FILTER windows), a predicate per
  segment, and per segment the same means and proportions with analytic 95% intervals (Wilson;
  mean +- 1.96 sd/sqrt(n); delta method for the lifts), all in SQL.
* ``refresh`` (``--run-refresh``): the whole ``run_refresh`` (also predictive CLV, holdout
  check at a calibration as_of, monthly retention curves), reported apart, not in the ratio.

Rules: 10 attribute-only (eq/in/ne, numeric gte, datetime gte, all/any/not) and 10 with
behaviour (event counts in from_signup_days / last_days windows, a glob, max_count, revenue
sums with gt/gte/between, last_seen, and a distinct count of the ``feature`` JSON property; the
property rule costs ~1 s of ours at full scale, so it stays in).

``peak_mb`` is the whole ``ours`` process, load included; ``load_peak_mb`` and
``compute_peak_mb`` split it (VmHWM is reset after the load through /proc/self/clear_refs).

Checks (after timing): segment sizes must be identical (exit 1 otherwise) and every point
estimate is compared (``max_rel_diff``, must be <= 1e-9: only float summation order differs).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `segments` and `bench`

from bench import common as bc  # noqa: E402

SCRIPT = Path(__file__).resolve()
BENCH = "refresh_20_segments"
TARGET = "ratio <= 0.33 and peak_mb < 2560"
MAX_RATIO = 0.33
MAX_PEAK_MB = 2560
ANCHOR = "duckdb SQL (same signals, analytic CIs)"
USERS = {"small": 50_000, "medium": 200_000, "full": 1_000_000}
SEED = 7
DATA_VERSION = 2  # bump when the data layout changes, to invalidate cached files
OUTCOME = "upgrade"
STORE_PARTITIONS = 8  # EventStore's default: the refresh job reads one frame per partition
PERIOD_DAYS = 30
HORIZONS = (30, 90, 365)
RETENTION_DAYS = (1, 7, 30)
MIN_N = 30
DAY = 86_400_000_000  # µs
Z95 = 1.959963984540054
MEASURED_CODE = ("segments/analytics/value.py", "segments/analytics/holdout.py",
                 "segments/analytics/retention.py",
                 *sorted(p.relative_to(bc.ROOT).as_posix()
                         for p in (bc.ROOT / "segments" / "analytics" / "rules").glob("*.py")),
                 "events/frame.py", "events/store.py", "segments/analytics/refresh.py")
# Signals both sides compute (ours also has intervals by bootstrap / t, the anchor analytic).
SIGNALS = ("size", "share", "revenue_per_active_user",
           *(f"ltv_{h}" for h in HORIZONS), *(f"retention_d{d}" for d in RETENTION_DAYS),
           "conversion", "lift_vs_baseline_ltv_90", "lift_vs_baseline_conversion")
REL_TOLERANCE = 1e-9  # point estimates: only float summation order may differ


def _iso_us(text: str) -> int:
    """µs since the epoch of an ISO date/datetime (no offset = UTC), as the rules read it."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


RECENT_SIGNUP = "2026-08-01"


# ----- the 20 segments: (key, rule JSON for ours, the same as a SQL predicate for the anchor) --
# Predicates read the anchor's per-user table: attributes (plan, device, country, company_size,
# acquisition_channel, signup in µs) and the statistics in RULE_STATS. A rule's "not" includes
# users whose attribute is missing, hence NOT coalesce(..., false).
def _attr(name: str, op: str, value: Any = None) -> dict[str, Any]:
    node: dict[str, Any] = {"attribute": name, "op": op}
    if value is not None:
        node["value"] = value
    return node


SEGMENTS: list[tuple[str, dict[str, Any], str]] = [
    # attribute rules
    ("pro_plan", _attr("plan", "eq", "pro"), "plan = 'pro'"),
    ("paid_plans", _attr("plan", "in", ["pro", "team"]), "plan IN ('pro', 'team')"),
    ("ios_north_america",
     {"all": [_attr("device", "eq", "ios"), _attr("country", "in", ["US", "CA"])]},
     "device = 'ios' AND country IN ('US', 'CA')"),
    ("paid_channel_not_free",
     {"all": [_attr("acquisition_channel", "eq", "paid"), {"not": _attr("plan", "eq", "free")}]},
     "acquisition_channel = 'paid' AND NOT coalesce(plan = 'free', false)"),
    ("emerging_markets",
     {"any": [_attr("country", "eq", "IN"), _attr("country", "eq", "BR")]},
     "country = 'IN' OR country = 'BR'"),
    ("web_non_organic",
     {"all": [_attr("device", "eq", "web"), _attr("acquisition_channel", "ne", "organic")]},
     "device = 'web' AND acquisition_channel <> 'organic'"),
    ("big_team_companies",
     {"all": [_attr("plan", "eq", "team"), _attr("company_size", "gte", 100)]},
     "plan = 'team' AND company_size >= 100"),
    ("europe_not_android",
     {"all": [_attr("country", "in", ["GB", "DE", "FR", "NL"]),
              {"not": _attr("device", "eq", "android")}]},
     "country IN ('GB', 'DE', 'FR', 'NL') AND NOT coalesce(device = 'android', false)"),
    ("recent_signups", _attr("signup_time", "gte", RECENT_SIGNUP),
     f"signup >= {_iso_us(RECENT_SIGNUP)}"),
    ("channel_mix",
     {"any": [{"all": [_attr("acquisition_channel", "eq", "partner"),
                       _attr("plan", "ne", "free")]},
              {"all": [_attr("acquisition_channel", "eq", "referral"),
                       _attr("device", "eq", "ios")]}]},
     "(acquisition_channel = 'partner' AND plan <> 'free') "
     "OR (acquisition_channel = 'referral' AND device = 'ios')"),
    # behavioural rules (some combined with attributes)
    ("early_reporters",
     {"event": "report_created", "min_count": 2, "window": {"from_signup_days": [0, 7]}},
     "reports_first7 >= 2"),
    ("engaged_last_30",
     {"event": "session_start", "min_count": 5, "window": {"last_days": 30}},
     "sessions_last30 >= 5"),
    ("payers_last_90", {"revenue": {"op": "gt", "value": 0}, "window": {"last_days": 90}},
     "revenue_last90 > 0"),
    ("high_value", {"revenue": {"op": "gte", "value": 300}}, "revenue_all >= 300"),
    ("feature_heavy_first_month",
     {"event": "feature_*", "min_count": 10, "window": {"from_signup_days": [0, 30]}},
     "features_first30 >= 10"),
    ("free_inviters",
     {"all": [_attr("plan", "eq", "free"), {"event": "invite_sent"}]},
     "plan = 'free' AND invites_all >= 1"),
    ("fast_upgrade_or_spender",
     {"any": [{"event": "upgrade", "window": {"from_signup_days": [0, 14]}},
              {"revenue": {"op": "between", "value": [50, 500]}, "window": {"last_days": 180}}]},
     "upgrades_first14 >= 1 OR revenue_last180 BETWEEN 50 AND 500"),
    ("dormant_pro",
     {"all": [_attr("plan", "eq", "pro"),
              {"not": {"event": "session_start", "window": {"last_days": 30}}}]},
     "plan = 'pro' AND NOT (sessions_last30 >= 1)"),
    ("feature_explorers",
     {"distinct": {"event": "feature_used", "property": "feature"}, "min": 3,
      "window": {"last_days": 90}},
     "distinct_features_last90 >= 3"),
    ("light_onboarded_web",
     {"all": [_attr("device", "eq", "web"),
              {"event": "onboarding_completed", "window": {"from_signup_days": [0, 7]}},
              {"event": "session_start", "min_count": 1, "max_count": 3,
               "window": {"from_signup_days": [0, 30]}},
              {"last_seen": {"op": "within_days", "value": 60}}]},
     "device = 'web' AND onboarded_first7 >= 1 AND sessions_first30 BETWEEN 1 AND 3 "
     "AND last_before >= {as_of} - 60 * {day}"),
]
ATTRIBUTE_SEGMENTS = 10  # the first ten use attributes only; the rest use behaviour

# Per-user statistics the predicates use: events before as_of (t < as_of), as the rules count.
RULE_STATS = {
    "reports_first7": "count(*) FILTER (WHERE t < {as_of} AND event = 'report_created' "
                      "AND since >= 0 AND since < 7 * {day})",
    "sessions_last30": "count(*) FILTER (WHERE t < {as_of} AND event = 'session_start' "
                       "AND t >= {as_of} - 30 * {day})",
    "revenue_last90": "coalesce(sum(rev) FILTER (WHERE t < {as_of} AND t >= {as_of} - 90 * {day}"
                      "), 0)",
    "revenue_all": "coalesce(sum(rev) FILTER (WHERE t < {as_of}), 0)",
    "features_first30": "count(*) FILTER (WHERE t < {as_of} AND event GLOB 'feature_*' "
                        "AND since >= 0 AND since < 30 * {day})",
    "invites_all": "count(*) FILTER (WHERE t < {as_of} AND event = 'invite_sent')",
    "upgrades_first14": "count(*) FILTER (WHERE t < {as_of} AND event = 'upgrade' "
                        "AND since >= 0 AND since < 14 * {day})",
    "revenue_last180": "coalesce(sum(rev) FILTER (WHERE t < {as_of} "
                       "AND t >= {as_of} - 180 * {day}), 0)",
    "onboarded_first7": "count(*) FILTER (WHERE t < {as_of} AND event = 'onboarding_completed' "
                        "AND since >= 0 AND since < 7 * {day})",
    "sessions_first30": "count(*) FILTER (WHERE t < {as_of} AND event = 'session_start' "
                        "AND since >= 0 AND since < 30 * {day})",
    "last_before": "max(t) FILTER (WHERE t < {as_of})",
}
# Distinct counts get their own GROUP BY over only the events they read (a DISTINCT aggregate
# inside the big GROUP BY costs DuckDB more); joined to the per-user table, missing = 0.
DISTINCT_STATS = {
    "distinct_features_last90": ("count(DISTINCT json_extract_string(properties, '$.feature'))",
                                 "t < {as_of} AND event = 'feature_used' "
                                 "AND t >= {as_of} - 90 * {day}"),
}


def data_dir(scale: str) -> Path:
    return bc.DATA_DIR / f"refresh-{scale}"


# ----- phase: generate -----------------------------------------------------------------------
def phase_generate(args: list[str]) -> dict[str, Any]:
    """generate_demo -> events.parquet (sorted by user, time) + users.parquet + meta.json."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from events.demo import generate_demo

    out, users = Path(args[0]), int(args[1])
    started = time.perf_counter()
    demo = generate_demo(users=users, seed=SEED)
    ev, us = demo.events, demo.users
    del demo

    def stamps(column: Any) -> pa.Array:
        parsed = pc.strptime(pa.array(column, pa.string()), format="%Y-%m-%dT%H:%M:%SZ",
                             unit="us")
        return parsed.cast(pa.timestamp("us", tz="UTC"))

    events = pa.table({
        "user_id": pa.array(ev["user_id"], pa.string()),
        "event": pc.dictionary_encode(pa.array(ev["event"], pa.string())),
        "timestamp": stamps(ev["timestamp"]),
        "revenue": pa.array(ev["revenue"], pa.float64(), from_pandas=True),
        "properties": pa.array(ev["properties"], pa.string(), from_pandas=True),
    })
    del ev
    events = events.take(pc.sort_indices(events, [("user_id", "ascending"),
                                                  ("timestamp", "ascending")]))
    users_table = pa.table({
        "user_id": pa.array(us["user_id"], pa.string()),
        "signup_time": stamps(us["signup_time"]),
        **{c: pa.array(us[c]) for c in ("plan", "device", "country", "company_size",
                                        "acquisition_channel")},
    })
    if users_table["signup_time"].null_count:
        raise SystemExit("every demo user must have a signup_time (the SQL anchor relies on it)")
    out.mkdir(parents=True, exist_ok=True)
    # One row group per store partition's worth of rows: the loader reads a frame per row group.
    pq.write_table(events, out / "events.parquet", compression="zstd",
                   row_group_size=-(-events.num_rows // STORE_PARTITIONS))
    pq.write_table(users_table, out / "users.parquet", compression="zstd")
    last = pc.max(events["timestamp"]).value  # µs since the epoch
    meta = {
        "users": users_table.num_rows,
        "users_with_events": len(pc.unique(events["user_id"])),
        "events": events.num_rows,
        "as_of": int(last) + 1,  # what the refresh job uses: last event + 1 µs
        "seed": SEED,
        "version": DATA_VERSION,
        "events_mb": round((out / "events.parquet").stat().st_size / 1e6, 1),
        "generate_seconds": round(time.perf_counter() - started, 2),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return {"seconds": time.perf_counter() - started, **meta}


STORE_KEY = "bench"  # the dataset key of the events in ``<folder>/store/``


def phase_store(args: list[str]) -> dict[str, Any]:
    """events.parquet + users.parquet -> an ``EventStore`` (8 user-hash partitions, the
    store's current layout) in ``<folder>/store/``, published by the product's own code."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from events.store import EventStore, partition_of

    folder = Path(args[0])
    started = time.perf_counter()
    events = pq.read_table(folder / "events.parquet")
    if "cost" not in events.column_names:
        events = events.append_column("cost", pa.nulls(events.num_rows, pa.float64()))
    ids = events.column("user_id").combine_chunks()
    distinct = pc.unique(ids)
    part_of = partition_of(distinct.to_numpy(zero_copy_only=False), STORE_PARTITIONS)
    part = part_of[pc.index_in(ids, value_set=distinct).to_numpy()]
    parts = {p: events.filter(pa.array(part == p)) for p in range(STORE_PARTITIONS)}
    del events, ids
    store = EventStore(folder / "store", partitions=STORE_PARTITIONS)
    version = store.publish(STORE_KEY, parts, pq.read_table(folder / "users.parquet"),
                            {"bench": True})
    return {"seconds": time.perf_counter() - started, "version": version.number,
            "layout": version.manifest.get("layout")}


def ensure_store(folder: Path) -> None:
    """The data as a published store of the current layout (made once per data version)."""
    from events.store import LAYOUT

    marker = folder / "store" / f"layout-{LAYOUT}-data-{DATA_VERSION}"
    if marker.exists():
        return
    import shutil

    shutil.rmtree(folder / "store", ignore_errors=True)
    bc.log(f"publishing {folder.name} as an event store (layout {LAYOUT})")
    result = bc.run_phase(SCRIPT, "store", str(folder))
    bc.log(f"published in {result['seconds']:.1f}s (peak {result['peak_mb']:.0f} MB)")
    marker.write_text("")


def ensure_data(scale: str) -> tuple[Path, dict[str, Any]]:
    folder = data_dir(scale)
    meta_path = folder / "meta.json"
    if meta_path.exists() and (folder / "events.parquet").exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("version") == DATA_VERSION and meta.get("users") == USERS[scale]:
            bc.log(f"using cached {folder.relative_to(bc.DATA_DIR.parent)} "
                f"({meta['events']:,} events, {meta['users']:,} users)")
            ensure_store(folder)
            return folder, meta
    bc.log(f"generating the demo data ({USERS[scale]:,} users) -> {folder}")
    result = bc.run_phase(SCRIPT, "generate", str(folder), str(USERS[scale]))
    bc.log(f"generated {result['events']:,} events in {result['seconds']:.1f}s "
        f"(peak {result['peak_mb']:.0f} MB)")
    ensure_store(folder)
    return folder, json.loads(meta_path.read_text())


# ----- phase: ours ---------------------------------------------------------------------------
def _load(folder: Path, with_properties: bool = False) -> Any:
    """The store -> UserEvents the way the refresh job loads it (``events.loading.read_frame``,
    which ``events.services.read_user_events`` calls): the user dictionary, every partition's
    integer columns placed by ``build_user_events_coded`` while the users file is read beside
    them; the properties on first use, or at once ``with_properties``."""
    from events.loading import read_frame
    from events.store import EventStore

    store = EventStore(folder / "store", partitions=STORE_PARTITIONS)
    version = store.current(STORE_KEY)
    data = read_frame(store, version, STORE_KEY)
    if with_properties:
        _ = data.properties
    return data


def _reset_hwm() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux ``clear_refs``); False if not."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def _signal_values(signals: dict[str, Any]) -> dict[str, list[Any]]:
    return {name: [s.estimate, s.low, s.high, s.n, s.method]
            for name, s in signals.items() if name in SIGNALS}


def _ours(folder: Path, as_of: int, analytic: bool) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from events.threads import analytic_threads, map_in_threads
    from segments.analytics import value
    from segments.analytics.rules import evaluate_rule
    from segments.analytics.value import segment_signals, user_features

    if analytic:  # every mean gets its t interval; proportions stay Wilson
        value.BOOTSTRAP_MAX_NONZERO = -1
    with bc.Stopwatch() as load:
        data = _load(folder)
    load_peak, after_load = bc.proc_status_mb("VmHWM"), bc.current_rss_mb()
    hwm_reset = _reset_hwm()  # so VmHWM below is the compute's own peak
    if int(data.time.max()) + 1 != as_of:
        raise SystemExit(f"as_of mismatch: data ends at {int(data.time.max())}, meta {as_of}")
    seg_seconds: dict[str, float] = {}
    mask_seconds = signal_seconds = 0.0
    results: dict[str, Any] = {}
    timed: dict[str, float] = {}

    def features_timed() -> Any:
        t0 = time.perf_counter()
        out = user_features(data, as_of, period_days=PERIOD_DAYS, outcome=OUTCOME)
        timed["features"] = time.perf_counter() - t0
        return out

    def mask_timed(rule: Any) -> tuple[Any, float]:
        t0 = time.perf_counter()
        return np.packbits(evaluate_rule(rule, data, as_of)), time.perf_counter() - t0

    with bc.Stopwatch() as work:
        # As run_refresh does (segments.analytics.refresh): the features on one thread while
        # the other evaluates the rules (masks kept a bit per user), then the segments' signals
        # two at a time as their masks are ready.
        with ThreadPoolExecutor(max_workers=analytic_threads()) as pool:
            feature_task = pool.submit(features_timed)
            mask_tasks = [pool.submit(mask_timed, rule) for _key, rule, _sql in SEGMENTS]
            features = feature_task.result()
            with bc.Stopwatch() as base:
                everyone = np.ones(data.n_users, dtype=bool)
                baseline = segment_signals(everyone, features, period_days=PERIOD_DAYS,
                                           seed=0, min_n=MIN_N)

            def one(item: tuple[tuple[str, Any, str], Any]) -> tuple[str, Any, float, float]:
                (key, _rule, _sql), task = item
                bits, mask_s = task.result()
                mask = np.unpackbits(bits, count=data.n_users).view(bool)
                t1 = time.perf_counter()
                signals = segment_signals(mask, features, baseline=baseline,
                                          period_days=PERIOD_DAYS, seed=0, min_n=MIN_N)
                return key, signals, mask_s, time.perf_counter() - t1

            with bc.Stopwatch() as segs:
                done = map_in_threads(one, zip(SEGMENTS, mask_tasks, strict=True))
        for key, signals, mask_s, signal_s in done:
            mask_seconds += mask_s  # summed over both threads: more than their wall time
            signal_seconds += signal_s
            seg_seconds[key] = mask_s + signal_s
            results[key] = signals
    peak = bc.peak_rss_mb()
    compute_peak = bc.proc_status_mb("VmHWM") if hwm_reset else None
    methods: dict[str, int] = {}
    for signals in results.values():
        for s in signals.values():
            methods[s.method] = methods.get(s.method, 0) + 1
    if hwm_reset:  # the reset also cleared ru_maxrss: the process peak is the larger of the two
        peak = max(peak, load_peak or 0.0)
    return {
        "seconds": work.seconds,
        "cpu_seconds": work.cpu_seconds,
        "peak_mb": round(peak, 1),
        "vm_hwm_mb": round(peak, 1),
        "load_seconds": load.seconds,
        "load_cpu_seconds": load.cpu_seconds,
        "load_peak_mb": round(load_peak, 1) if load_peak else None,
        "rss_after_load_mb": round(after_load, 1),
        "compute_peak_mb": round(compute_peak, 1) if compute_peak else None,
        "features_seconds": timed["features"],
        "baseline_seconds": base.seconds,
        "masks_seconds": mask_seconds,
        "signals_seconds": signal_seconds,
        "segments_seconds": segs.seconds,
        "segment_seconds": seg_seconds,
        "users": data.n_users,
        "events": data.n_events,
        "feature_columns": features.shape[1],
        "methods": methods,
        "signals": {"__all__": _signal_values(baseline),
                    **{k: _signal_values(v) for k, v in results.items()}},
    }


def phase_ours(args: list[str]) -> dict[str, Any]:
    return _ours(Path(args[0]), int(args[1]), analytic=False)


def phase_ours_analytic(args: list[str]) -> dict[str, Any]:
    return _ours(Path(args[0]), int(args[1]), analytic=True)


# ----- phase: anchor (DuckDB SQL) ------------------------------------------------------------
def anchor_sql(as_of: int) -> tuple[str, str]:
    """(feature table statement, per-segment signals query) for DuckDB."""
    fmt = {"as_of": as_of, "day": DAY}
    period = f"t <= {as_of} AND t > {as_of} - {PERIOD_DAYS} * {DAY}"
    feats = [
        f"coalesce(sum(rev) FILTER (WHERE {period}), 0) AS revenue_period",
        f"count(*) FILTER (WHERE {period}) > 0 AS active_period",
        *(f"coalesce(sum(rev) FILTER (WHERE t <= {as_of} AND since < {h} * {DAY}), 0) AS ltv_{h}"
          for h in HORIZONS),
        *(f"count(*) FILTER (WHERE t <= {as_of} AND since >= {d} * {DAY} "
          f"AND since < {d + 1} * {DAY}) > 0 AS retained_d{d}" for d in RETENTION_DAYS),
        f"count(*) FILTER (WHERE t <= {as_of} AND event = '{OUTCOME}') > 0 AS converted",
        *(f"{expr.format(**fmt)} AS {name}" for name, expr in RULE_STATS.items()),
    ]
    feat_list = ",\n        ".join(feats)
    distinct_ctes = "".join(
        f""", {name} AS (
    SELECT user_id, {expr} AS {name} FROM ev WHERE {where.format(**fmt)} GROUP BY user_id
)""" for name, (expr, where) in DISTINCT_STATS.items())
    distinct_cols = "".join(f", coalesce({name}.{name}, 0) AS {name}" for name in DISTINCT_STATS)
    distinct_joins = "".join(f" LEFT JOIN {name} USING (user_id)" for name in DISTINCT_STATS)
    features = f"""
CREATE TEMP TABLE feat AS
WITH e AS (
    SELECT ev.user_id, ev.event, ev.t, ev.rev, ev.t - u.signup AS since
    FROM ev JOIN users u USING (user_id)
), agg AS (
    SELECT user_id,
        {feat_list}
    FROM e GROUP BY user_id
){distinct_ctes}
SELECT agg.*{distinct_cols},
    u.signup, u.plan, u.device, u.country, u.company_size, u.acquisition_channel
FROM agg JOIN users u USING (user_id){distinct_joins}"""

    def mean_cols(name: str, value: str, where: str) -> list[str]:
        return [f"count(*) FILTER (WHERE {where}) AS n_{name}",
                f"avg({value}) FILTER (WHERE {where}) AS m_{name}",
                f"stddev_samp({value}) FILTER (WHERE {where}) AS sd_{name}"]

    aggs = ["count(*) AS size",
            *mean_cols("rpau", "revenue_period", "active_period"),
            *(c for h in HORIZONS
              for c in mean_cols(f"ltv_{h}", f"ltv_{h}", f"signup <= {as_of} - {h} * {DAY}")),
            *(c for d in RETENTION_DAYS
              for c in (f"count(*) FILTER (WHERE signup <= {as_of} - {d + 1} * {DAY}) AS n_ret_{d}",
                        f"count(*) FILTER (WHERE signup <= {as_of} - {d + 1} * {DAY} "
                        f"AND retained_d{d}) AS k_ret_{d}")),
            "count(*) FILTER (WHERE converted) AS k_conv"]
    agg_list = ", ".join(aggs)
    branches = [f"SELECT '__all__' AS seg, {agg_list} FROM feat"]
    for key, _rule, predicate in SEGMENTS:
        branches.append(f"SELECT '{key}' AS seg, {agg_list} FROM feat "
                        f"WHERE {predicate.format(**fmt)}")
    union = "\nUNION ALL\n".join(branches)

    def mean_signal(name: str, col: str) -> list[str]:
        half = f"{Z95} * s.sd_{col} / sqrt(s.n_{col})"
        return [f"s.m_{col} AS {name}", f"s.m_{col} - {half} AS {name}__low",
                f"s.m_{col} + {half} AS {name}__high", f"s.n_{col} AS {name}__n"]

    def wilson(name: str, k: str, n: str) -> list[str]:
        return [f"CASE WHEN {n} > 0 THEN {k} / {n} END AS {name}",
                f"wilson_low({k}, {n}) AS {name}__low", f"wilson_high({k}, {n}) AS {name}__high",
                f"{n} AS {name}__n"]

    def lift(name: str, s: str, se_s: str, b: str, se_b: str, n: str) -> list[str]:
        se_log = f"sqrt(({se_s} / ({s})) ^ 2 + ({se_b} / ({b})) ^ 2)"
        return [f"({s}) / nullif({b}, 0) AS {name}",
                f"({s}) / nullif({b}, 0) * exp(-{Z95} * {se_log}) AS {name}__low",
                f"({s}) / nullif({b}, 0) * exp({Z95} * {se_log}) AS {name}__high",
                f"{n} AS {name}__n"]

    conv_s, conv_b = "s.k_conv / s.size", "b.k_conv / b.size"
    outs = [
        "s.seg", "s.size AS size", "s.size AS size__n",
        *wilson("share", "s.size", "b.size"),
        *mean_signal("revenue_per_active_user", "rpau"),
        *(c for h in HORIZONS for c in mean_signal(f"ltv_{h}", f"ltv_{h}")),
        *(c for d in RETENTION_DAYS for c in wilson(f"retention_d{d}", f"s.k_ret_{d}",
                                                   f"s.n_ret_{d}")),
        *wilson("conversion", "s.k_conv", "s.size"),
        *lift("lift_vs_baseline_ltv_90", "s.m_ltv_90", "s.sd_ltv_90 / sqrt(s.n_ltv_90)",
              "b.m_ltv_90", "b.sd_ltv_90 / sqrt(b.n_ltv_90)", "s.n_ltv_90"),
        *lift("lift_vs_baseline_conversion", conv_s, f"sqrt({conv_s} * (1 - {conv_s}) / s.size)",
              conv_b, f"sqrt({conv_b} * (1 - {conv_b}) / b.size)", "s.size"),
    ]
    signals = (f"WITH s AS (\n{union}\n), b AS (SELECT * FROM s WHERE seg = '__all__')\n"
               f"SELECT {', '.join(outs)} FROM s, b")
    return features, signals


WILSON_MACROS = f"""
CREATE OR REPLACE TEMP MACRO wilson_low(k, n) AS CASE WHEN n > 0 THEN
    (k / n + {Z95} ^ 2 / (2 * n)
     - {Z95} * sqrt(k / n * (1 - k / n) / n + {Z95} ^ 2 / (4 * n * n))) / (1 + {Z95} ^ 2 / n) END;
CREATE OR REPLACE TEMP MACRO wilson_high(k, n) AS CASE WHEN n > 0 THEN
    (k / n + {Z95} ^ 2 / (2 * n)
     + {Z95} * sqrt(k / n * (1 - k / n) / n + {Z95} ^ 2 / (4 * n * n))) / (1 + {Z95} ^ 2 / n) END;
"""


def phase_anchor(args: list[str]) -> dict[str, Any]:
    import duckdb

    folder, as_of = Path(args[0]), int(args[1])
    features_sql, signals_sql = anchor_sql(as_of)
    con = duckdb.connect()  # in memory; default threads (all cores)
    con.execute(WILSON_MACROS)
    with bc.Stopwatch() as load:
        con.execute(f"""CREATE TABLE ev AS SELECT user_id, event::VARCHAR AS event,
            epoch_us(timestamp) AS t, coalesce(revenue, 0.0) AS rev, properties
            FROM read_parquet('{folder / 'events.parquet'}')""")
        con.execute(f"""CREATE TABLE users AS SELECT user_id, epoch_us(signup_time) AS signup,
            plan, device, country, company_size, acquisition_channel
            FROM read_parquet('{folder / 'users.parquet'}')""")
    with bc.Stopwatch() as work:
        with bc.Stopwatch() as feat:
            con.execute(features_sql)
        with bc.Stopwatch() as sig:
            cursor = con.execute(signals_sql)
            rows = cursor.fetchall()
            names = [d[0] for d in cursor.description]
    peak = bc.peak_rss_mb()
    signals: dict[str, Any] = {}
    for row in rows:
        record = dict(zip(names, row, strict=True))
        signals[record["seg"]] = {
            name: [_num(record[name]), _num(record.get(f"{name}__low")),
                   _num(record.get(f"{name}__high")), record[f"{name}__n"], "analytic"]
            for name in SIGNALS}
    users, events = con.execute("SELECT (SELECT count(*) FROM feat), "
                                "(SELECT count(*) FROM ev)").fetchone()
    return {
        "seconds": work.seconds,
        "cpu_seconds": work.cpu_seconds,
        "peak_mb": round(peak, 1),
        "load_seconds": load.seconds,
        "load_cpu_seconds": load.cpu_seconds,
        "features_seconds": feat.seconds,
        "signals_seconds": sig.seconds,
        "threads": con.execute("SELECT current_setting('threads')").fetchone()[0],
        "duckdb": duckdb.__version__,
        "users": users,
        "events": events,
        "signals": signals,
    }


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# ----- phase: the whole run_refresh (informative, not in the ratio) -------------------------
def phase_refresh(args: list[str]) -> dict[str, Any]:
    from segments.analytics.refresh import SegmentSpec, run_refresh

    folder, as_of = Path(args[0]), int(args[1])
    with bc.Stopwatch() as load:
        data = _load(folder)
    specs = [SegmentSpec(key=key, kind="rule", definition=rule) for key, rule, _ in SEGMENTS]
    with bc.Stopwatch() as work:
        result = run_refresh(data, specs, as_of=as_of, outcome_event=OUTCOME)
    return {"seconds": work.seconds, "cpu_seconds": work.cpu_seconds,
            "peak_mb": round(bc.peak_rss_mb(), 1), "load_seconds": load.seconds,
            "errors": {s.key: s.error for s in result.segments if s.error},
            "sizes": {s.key: s.size for s in result.segments}}


# ----- phase: profile ------------------------------------------------------------------------
def phase_profile(args: list[str]) -> dict[str, Any]:
    """cProfile of ours (bootstrap, the headline path); top functions to stderr."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    result = _ours(Path(args[0]), int(args[1]), analytic=False)
    profiler.disable()
    for sort in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(sort).print_stats(30)
        print(out.getvalue(), file=sys.stderr, flush=True)
    result.pop("signals")
    return result


# ----- comparison (parent process: stdlib only) ----------------------------------------------
def compare(ours: dict[str, Any], anchor: dict[str, Any]) -> dict[str, Any]:
    """Sizes must match exactly; point estimates up to float summation order."""
    size_diffs = {}
    max_rel, worst, mismatches = 0.0, None, []
    for seg, theirs in anchor.items():
        mine = ours.get(seg)
        if mine is None:
            size_diffs[seg] = ("missing", theirs["size"][0])
            continue
        if int(mine["size"][0]) != int(theirs["size"][0]):
            size_diffs[seg] = (mine["size"][0], theirs["size"][0])
        for name in SIGNALS:
            a, b = mine[name][0], theirs[name][0]
            if a is None or b is None:
                if (a is None) != (b is None):
                    mismatches.append(f"{seg}.{name}: ours {a}, anchor {b}")
                continue
            rel = abs(a - b) / max(abs(b), 1e-300) if a != b else 0.0
            if rel > max_rel:
                max_rel, worst = rel, f"{seg}.{name}"
    return {"sizes_match": not size_diffs, "size_diffs": size_diffs, "max_rel_diff": max_rel,
            "worst": worst, "none_mismatches": mismatches}


def ci_diff(ours: dict[str, Any], anchor: dict[str, Any]) -> dict[str, float]:
    """Largest difference of interval ends, relative to the anchor's half-width: Wilson
    intervals (the same formula: should be ~0) and means (ours t, the anchor z = 1.96)."""
    out = {"wilson": 0.0, "mean": 0.0}
    for seg, theirs in anchor.items():
        for name in SIGNALS:
            mine = ours[seg][name]
            kind = {"wilson": "wilson", "t": "mean"}.get(mine[4])
            _, low, high = theirs[name][:3]
            if kind is None or low is None or high is None or high <= low:
                continue
            half = (high - low) / 2
            for a, b in ((mine[1], low), (mine[2], high)):
                if a is not None:
                    out[kind] = max(out[kind], abs(a - b) / half)
    return out


# ----- orchestration (parent process: stdlib only) -------------------------------------------
def main() -> None:
    scale = bc.current_scale()
    argv = sys.argv[1:]
    profile = "--profile" in argv or os.environ.get("BENCH_PROFILE") == "1"
    full_refresh = "--run-refresh" in argv or os.environ.get("BENCH_RUN_REFRESH") == "1"
    code = bc.fingerprint(*MEASURED_CODE)
    folder, meta = ensure_data(scale.name)
    args = (str(folder), str(meta["as_of"]))
    bc.log(f"anchor: {ANCHOR}")
    bc.log(f"ours: build_user_events, user_features once, {len(SEGMENTS)} x (evaluate_rule + "
        "segment_signals); bootstrap (the product) and analytic-only")
    load_before = os.getloadavg()[0]
    measured = bc.measure_interleaved(SCRIPT, {"anchor": args, "ours": args, "ours_analytic": args},
                                   repeat=scale.repeat)
    anchor, ours, analytic = measured["anchor"], measured["ours"], measured["ours_analytic"]
    bc.log(f"anchor: load {anchor['load_seconds']:.2f}s, features {anchor['features_seconds']:.2f}s, "
        f"signals {anchor['signals_seconds']:.2f}s, peak {anchor['peak_mb']:.0f} MB")
    bc.log(f"ours: load {ours['load_seconds']:.2f}s, features {ours['features_seconds']:.2f}s, "
        f"baseline {ours['baseline_seconds']:.2f}s, masks {ours['masks_seconds']:.2f}s, "
        f"signals {ours['signals_seconds']:.2f}s (thread time; segments wall {ours['segments_seconds']:.2f}s), peak {ours['peak_mb']:.0f} MB")
    bc.log(f"ours: peak during load {ours['load_peak_mb']} MB, RSS after load "
        f"{ours['rss_after_load_mb']} MB, peak during compute {ours['compute_peak_mb']} MB")
    bc.log(f"ours (analytic): {analytic['seconds']:.2f}s (signals {analytic['signals_seconds']:.2f}s)")
    slowest = sorted(ours["segment_seconds"].items(), key=lambda kv: -kv[1])[:5]
    bc.log("slowest segments (ours): " + ", ".join(f"{k} {v:.2f}s" for k, v in slowest))

    check = compare(ours["signals"], anchor["signals"])
    check_analytic = compare(analytic["signals"], anchor["signals"])
    cis = ci_diff(analytic["signals"], anchor["signals"])
    sizes = {seg: v["size"][0] for seg, v in anchor["signals"].items()}
    bc.log("segment sizes: " + ", ".join(f"{k} {int(v):,}" for k, v in sizes.items()))
    if not check["sizes_match"] or not check_analytic["sizes_match"]:
        bc.log(f"SEGMENT SIZES DIFFER (ours, anchor): {check['size_diffs']}")
    if check["none_mismatches"]:
        bc.log(f"estimates known on one side only: {check['none_mismatches']}")
    bc.log(f"max relative difference of point estimates: {check['max_rel_diff']:.2e} "
        f"({check['worst']}); interval ends vs analytic ours: Wilson {cis['wilson']:.2e}, "
        f"means (t vs z) {cis['mean']:.2e}")
    correct = (check["sizes_match"] and check_analytic["sizes_match"]
               and not check["none_mismatches"] and check["max_rel_diff"] <= REL_TOLERANCE
               and check_analytic["max_rel_diff"] <= REL_TOLERANCE
               and ours["users"] == anchor["users"] and ours["events"] == anchor["events"])

    extra: dict[str, Any] = {}
    if full_refresh:
        bc.log("run_refresh: the whole refresh (CLV fit, holdout, retention curves) for reference")
        whole = bc.run_phase(SCRIPT, "refresh", *args)
        extra.update(run_refresh_seconds=round(whole["seconds"], 3),
                     run_refresh_peak_mb=whole["peak_mb"],
                     run_refresh_sizes_match=all(int(whole["sizes"][k]) == int(sizes[k])
                                                 for k in whole["sizes"]),
                     run_refresh_errors=whole["errors"])
        bc.log(f"run_refresh: {whole['seconds']:.2f}s, peak {whole['peak_mb']:.0f} MB")
    if profile:
        bc.log("profile: ours under cProfile")
        prof = bc.run_phase(SCRIPT, "profile", *args)
        extra["profile_seconds"] = round(prof["seconds"], 3)
    if bc.fingerprint(*MEASURED_CODE) != code:
        extra["code_changed_during_run"] = True
        bc.log("warning: measured source files changed during the run")

    ratio = ours["seconds"] / anchor["seconds"]
    passed = correct and ratio <= MAX_RATIO and ours["peak_mb"] < MAX_PEAK_MB
    n_seg = len(SEGMENTS)
    bc.emit_vs_anchor(
        BENCH, ours, anchor, anchor_name=ANCHOR, target=TARGET, passed=passed, scale=scale,
        code=code, load_before=load_before,
        users=ours["users"],
        events=ours["events"],
        segments=n_seg,
        attribute_segments=ATTRIBUTE_SEGMENTS,
        behavioural_segments=n_seg - ATTRIBUTE_SEGMENTS,
        intervals="ours: bootstrap (n_boot=1000; t when > 5k nonzero) + Wilson + delta; "
                  "anchor: analytic (mean +- 1.96 sd/sqrt(n), Wilson, delta)",
        load_seconds=round(ours["load_seconds"], 3),
        features_seconds=round(ours["features_seconds"], 3),
        baseline_seconds=round(ours["baseline_seconds"], 3),
        masks_seconds=round(ours["masks_seconds"], 3),
        signals_seconds=round(ours["signals_seconds"], 3),
        segments_seconds=round(ours["segments_seconds"], 3),
        per_segment_seconds=round((ours["masks_seconds"] + ours["signals_seconds"]) / n_seg, 4),
        total_seconds=round(ours["load_seconds"] + ours["seconds"], 3),
        load_peak_mb=ours["load_peak_mb"],
        rss_after_load_mb=ours["rss_after_load_mb"],
        compute_peak_mb=ours["compute_peak_mb"],
        slowest_segments={k: round(v, 3) for k, v in slowest},
        signal_methods=ours["methods"],
        analytic_seconds=round(analytic["seconds"], 3),
        analytic_ratio=round(analytic["seconds"] / anchor["seconds"], 3),
        analytic_signals_seconds=round(analytic["signals_seconds"], 3),
        analytic_peak_mb=analytic["peak_mb"],
        analytic_cpu_seconds=round(analytic["cpu_seconds"], 2),
        analytic_cpu_ratio=round(analytic["cpu_seconds"] / anchor["cpu_seconds"], 3),
        anchor_load_seconds=round(anchor["load_seconds"], 3),
        anchor_features_seconds=round(anchor["features_seconds"], 3),
        anchor_signals_seconds=round(anchor["signals_seconds"], 3),
        anchor_total_seconds=round(anchor["load_seconds"] + anchor["seconds"], 3),
        total_ratio=round((ours["load_seconds"] + ours["seconds"])
                          / (anchor["load_seconds"] + anchor["seconds"]), 3),
        anchor_threads=anchor["threads"],
        duckdb=anchor["duckdb"],
        cpu_seconds=round(ours["cpu_seconds"], 2),
        anchor_cpu_seconds=round(anchor["cpu_seconds"], 2),
        cpu_ratio=round(ours["cpu_seconds"] / anchor["cpu_seconds"], 3),
        sizes_match=check["sizes_match"] and check_analytic["sizes_match"],
        max_rel_diff=float(f"{max(check['max_rel_diff'], check_analytic['max_rel_diff']):.3g}"),
        ci_max_rel_diff_wilson=float(f"{cis['wilson']:.3g}"),
        ci_max_rel_diff_mean_t_vs_z=float(f"{cis['mean']:.3g}"),
        correct=correct,
        analytic_seconds_runs=analytic["all_seconds"],
        **extra,
    )
    if not correct:
        bc.log("WRONG RESULT: see the differences above")
        sys.exit(1)


if __name__ == "__main__":
    if not bc.phase_main({"generate": phase_generate, "store": phase_store, "ours": phase_ours,
                       "ours_analytic": phase_ours_analytic, "anchor": phase_anchor,
                       "refresh": phase_refresh, "profile": phase_profile}):
        main()
