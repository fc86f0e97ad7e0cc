"""The refresh as a fan-out job (see ``jobs.fanout``) in two passes over the store partitions.

Pass 1 maps each partition to its statistics partial (``analytics.partials.stats_map``: the
CLV triples, RFM histograms, totals); its merge fits the CLV model, sets the RFM thresholds
and starts pass 2 with them in the plan. Pass 2 maps each partition to its segments partial
and its members (``segments_map``); the merge folds the partials one at a time
(``segments_reduce``) and streams the members into the refresh's membership file, partition
by partition. Neither merge holds a row per user.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from events.event_kinds import RetentionDefinition
from events.models import Dataset
from events.retention_services import retention_setup
from events.services import get_store, partition_user_events
from jobs.fanout import FanoutKind, fanout_start, register_fanout
from jobs.models import Job
from jobs.services import JobFailed, job_progress

from .analytics.fanout import refresh_split
from .analytics.partials import (
    partial_bytes,
    partial_from_bytes,
    segments_map,
    segments_reduce,
    stats_map,
    stats_reduce,
)
from .analytics.refresh import SegmentSpec
from .models import Refresh, Segment

COLUMNS = ["user_id", "event", "timestamp", "revenue", "cost", "properties"]
EVENT_COLUMNS = COLUMNS


# ----- refresh -----------------------------------------------------------------------------------
def refresh_fanout_start(job: Job, dataset: Dataset, segments: list[Segment]) -> dict[str, Any]:
    """Plan the refresh (version, as_of, split, specs) and start pass 1's chord."""
    from .segment_services import refresh_specs

    store = get_store()
    version = store.current(dataset.store_key)
    if version is None:
        raise JobFailed("the dataset has no events yet; import some first")
    low, high = store.time_bounds(dataset.store_key, version)
    as_of = high + 1 if high is not None else 0
    split = refresh_split(as_of, low)
    specs = refresh_specs(segments)
    setup = retention_setup(dataset)
    plan = {
        "dataset": dataset.pk, "store_key": dataset.store_key, "version": version.number,
        "as_of": as_of, "split": split, "outcome_event": dataset.outcome_event or None,
        "retention": setup.definition.to_dict(), "retention_provenance": setup.provenance,
        "specs": [asdict(s) | {"definition": dict(s.definition)} for s in specs], "pass": 1,
    }
    return fanout_start(job, plan, partitions=version.partitions,
                        message=f"pass 1 of 2 (statistics) over {version.partitions} partitions")


def _specs(plan: dict[str, Any]) -> list[SegmentSpec]:
    return [SegmentSpec(key=s["key"], kind=s["kind"], definition=s["definition"])
            for s in plan["specs"]]


def _bundle(partial: bytes, members: bytes) -> bytes:
    return struct.pack("<Q", len(partial)) + partial + members


def _unbundle(data: bytes) -> tuple[bytes, bytes]:
    (size,) = struct.unpack_from("<Q", data)
    return data[8:8 + size], data[8 + size:]


def _members_table(members: dict[str, np.ndarray]) -> bytes:
    ids = [np.asarray(v, dtype=object).astype(str) for v in members.values()]
    segs = [np.full(len(v), int(k), dtype=np.int64) for k, v in members.items()]
    table = pa.table({"segment_id": np.concatenate(segs) if segs else np.zeros(0, np.int64),
                      "user_id": pa.array(np.concatenate(ids) if ids else [], type=pa.string())})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def refresh_partition(plan: dict[str, Any], part: int) -> bytes:
    """Map one partition: pass 1's statistics partial, or pass 2's segments partial and the
    partition's members (NPZ, then Parquet)."""
    data = partition_user_events(plan["store_key"], plan["version"], part)
    if plan.get("pass", 1) == 1:
        return partial_bytes(stats_map(data, as_of=plan["as_of"]))
    partial, members = segments_map(
        data, _specs(plan), as_of=plan["as_of"], split=plan["split"],
        broadcast=plan["broadcast"], part=part, partitions=int(plan["partitions"]),
        outcome_event=plan["outcome_event"], retention=plan_retention(plan))
    return _bundle(partial_bytes(partial), _members_table(members))


def refresh_merge(job: Job, plan: dict[str, Any],
                  read_parts: Callable[[], Iterator[bytes]]) -> dict[str, Any]:
    """Pass 1: fit and broadcast, start pass 2. Pass 2: fold the partials, store the snapshots
    and stream the members into the membership file, as the single-process refresh stores."""
    from .segment_services import refresh_store

    existing = Refresh.objects.filter(job=job, finished_at__isnull=False).first()
    if existing is not None:  # a redelivered callback: stored already
        return {"refresh_id": existing.pk, "reused": True}
    specs = _specs(plan)
    if plan.get("pass", 1) == 1:
        job_progress(job, 40, "merging statistics: CLV fit and RFM thresholds")
        broadcast = stats_reduce((partial_from_bytes(data) for data in read_parts()),
                                 any_rfm=any(s.kind == "rfm" for s in specs))
        return fanout_start(job, {**plan, "pass": 2, "broadcast": broadcast},
                            partitions=int(plan["partitions"]), progress=45,
                            message="pass 2 of 2 (segments)")
    job_progress(job, 82, "merging partitions")
    broadcast = plan["broadcast"]
    result = segments_reduce((partial_from_bytes(_unbundle(data)[0]) for data in read_parts()),
                             specs, as_of=plan["as_of"], split=plan["split"],
                             broadcast=broadcast)
    dataset = Dataset.objects.select_related("workspace").get(pk=plan["dataset"])
    keys = [s.key for s in specs]
    by_pk = {str(s.pk): s for s in Segment.objects.filter(pk__in=[int(k) for k in keys])}
    segments = [by_pk[k] for k in keys if k in by_pk]
    result.segments = [r for r in result.segments if r.key in by_pk]

    def member_tables() -> Iterator[pa.Table]:
        for data in read_parts():
            yield pq.read_table(io.BytesIO(_unbundle(data)[1]))

    job_progress(job, 90, "storing snapshots")
    return refresh_store(job, dataset, segments, result, users=broadcast["users"],
                         events=broadcast["events"], member_tables=member_tables,
                         retention=plan.get("retention_provenance"))


def plan_retention(plan: dict[str, Any]) -> RetentionDefinition | None:
    """The retention definition a plan carries (None: a plan from before definitions)."""
    value = plan.get("retention")
    if not value:
        return None
    start = value.get("start_event")
    returns = value.get("return_events")
    return RetentionDefinition(start_event=None if start in (None, "", "signup") else start,
                               return_events=None if returns is None else tuple(returns),
                               label=value.get("label", "any event"))


def register() -> None:
    """Register the refresh as a fan-out job kind (from the app's ``ready()``). The lambdas look the
    functions up when called, so a test can wrap them."""
    register_fanout("refresh", FanoutKind(
        map=lambda plan, part: refresh_partition(plan, part),
        merge=lambda job, plan, parts: refresh_merge(job, plan, parts),
        storage=get_store, part_suffix=".parquet"))
