"""Benchmark: import an events CSV into the event store (validated, de-duplicated, sorted).

Requirement: import 10M events (CSV, 1M users) into the store, validated, de-duplicated and
sorted by user and time. Report rows/s, peak memory and the ratio to pyarrow reading the same
CSV and writing Parquet with no other work, measured in the same run.
Target (issue 17 item 2): ratio <= 3.0 (moonshot 2.0) and peak memory under 2.5 GB.

    .venv/bin/python bench/bench_import.py              # full scale (10M rows / 1M users)
    BENCH_SCALE=small .venv/bin/python bench/bench_import.py
    .venv/bin/python bench/bench_import.py --profile    # also a per-step time/memory breakdown

Phases (each in its own fresh process, see bench/common.py): ``generate`` (once per scale,
cached in bench/data/), ``anchor``, ``ours`` and, with --profile, ``profile``.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `segments` and `bench`

from bench import common as bc  # noqa: E402

SCRIPT = Path(__file__).resolve()
# The measured source files (hashed before and after the run): the ingest package and the store.
MEASURED_SOURCES = [
    *sorted(p.relative_to(SCRIPT.parents[1]).as_posix()
            for p in (SCRIPT.parents[1] / "events" / "ingest").glob("*.py")),
    "events/store.py",
]
BENCH = "import"
TARGET = "ratio <= 3.0 and peak_mb < 2560"
MAX_RATIO = 3.0
MAX_PEAK_MB = 2560
ANCHOR = "pyarrow.csv.read_csv + pyarrow.parquet.write_table (defaults), same file"
PARTITIONS = 8
DATA_VERSION = 3  # bump when the generator changes, to invalidate cached files
SEED = 20260101
YEAR_START = "2025-01-01T00:00:00"  # timestamps fall in [YEAR_START, YEAR_START + 365 days)
NOW = "2026-01-02T00:00:00+00:00"  # ImportOptions.now: every generated timestamp is in the past
EVENT_NAMES = (
    "page_view", "screen_view", "session_start", "session_end", "search", "view_item",
    "add_to_cart", "remove_from_cart", "begin_checkout", "purchase", "signup", "login",
    "logout", "share", "invite_sent", "feature_used", "export_report", "upgrade_plan",
    "support_ticket", "notification_open",
)
REVENUE_SHARE = 0.03
DUPLICATE_SHARE = 0.01


def data_paths(rows: int, users: int) -> tuple[Path, Path]:
    stem = f"events-{rows}r-{users}u-s{SEED}-v{DATA_VERSION}"
    return bc.DATA_DIR / f"{stem}.csv", bc.DATA_DIR / f"{stem}.json"


# ----- phase: generate -----------------------------------------------------------------------
def phase_generate(args: list[str]) -> dict[str, Any]:
    """Write the input CSV (vectorized; ~1% exact duplicate rows planted, random row order)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv

    rows, users = int(args[0]), int(args[1])
    csv_path, meta_path = data_paths(rows, users)
    started = time.perf_counter()
    rng = np.random.default_rng(SEED)
    n_dup = int(rows * DUPLICATE_SHARE)
    n_unique = rows - n_dup
    if n_unique < users:
        raise SystemExit(f"{rows} rows cannot cover {users} users")
    year_seconds = 365 * 86_400
    n_events = len(EVENT_NAMES)

    # Draw a little more than needed, drop (user, event, second) collisions, keep n_unique.
    drawn = n_unique + max(1_000, n_unique // 500)
    user_idx = rng.integers(0, users, drawn, dtype=np.int64)
    user_idx[:users] = np.arange(users)  # every user has at least one event
    weights = 1.0 / np.arange(1, n_events + 1) ** 0.8  # a few common events, a long tail
    event_idx = rng.choice(n_events, drawn, p=weights / weights.sum()).astype(np.int64)
    seconds = rng.integers(0, year_seconds, drawn, dtype=np.int64)
    key = (user_idx * n_events + event_idx) * year_seconds + seconds
    _, first = np.unique(key, return_index=True)
    if len(first) < n_unique:
        raise SystemExit("too many (user, event, second) collisions; draw more rows")
    keep = np.sort(first)[:n_unique]  # lowest indices first: keeps the every-user prefix
    del key, first
    user_idx, event_idx, seconds = user_idx[keep], event_idx[keep], seconds[keep]
    has_revenue = rng.random(n_unique) < REVENUE_SHARE
    revenue = np.round(rng.gamma(2.0, 20.0, n_unique), 2)

    # Plant exact duplicates of distinct rows, then shuffle everything.
    dup_src = rng.choice(n_unique, n_dup, replace=False)
    order = np.concatenate([np.arange(n_unique), dup_src])[rng.permutation(rows)]

    # Strings without a Python loop over rows: take() from small tables of user names, dates
    # and times of day, then join date + "T" + time ("2025-06-22T17:07:58Z").
    user_names = pc.binary_join_element_wise(
        "u", pc.utf8_lpad(pc.cast(pa.array(np.arange(users)), pa.string()), 7, "0"), "")
    days = np.datetime_as_string(np.datetime64(YEAR_START, "D") + np.arange(365), unit="D")
    clock = np.datetime_as_string(np.datetime64("2000-01-01T00:00:00", "s")
                                  + np.arange(86_400), unit="s")
    clock = np.char.add(np.char.partition(clock, "T")[:, 2], "Z")
    seconds = seconds[order]
    stamps = pc.binary_join_element_wise(pc.take(pa.array(days), pa.array(seconds // 86_400)),
                                         pc.take(pa.array(clock), pa.array(seconds % 86_400)),
                                         "T")
    del seconds
    table = pa.table(
        {
            "user_id": pc.take(user_names, pa.array(user_idx[order])),
            "event": pc.take(pa.array(EVENT_NAMES, pa.string()), pa.array(event_idx[order])),
            "timestamp": stamps,
            "revenue": pa.array(revenue[order], pa.float64(), mask=~has_revenue[order]),
        }
    )
    bc.DATA_DIR.mkdir(parents=True, exist_ok=True)
    tmp = csv_path.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "wb") as handle:  # header unquoted, like most exports
        handle.write((",".join(table.column_names) + "\n").encode())
        pa_csv.write_csv(table, handle, write_options=pa_csv.WriteOptions(
            include_header=False, quoting_style="none"))
    os.replace(tmp, csv_path)
    meta = {
        "rows": rows,
        "users": users,
        "unique_rows": n_unique,
        "planted_duplicates": n_dup,
        "revenue_rows": int(has_revenue.sum()),
        "bytes": csv_path.stat().st_size,
        "seed": SEED,
        "version": DATA_VERSION,
        "generate_seconds": round(time.perf_counter() - started, 2),
    }
    meta_path.write_text(json.dumps(meta, indent=2))
    return {"seconds": time.perf_counter() - started, **meta}


def ensure_data(rows: int, users: int) -> tuple[Path, dict[str, Any]]:
    csv_path, meta_path = data_paths(rows, users)
    if csv_path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("bytes") == csv_path.stat().st_size:
            bc.log(f"using cached {csv_path.name} ({meta['bytes'] / 1e6:.0f} MB)")
            return csv_path, meta
    bc.log(f"generating {rows:,} rows / {users:,} users -> {csv_path}")
    result = bc.run_phase(SCRIPT, "generate", str(rows), str(users))
    bc.log(f"generated in {result['seconds']:.1f}s ({result['bytes'] / 1e6:.0f} MB, "
        f"peak {result['peak_mb']:.0f} MB)")
    return csv_path, json.loads(meta_path.read_text())


# ----- phase: anchor -------------------------------------------------------------------------
def phase_anchor(args: list[str]) -> dict[str, Any]:
    """The raw path: read the CSV with pyarrow and write it as Parquet; nothing else."""
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    csv_path = Path(args[0])
    with tempfile.TemporaryDirectory(prefix="bench-anchor-", dir=bc.DATA_DIR) as tmp:
        with bc.Stopwatch() as watch:
            table = pa_csv.read_csv(csv_path)
            pq.write_table(table, Path(tmp) / "events.parquet")
        peak = bc.peak_rss_mb()
        return {"seconds": watch.seconds, "cpu_seconds": watch.cpu_seconds,
                "peak_mb": round(peak, 1), "rows": table.num_rows}


# ----- phase: ours ---------------------------------------------------------------------------
def _import(csv_path: Path, store_root: Path) -> tuple[Any, Any, bc.Stopwatch]:
    from datetime import datetime

    from events.ingest import ImportOptions, merge_into_store, parse_events
    from events.store import EventStore

    store = EventStore(store_root, partitions=PARTITIONS)
    options = ImportOptions(now=datetime.fromisoformat(NOW))
    with bc.Stopwatch() as watch:
        parsed = parse_events(csv_path, options)
        result = merge_into_store(store, "bench", import_id="bench-import", events=parsed,
                                  users=None, report={})
    problems = dict(parsed.problems.counts)
    return store, {"merge": result, "problems": problems}, watch


def _verify(store: Any, outcome: dict[str, Any]) -> dict[str, Any]:
    """Cheap checks on what was published: row counts from Parquet metadata, one partition's order."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    version = store.current("bench")
    files = version.event_files()
    stored = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    table = pq.read_table(files[0], columns=["user_id", "timestamp"])
    users, stamps = table["user_id"], table["timestamp"]
    n = table.num_rows
    sorted_ok = n < 2 or pc.all(pc.or_(
        pc.less(users.slice(0, n - 1), users.slice(1)),
        pc.and_(pc.equal(users.slice(0, n - 1), users.slice(1)),
                pc.less_equal(stamps.slice(0, n - 1), stamps.slice(1))),
    )).as_py()
    merge = outcome["merge"]
    return {
        "stored_rows": stored,
        "partition_files": len(files),
        "duplicates_in_file": merge.duplicates_in_file,
        "total_users": merge.total_users,
        "problems": outcome["problems"],
        "partition0_sorted": sorted_ok,
    }


def phase_ours(args: list[str]) -> dict[str, Any]:
    csv_path = Path(args[0])
    with tempfile.TemporaryDirectory(prefix="bench-store-", dir=bc.DATA_DIR) as tmp:
        store, outcome, watch = _import(csv_path, Path(tmp))
        peak = bc.peak_rss_mb()  # before the checks below touch any memory
        return {"seconds": watch.seconds, "cpu_seconds": watch.cpu_seconds,
                "peak_mb": round(peak, 1), **_verify(store, outcome)}


# ----- phase: profile ------------------------------------------------------------------------
class StepProfiler:
    """Wall time and peak RSS per call path of selected functions (the real code runs).

    Functions are wrapped in place; time is recorded per call path (e.g. parse_events >
    parse_timestamps > pandas.to_datetime) so nested calls can be shown as a tree. A sampler
    thread records the highest RSS seen while each path was innermost.
    """

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.inclusive: dict[tuple[str, ...], float] = defaultdict(float)
        self.calls: dict[tuple[str, ...], int] = defaultdict(int)
        self.rss: dict[tuple[str, ...], float] = defaultdict(float)
        self._stop = threading.Event()
        self._restore: list[tuple[Any, str, Any]] = []

    def patch(self, owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name, None)
        if original is None:
            return  # the code changed; just measure what still exists
        profiler = self

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            profiler.stack.append(label)
            path = tuple(profiler.stack)
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                profiler.inclusive[path] += time.perf_counter() - started
                profiler.calls[path] += 1
                profiler.stack.pop()

        self._restore.append((owner, name, original))
        setattr(owner, name, timed)

    def unpatch(self) -> None:
        for owner, name, original in reversed(self._restore):
            setattr(owner, name, original)
        self._restore.clear()

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            path = tuple(self.stack) or ("(outside)",)
            rss = bc.current_rss_mb()
            if rss > self.rss[path]:
                self.rss[path] = rss

    def __enter__(self) -> StepProfiler:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.unpatch()

    def self_time(self, path: tuple[str, ...]) -> float:
        children = sum(t for p, t in self.inclusive.items()
                       if len(p) == len(path) + 1 and p[:-1] == path)
        return self.inclusive[path] - children

    def tree(self, total: float) -> list[str]:
        lines = [f"{'step (call path)':<64}{'calls':>7}{'incl s':>9}{'self s':>9}{'self %':>8}"
                 f"{'peak RSS MB':>13}"]
        for path in sorted(self.inclusive, key=self._order_key):
            label = "  " * (len(path) - 1) + path[-1]
            own = self.self_time(path)
            peak = max((v for p, v in self.rss.items() if p[:len(path)] == path), default=0.0)
            lines.append(f"{label:<64}{self.calls[path]:>7}{self.inclusive[path]:>9.2f}"
                         f"{own:>9.2f}{100 * own / total:>7.1f}%{peak:>13.0f}")
        return lines

    def _order_key(self, path: tuple[str, ...]) -> tuple[float, ...]:
        # Parents right before their children; siblings by time, largest first.
        return tuple(-self.inclusive[path[:i + 1]] for i in range(len(path)))


# Which requested step a call path belongs to: the innermost label found here decides; library
# calls (to_pandas, str.strip, loc[], ...) count toward the ingest/store function that made them.
STEP_OF_LABEL = {
    "_read_csv": "read CSV",
    "_check_text (utf-8/NUL scan)": "read CSV",
    "read_table": "read CSV",
    "parse_timestamps": "timestamp parsing",
    "parse_events": "validation masks",
    "parse_amounts": "validation masks",
    "_normalize_properties": "validation masks",
    "_missing_ids": "validation masks",
    "_oversized": "validation masks",
    "Problems.add": "validation masks",
    "DataFrame.drop_duplicates": "dedup",
    "DataFrame.duplicated": "dedup",
    "merge_into_store": "partitioning",
    "partition_of": "partitioning",
    "EventStore.read_partition_table": "partitioning",
    "_sorted_table": "sorting (pandas->arrow, sort, take)",
    "EventStore.publish": "writing (cast, Parquet zstd, fsync)",
    "_count_users": "count distinct users",
}
STEP_ORDER = ["read CSV", "timestamp parsing", "validation masks", "dedup", "partitioning",
              "sorting (pandas->arrow, sort, take)", "writing (cast, Parquet zstd, fsync)",
              "count distinct users", "other"]


def _step_of(path: tuple[str, ...]) -> str:
    for label in reversed(path):
        if label in STEP_OF_LABEL:
            return STEP_OF_LABEL[label]
    return "other"


def phase_profile(args: list[str]) -> dict[str, Any]:
    import pandas as pd
    import pandas.core.indexing as pd_indexing
    import pandas.core.strings.accessor as pd_strings
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv
    import pyarrow.pandas_compat as pa_pandas
    import pyarrow.parquet as pq

    import events.ingest as ingest
    import events.store as store_mod
    from events.ingest import formats, merge, validate

    csv_path = Path(args[0])
    profiler = StepProfiler()

    def named(owner: Any, prefix: str, *names: str) -> list[tuple[Any, str, str]]:
        return [(owner, name, prefix + name) for name in names]

    # Each function is wrapped where its caller looks it up: the package for the entry points,
    # else the ingest module that calls it.
    targets: list[tuple[Any, str, str]] = [
        *named(ingest, "", "parse_events", "merge_into_store"),
        *named(validate, "", "read_table", "parse_timestamps", "parse_amounts",
               "_normalize_properties", "_missing_ids", "_oversized"),
        *named(formats, "", "_read_csv"),
        *named(merge, "", "partition_of", "_sorted_table", "_count_users"),
        (formats, "_check_text", "_check_text (utf-8/NUL scan)"),
        (ingest.Problems, "add", "Problems.add"),
        *named(store_mod.EventStore, "EventStore.", "publish", "read_partition_table"),
        (store_mod, "_fsync_dir", "_fsync_dir"),
        (pa_csv, "read_csv", "pyarrow.csv.read_csv"),
        (pa_pandas, "table_to_dataframe", "pyarrow table_to_dataframe (to_pandas)"),
        (pa_pandas, "dataframe_to_arrays", "pyarrow dataframe_to_arrays (from_pandas)"),
        (pq, "write_table", "pyarrow.parquet.write_table"),
        *named(pc, "pc.", "sort_indices", "take", "cast", "dictionary_encode", "count_distinct"),
        *named(pd, "pandas.", "to_datetime", "to_numeric"),
        *named(pd.DataFrame, "DataFrame.", "drop_duplicates", "duplicated"),
        (pd_indexing._LocIndexer, "__getitem__", "_LocIndexer.__getitem__"),
        *named(pd_strings.StringMethods, "str.", "strip", "replace", "lower"),
        (pd_strings.StringMethods, "match", "str.match (regex)"),
        (pd_strings.StringMethods, "contains", "str.contains (regex)"),
        *named(pd.Series, "Series.", "isin", "to_numpy", "astype", "__setitem__"),
    ]
    with tempfile.TemporaryDirectory(prefix="bench-profile-", dir=bc.DATA_DIR) as tmp:
        for owner, name, label in targets:
            profiler.patch(owner, name, label)
        with profiler:
            store, outcome, watch = _import(csv_path, Path(tmp))
        seconds = watch.seconds
        peak = bc.peak_rss_mb()
        check = _verify(store, outcome)
    steps: dict[str, float] = defaultdict(float)
    for path in profiler.inclusive:
        steps[_step_of(path)] += profiler.self_time(path)
    steps["other"] += seconds - sum(profiler.inclusive[p] for p in profiler.inclusive
                                    if len(p) == 1)
    step_peak: dict[str, float] = defaultdict(float)
    for path, rss in profiler.rss.items():
        step = _step_of(path) if path != ("(outside)",) else "other"
        step_peak[step] = max(step_peak[step], rss)
    lines = profiler.tree(seconds)
    lines.append("")
    lines.append(f"{'step':<44}{'seconds':>9}{'share':>8}{'peak RSS MB':>13}")
    for step in STEP_ORDER:
        if step in steps:
            lines.append(f"{step:<44}{steps[step]:>9.2f}{100 * steps[step] / seconds:>7.1f}%"
                         f"{step_peak.get(step, 0):>13.0f}")
    lines.append(f"{'total (profiled run)':<44}{seconds:>9.2f}{100:>7.1f}%{peak:>13.0f}")
    print("\n".join(lines), file=sys.stderr, flush=True)
    return {
        "seconds": seconds,
        "peak_mb": round(peak, 1),
        "steps": {k: round(steps[k], 3) for k in STEP_ORDER if k in steps},
        "step_peak_mb": {k: round(v, 1) for k, v in step_peak.items()},
        "stored_rows": check["stored_rows"],
    }


# ----- orchestration (parent process: stdlib only) -------------------------------------------
def main() -> None:
    scale = bc.current_scale()
    profile = "--profile" in sys.argv[1:] or os.environ.get("BENCH_PROFILE") == "1"
    code = bc.fingerprint(*MEASURED_SOURCES)
    csv_path, meta = ensure_data(scale.rows, scale.users)
    bc.log(f"anchor: {ANCHOR}")
    bc.log(f"ours: parse_events + merge_into_store, {PARTITIONS} partitions")
    load_before = os.getloadavg()[0]
    measured = bc.measure_interleaved(SCRIPT, {"anchor": (str(csv_path),),
                                            "ours": (str(csv_path),)}, repeat=scale.repeat)
    anchor, ours = measured["anchor"], measured["ours"]
    bc.log(f"anchor: best {anchor['seconds']:.2f}s, peak {anchor['peak_mb']:.0f} MB; "
        f"ours: best {ours['seconds']:.2f}s, peak {ours['peak_mb']:.0f} MB")
    extra: dict[str, Any] = {}
    if profile:
        bc.log("profile: the same import with per-step timers")
        prof = bc.run_phase(SCRIPT, "profile", str(csv_path))
        extra["profile_steps"] = prof["steps"]
        extra["profile_seconds"] = round(prof["seconds"], 3)

    expected = meta["unique_rows"]
    correct = (ours["stored_rows"] == expected
               and ours["duplicates_in_file"] == meta["planted_duplicates"]
               and ours["total_users"] == meta["users"]
               and ours["partition0_sorted"])
    if not correct:
        bc.log(f"WRONG RESULT: stored {ours['stored_rows']:,}, expected {expected:,}; "
            f"dups {ours['duplicates_in_file']:,} vs {meta['planted_duplicates']:,}; "
            f"users {ours['total_users']:,} vs {meta['users']:,}; "
            f"sorted {ours['partition0_sorted']}; problems {ours['problems']}")
    if bc.fingerprint(*MEASURED_SOURCES) != code:
        extra["code_changed_during_run"] = True
        bc.log("warning: events/ingest/ or events/store.py changed during the run")
    ratio = ours["seconds"] / anchor["seconds"]
    passed = correct and ratio <= MAX_RATIO and ours["peak_mb"] < MAX_PEAK_MB
    bc.emit_vs_anchor(
        BENCH, ours, anchor, anchor_name=ANCHOR, target=TARGET, passed=passed, scale=scale,
        code=code, load_before=load_before,
        rows=meta["rows"],
        users=meta["users"],
        rows_per_s=round(meta["rows"] / ours["seconds"]),
        anchor_rows_per_s=round(meta["rows"] / anchor["seconds"]),
        cpu_seconds=round(ours["cpu_seconds"], 2),
        anchor_cpu_seconds=round(anchor["cpu_seconds"], 2),
        cpu_ratio=round(ours["cpu_seconds"] / anchor["cpu_seconds"], 3),
        stored_rows=ours["stored_rows"],
        expected_rows=expected,
        duplicates_removed=ours["duplicates_in_file"],
        correct=correct,
        csv_mb=round(meta["bytes"] / 1e6, 1),
        **extra,
    )
    if not correct:
        sys.exit(1)


if __name__ == "__main__":
    if not bc.phase_main({"generate": phase_generate, "anchor": phase_anchor, "ours": phase_ours,
                       "profile": phase_profile}):
        main()
