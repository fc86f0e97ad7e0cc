"""Benchmark: a 1-row import into a dataset that holds 100,000 distinct event names.

Requirement (issue 16, item 7): after 100,000 distinct event names, every import into the
dataset, even one row, took 53-74 s and 1.15 GB (the catalog was a Python loop over names).
Target: the whole 1-row import (parse, the limit check on distinct names, merge and publish,
the event and attribute catalogs, the catalog as JSON as the job stores it) under 5 s.

    .venv/bin/python bench/bench_catalog.py              # full scale (2M events, 200k users)
    BENCH_SCALE=small .venv/bin/python bench/bench_catalog.py

Data (``generate`` phase, cached in ``bench/data/catalog-<scale>-v<N>/``): a published store
(8 partitions) of 100,000 event names at every scale (each name at least once, then a long
tail), ``user_id`` u0000000..., timestamps over 2025, properties on half the rows (a few key
sets), and a one-row CSV of a known name. Each measured run copies the store first (not timed).

* **Ours**: ``parse_events`` of the one-row CSV + ``merge_into_store(max_event_names=10_000)``
  (the default limit: the row's name is known, so the stored names are read and the row is
  accepted) + ``event_catalog`` over the store's partitions as Arrow tables +
  ``attribute_catalog`` + ``json.dumps`` of both (what the job writes to the dataset row).
* **Anchor**: pyarrow reads the same partitions (user_id, event, timestamp) and groups by
  event: count, distinct users, first and last time. Nothing else.
* **Checks** (after timing): 100,000 catalog entries, counts summing to the stored rows, the
  imported name's count one higher than before.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common as bc  # noqa: E402

SCRIPT = Path(__file__).resolve()
BENCH = "catalog"
MAX_SECONDS = 5.0
TARGET = f"seconds < {MAX_SECONDS:g} (1-row import into 100,000 event names, catalog included)"
ANCHOR = "pyarrow read partitions + group_by(event): count, count_distinct(user), min/max time"
MEASURED_CODE = ("events/catalog.py", "events/ingest/merge.py", "events/store.py")
NAMES = 100_000
PARTITIONS = 8
LIMIT = 10_000  # the default MAX_EVENT_NAMES
DATA_VERSION = 1
SEED = 20261205
SIZES = {"small": (300_000, 20_000), "medium": (1_000_000, 100_000), "full": (2_000_000, 200_000)}
NOW = "2026-01-02T00:00:00+00:00"
ROW_EVENT = "event_000042"


def data_dir(scale: str) -> Path:
    return bc.DATA_DIR / f"catalog-{scale}-v{DATA_VERSION}"


# ----- phase: generate -----------------------------------------------------------------------
def phase_generate(args: list[str]) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from events.store import EventStore, partition_of

    scale = args[0]
    rows, users = SIZES[scale]
    folder = data_dir(scale)
    started = time.perf_counter()
    rng = np.random.default_rng(SEED)
    names = pa.array([f"event_{i:06d}" for i in range(NAMES)])
    event = np.r_[np.arange(NAMES), (rng.pareto(1.2, rows - NAMES) * 50).astype(np.int64) % NAMES]
    user = rng.integers(0, users, rows)
    user[:users] = np.arange(users)
    start = np.datetime64("2025-01-01T00:00:00", "us").astype(np.int64)
    stamps = start + rng.integers(0, 364 * 86_400, rows) * 1_000_000
    props = np.array(['{"plan":"pro"}', '{"page":"/a","ref":"mail"}', '{"sku":"x","qty":1}'])
    has = rng.random(rows) < 0.5
    user_text = pc.binary_join_element_wise(
        "u", pc.utf8_lpad(pc.cast(pa.array(np.arange(users)), pa.string()), 7, "0"), "")
    table = pa.table({
        "user_id": user_text.take(pa.array(user)),
        "event": pa.DictionaryArray.from_arrays(pa.array(event.astype(np.int32)), names),
        "timestamp": pa.array(stamps, pa.int64()).view(pa.timestamp("us", tz="UTC")),
        "revenue": pa.nulls(rows, pa.float64()),
        "cost": pa.nulls(rows, pa.float64()),
        "properties": pa.array(props[rng.integers(0, 3, rows)], mask=~has),
    })
    # Written as the store writes it: one table per partition, sorted by (user, time).
    part_of_user = partition_of(np.asarray(user_text.to_pylist(), dtype=object), PARTITIONS)
    part = part_of_user[user]
    if folder.exists():
        shutil.rmtree(folder)
    store = EventStore(folder / "store", partitions=PARTITIONS)
    parts = {}
    for p in range(PARTITIONS):
        rows_p = np.flatnonzero(part == p)
        rows_p = rows_p[np.lexsort((stamps[rows_p], user[rows_p]))]
        piece = table.take(pa.array(rows_p))
        parts[p] = piece.set_column(1, "event", pc.dictionary_encode(
            piece.column("event").cast(pa.string())))
    store.publish("bench", parts, None, {"imports": {}, "total_events": rows,
                                         "total_users": users})
    (folder / "row.csv").write_text(f"user_id,event,timestamp\nu0000001,{ROW_EVENT},"
                                    "2025-12-31T12:00:00Z\n")
    meta = {"rows": rows, "users": users, "names": NAMES, "scale": scale,
            "row_event_count": int((event == 42).sum()),
            "generate_seconds": round(time.perf_counter() - started, 2)}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    return {"seconds": time.perf_counter() - started, **meta}


def ensure_data(scale: str) -> tuple[Path, dict[str, Any]]:
    folder = data_dir(scale)
    if (folder / "meta.json").exists() and (folder / "store").exists():
        bc.log(f"using cached {folder.name}")
        return folder, json.loads((folder / "meta.json").read_text())
    bc.log(f"generating {NAMES:,} names over {SIZES[scale][0]:,} events -> {folder}")
    result = bc.run_phase(SCRIPT, "generate", scale)
    bc.log(f"generated in {result['seconds']:.1f}s (peak {result['peak_mb']:.0f} MB)")
    return folder, json.loads((folder / "meta.json").read_text())


def _copy_store(folder: Path, tmp: str) -> Path:
    target = Path(tmp) / "store"
    shutil.copytree(folder / "store", target)
    return target


# ----- phase: anchor -------------------------------------------------------------------------
def phase_anchor(args: list[str]) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(args[0])
    with tempfile.TemporaryDirectory(prefix="bench-catalog-", dir=bc.DATA_DIR) as tmp:
        root = _copy_store(folder, tmp)
        files = sorted((root / "bench").glob("v*/events-*.parquet"))
        with bc.Stopwatch() as watch:
            tables = [pq.read_table(f, columns=["user_id", "event", "timestamp"]) for f in files]
            table = pa.concat_tables(tables)
            table = table.set_column(1, "event", table.column("event").cast(pa.string()))
            grouped = table.group_by("event").aggregate([
                ([], "count_all"), ("user_id", "count_distinct"), ("timestamp", "min"),
                ("timestamp", "max")])
        peak = bc.peak_rss_mb()
        return {"seconds": watch.seconds, "cpu_seconds": watch.cpu_seconds,
                "peak_mb": round(peak, 1), "names": grouped.num_rows}


# ----- phase: ours ---------------------------------------------------------------------------
def phase_ours(args: list[str]) -> dict[str, Any]:
    from datetime import datetime

    from events.catalog import attribute_catalog, event_catalog
    from events.ingest import ImportOptions, merge_into_store, parse_events
    from events.store import EventStore

    folder = Path(args[0])
    with tempfile.TemporaryDirectory(prefix="bench-catalog-", dir=bc.DATA_DIR) as tmp:
        store = EventStore(_copy_store(folder, tmp), partitions=PARTITIONS)
        options = ImportOptions(now=datetime.fromisoformat(NOW))
        steps: dict[str, float] = {}
        with bc.Stopwatch() as watch:
            mark = time.perf_counter()
            parsed = parse_events(folder / "row.csv", options)
            merge = merge_into_store(store, "bench", import_id="one-row", events=parsed,
                                     users=None, report={}, max_event_names=LIMIT)
            steps["import"] = time.perf_counter() - mark
            mark = time.perf_counter()
            events = event_catalog(store.iter_partition_tables(
                "bench", columns=["user_id", "event", "timestamp", "properties"]))
            attributes = attribute_catalog(store.read_users("bench"))
            steps["catalog"] = time.perf_counter() - mark
            mark = time.perf_counter()
            stored = json.dumps({"event_catalog": events, "attribute_catalog": attributes})
            steps["json"] = time.perf_counter() - mark
        peak = bc.peak_rss_mb()
        with bc.Stopwatch() as load:  # what each dataset page then pays to read the row
            json.loads(stored)
        by_name = {e["event"]: e["count"] for e in events}
        return {"seconds": watch.seconds, "cpu_seconds": watch.cpu_seconds,
                "peak_mb": round(peak, 1), "steps": {k: round(v, 3) for k, v in steps.items()},
                "rows_added": merge.rows_added, "total_events": merge.total_events,
                "entries": len(events), "counted": sum(by_name.values()),
                "row_event_count": by_name.get(ROW_EVENT, 0),
                "catalog_json_mb": round(len(stored) / 1e6, 1),
                "json_load_seconds": round(load.seconds, 3)}


# ----- orchestration (parent process: stdlib only) -------------------------------------------
def main() -> None:
    scale = bc.current_scale()
    code = bc.fingerprint(*MEASURED_CODE)
    folder, meta = ensure_data(scale.name)
    bc.log(f"anchor: {ANCHOR}")
    bc.log(f"ours: 1-row import + catalog, {NAMES:,} names, {meta['rows']:,} events")
    load_before = os.getloadavg()[0]
    measured = bc.measure_interleaved(SCRIPT, {"anchor": (str(folder),), "ours": (str(folder),)},
                                   repeat=scale.repeat)
    anchor, ours = measured["anchor"], measured["ours"]
    correct = (ours["entries"] == NAMES and anchor["names"] == NAMES
               and ours["rows_added"] == 1 and ours["total_events"] == meta["rows"] + 1
               and ours["counted"] == meta["rows"] + 1
               and ours["row_event_count"] == meta["row_event_count"] + 1)
    if not correct:
        bc.log(f"WRONG RESULT: entries {ours['entries']:,}, anchor names {anchor['names']:,}, "
            f"rows added {ours['rows_added']}, counted {ours['counted']:,} of "
            f"{meta['rows'] + 1:,}, {ROW_EVENT} {ours['row_event_count']} vs "
            f"{meta['row_event_count'] + 1}")
    bc.log(f"anchor: best {anchor['seconds']:.2f}s, peak {anchor['peak_mb']:.0f} MB; ours: best "
        f"{ours['seconds']:.2f}s {ours['steps']}, peak {ours['peak_mb']:.0f} MB; catalog JSON "
        f"{ours['catalog_json_mb']} MB, read back in {ours['json_load_seconds']}s")
    extra: dict[str, Any] = {}
    if bc.fingerprint(*MEASURED_CODE) != code:
        extra["code_changed_during_run"] = True
    bc.emit_vs_anchor(
        BENCH, ours, anchor, anchor_name=ANCHOR, target=TARGET,
        passed=correct and ours["seconds"] < MAX_SECONDS, scale=scale, code=code,
        load_before=load_before, names=NAMES, events=meta["rows"], users=meta["users"],
        steps=ours["steps"], cpu_seconds=round(ours["cpu_seconds"], 2),
        anchor_cpu_seconds=round(anchor["cpu_seconds"], 2),
        catalog_json_mb=ours["catalog_json_mb"], json_load_seconds=ours["json_load_seconds"],
        correct=correct, **extra)
    if not correct:
        sys.exit(1)


if __name__ == "__main__":
    if not bc.phase_main({"generate": phase_generate, "anchor": phase_anchor, "ours": phase_ours}):
        main()
