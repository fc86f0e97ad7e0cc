"""Behaviour analyses as fan-out jobs (see ``jobs.fanout``): funnel, retention, paths and
discovery map each store partition to partials (NPZ) and merge them into the result the
single-process job stores."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from events.services import get_store, partition_user_events
from jobs.fanout import FanoutKind, fanout_start, register_fanout
from jobs.models import Job
from jobs.services import JobFailed, job_progress
from segments.models import Segment
from segments.segment_services import segment_members_mask

from .analytics.fanout import analysis_map, analysis_reduce
from .models import BehaviourAnalysis
from .services import analysis_scope


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

    analysis = BehaviourAnalysis.objects.select_related("dataset").get(pk=plan["analysis"])
    ue = partition_user_events(plan['store_key'], plan['version'], part)
    users = analysis_scope(analysis, ue)
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
                   read_parts: Callable[[], Iterator[bytes]]) -> dict[str, Any]:
    """Merge the partitions' arrays into the analysis result, as the single-process job."""
    analysis = BehaviourAnalysis.objects.get(pk=plan["analysis"])
    if not analysis.result:  # else a redelivered callback: stored already
        frames = (_read_npz(data) for data in read_parts())  # folded one at a time
        job_progress(job, 85, "merging partitions")
        try:
            analysis.result = analysis_reduce(analysis.kind, analysis.params, frames,
                                              plan["as_of"], [n for _, n in plan["segments"]])
        except ValueError as exc:  # as the single-process job: the analysis cannot be made
            raise JobFailed(str(exc)) from exc
        analysis.save(update_fields=["result"])
    return {"analysis_id": analysis.pk}


def register() -> None:
    """Register the behaviour analysis as a fan-out job kind (from the app's ``ready()``).
    The lambdas look the functions up when called, so a test can wrap them."""
    register_fanout("behaviour", FanoutKind(
        map=lambda plan, part: analysis_partition(plan, part),
        merge=lambda job, plan, parts: analysis_merge(job, plan, parts),
        storage=get_store, part_suffix=".npz"))
