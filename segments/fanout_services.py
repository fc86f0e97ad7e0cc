"""The refresh as a fan-out job (see ``jobs.fanout``): the plan, the per-partition map
(per-user rows of ``analytics.fanout.refresh_map`` as Parquet) and the merge
(``refresh_reduce``), which stores exactly what the single-process refresh stores."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from events.models import Dataset
from events.services import get_store, partition_user_events
from jobs.fanout import FanoutKind, fanout_start, register_fanout
from jobs.models import Job
from jobs.services import JobFailed, job_progress

from .analytics.fanout import META_KEY, parts_totals, refresh_map, refresh_reduce, refresh_split
from .analytics.refresh import SegmentSpec
from .models import Refresh, Segment

COLUMNS = ["user_id", "event", "timestamp", "revenue", "cost", "properties"]


# ----- refresh -----------------------------------------------------------------------------------
def refresh_fanout_start(job: Job, dataset: Dataset, segments: list[Segment]) -> dict[str, Any]:
    """Plan the refresh (version, as_of, split, specs) and start the chord."""
    from .segment_services import refresh_specs

    store = get_store()
    version = store.current(dataset.store_key)
    if version is None:
        raise JobFailed("the dataset has no events yet; import some first")
    low, high = store.time_bounds(dataset.store_key, version)
    as_of = high + 1 if high is not None else 0
    split = refresh_split(as_of, low)
    specs = refresh_specs(segments)
    plan = {
        "dataset": dataset.pk, "store_key": dataset.store_key, "version": version.number,
        "as_of": as_of, "split": split, "outcome_event": dataset.outcome_event or None,
        "specs": [asdict(s) | {"definition": dict(s.definition)} for s in specs],
    }
    return fanout_start(job, plan, partitions=version.partitions)


def _specs(plan: dict[str, Any]) -> list[SegmentSpec]:
    return [SegmentSpec(key=s["key"], kind=s["kind"], definition=s["definition"])
            for s in plan["specs"]]


def refresh_partition(plan: dict[str, Any], part: int) -> bytes:
    """Map one partition: its users' rows as Parquet bytes."""
    data = partition_user_events(plan['store_key'], plan['version'], part)
    rows = refresh_map(data, _specs(plan), as_of=plan["as_of"], split=plan["split"],
                       outcome_event=plan["outcome_event"])
    table = pa.Table.from_pandas(rows, preserve_index=False)
    meta = {**(table.schema.metadata or {}), META_KEY: json.dumps(rows.attrs, default=str).encode()}
    buffer = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(meta), buffer, compression="zstd")
    return buffer.getvalue()


def _read_part(data: bytes) -> pd.DataFrame:
    table = pq.read_table(io.BytesIO(data))
    attrs = json.loads((table.schema.metadata or {}).get(META_KEY, b"{}"))
    frame = table.to_pandas()
    frame.attrs = attrs
    return frame


def refresh_merge(job: Job, plan: dict[str, Any],
                  read_parts: Callable[[], list[bytes]]) -> dict[str, Any]:
    """Merge the partitions' rows and store the snapshots, as the single-process refresh."""
    from .segment_services import refresh_store

    existing = Refresh.objects.filter(job=job, finished_at__isnull=False).first()
    if existing is not None:  # a redelivered callback: stored already
        return {"refresh_id": existing.pk, "reused": True}
    frames = [_read_part(data) for data in read_parts()]
    job_progress(job, 82, "merging partitions")
    specs = _specs(plan)
    result = refresh_reduce(frames, specs, as_of=plan["as_of"], split=plan["split"])
    totals = parts_totals(frames)
    del frames
    dataset = Dataset.objects.select_related("workspace").get(pk=plan["dataset"])
    keys = [s.key for s in specs]
    by_pk = {str(s.pk): s for s in Segment.objects.filter(pk__in=[int(k) for k in keys])}
    segments = [by_pk[k] for k in keys if k in by_pk]
    result.segments = [r for r in result.segments if r.key in by_pk]
    job_progress(job, 90, "storing snapshots")
    return refresh_store(job, dataset, segments, result, users=totals["users"],
                         events=totals["events"])


def register() -> None:
    """Register the refresh as a fan-out job kind (from the app's ``ready()``). The lambdas look the
    functions up when called, so a test can wrap them."""
    register_fanout("refresh", FanoutKind(
        map=lambda plan, part: refresh_partition(plan, part),
        merge=lambda job, plan, parts: refresh_merge(job, plan, parts),
        storage=get_store, part_suffix=".parquet"))
