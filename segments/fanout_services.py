"""Refresh and behaviour analyses as fan-out jobs (see ``jobs.fanout``): the plan, the
per-partition map (per-user rows of ``analytics.fanout.refresh_map`` as Parquet;
``analysis_map`` arrays as NPZ) and the merge (``refresh_reduce`` / ``analysis_reduce``),
which stores exactly what the single-process job stores."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from events.frame import build_user_events
from events.models import Dataset
from events.services import get_store
from jobs.fanout import FanoutKind, fanout_start, register_fanout
from jobs.models import Job
from jobs.services import JobFailed, job_progress

from .analytics.fanout import (
    META_KEY,
    analysis_map,
    analysis_reduce,
    parts_totals,
    refresh_map,
    refresh_reduce,
    refresh_split,
)
from .analytics.refresh import SegmentSpec
from .models import Refresh, Segment

COLUMNS = ["user_id", "event", "timestamp", "revenue", "cost", "properties"]


def _partition_events(plan: dict[str, Any], part: int) -> Any:
    store = get_store()
    events = store.read_version_partition(plan["store_key"], plan["version"], part,
                                          columns=COLUMNS).to_pandas()
    # The whole users table: attributes keep the same columns (and dtypes) in every partition
    # as in one process (``build_user_events`` aligns it to the partition's users).
    users = store.read_version_users(plan["store_key"], plan["version"])
    return build_user_events([events], users, with_properties=True)


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
    data = _partition_events(plan, part)
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


# ----- behaviour analyses ------------------------------------------------------------------------
def analysis_fanout_start(job: Job, analysis: Any) -> dict[str, Any]:
    """Plan a funnel / retention / discovery analysis over the partitions; start the chord."""
    store = get_store()
    dataset = analysis.dataset
    version = store.current(dataset.store_key)
    if version is None:
        raise JobFailed("the dataset has no events yet; import some first")
    _, high = store.time_bounds(dataset.store_key, version)
    segments = list(Segment.objects.filter(pk__in=analysis.params.get("breakdown_segments")
                                           or []).order_by("name"))
    plan = {
        "analysis": analysis.pk, "store_key": dataset.store_key, "version": version.number,
        "as_of": high + 1 if high is not None else 0,
        "segments": [[s.pk, s.name] for s in segments],
    }
    return fanout_start(job, plan, partitions=version.partitions)


def analysis_partition(plan: dict[str, Any], part: int) -> bytes:
    """Map one partition of a behaviour analysis: its arrays as NPZ bytes."""
    from .behaviour_services import _scope
    from .models import BehaviourAnalysis
    from .segment_services import segment_members_mask

    analysis = BehaviourAnalysis.objects.select_related("dataset").get(pk=plan["analysis"])
    ue = _partition_events(plan, part)
    users = _scope(analysis, ue)
    by_pk = Segment.objects.in_bulk([pk for pk, _ in plan["segments"]])
    masks = [(name, segment_members_mask(by_pk[pk], ue)) for pk, name in plan["segments"]]
    arrays = analysis_map(analysis.kind, analysis.params, ue, plan["as_of"], users, masks)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _read_npz(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return {k: arrays[k] for k in arrays.files}


def analysis_merge(job: Job, plan: dict[str, Any],
                   read_parts: Callable[[], list[bytes]]) -> dict[str, Any]:
    """Merge the partitions' arrays into the analysis result, as the single-process job."""
    from .models import BehaviourAnalysis

    analysis = BehaviourAnalysis.objects.get(pk=plan["analysis"])
    if not analysis.result:  # else a redelivered callback: stored already
        frames = [_read_npz(data) for data in read_parts()]
        job_progress(job, 85, "merging partitions")
        try:
            analysis.result = analysis_reduce(analysis.kind, analysis.params, frames,
                                              plan["as_of"], [n for _, n in plan["segments"]])
        except ValueError as exc:  # as the single-process job: the analysis cannot be made
            raise JobFailed(str(exc)) from exc
        analysis.save(update_fields=["result"])
    return {"analysis_id": analysis.pk}


def register() -> None:
    """Register both fan-out job kinds (from the app's ``ready()``). The lambdas look the
    functions up when called, so a test can wrap them."""
    register_fanout("refresh", FanoutKind(
        map=lambda plan, part: refresh_partition(plan, part),
        merge=lambda job, plan, parts: refresh_merge(job, plan, parts),
        storage=get_store, part_suffix=".parquet"))
    register_fanout("behaviour", FanoutKind(
        map=lambda plan, part: analysis_partition(plan, part),
        merge=lambda job, plan, parts: analysis_merge(job, plan, parts),
        storage=get_store, part_suffix=".npz"))
