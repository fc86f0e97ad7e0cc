"""Fan-out of a refresh or a behaviour analysis: one task per user-hash partition of the event
store (a Celery chord), each writing its part (per-user rows of ``analytics.fanout.refresh_map``
as Parquet; ``analysis_map`` arrays as NPZ) under a job-specific work folder of the store; the
chord's callback merges the parts (``refresh_reduce`` / ``analysis_reduce``) and stores exactly
what the single-process job stores.

``FANOUT`` (setting / environment): ``off`` (default: one process), ``on``, or ``auto`` (on
when the broker is Redis). A chord needs a result backend (``CELERY_RESULT_BACKEND``, Redis by
default with a Redis broker); eager Celery (tests) runs it synchronously.

The job stays ``running`` while the partitions run (each renews its lease and reports
progress); the callback ends it. A failing partition task ends the job as failed, naming the
partition. Redelivered tasks overwrite their own part: the work is idempotent.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from celery import chord, current_app, shared_task
from django.conf import settings

from .analytics.data import build_user_events
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
from .jobs import CONTINUED, JobFailed, job_fail_continued, job_finish, job_progress
from .models import Dataset, Job, JobState, Refresh, Segment
from .services import get_store

log = logging.getLogger(__name__)

COLUMNS = ["user_id", "event", "timestamp", "revenue", "cost", "properties"]


class PartitionFailed(Exception):
    """A partition task failed: the message names the partition."""


def fanout_mode() -> str:
    mode = str(getattr(settings, "FANOUT", "off") or "off").strip().lower()
    return mode if mode in {"on", "off", "auto"} else "off"


def fanout_enabled() -> bool:
    """Whether refreshes fan out: ``on``, or ``auto`` with a Redis broker."""
    mode = fanout_mode()
    if mode == "auto":
        on = str(settings.CELERY_BROKER_URL).startswith(("redis://", "rediss://"))
    else:
        on = mode == "on"
    conf = current_app.conf
    if on and not (conf.task_always_eager or conf.result_backend):
        log.warning("FANOUT is on but Celery has no result backend for chords: one process")
        return False
    return on


# ----- the work folder ---------------------------------------------------------------------------
def _work(job_id: int, run: str | None = None) -> str:
    """The work folder of one fan-out run of a job (a re-claimed job starts a new run: a chord
    still in flight from the first one never mixes its parts into the second)."""
    return get_store().work_path(f"job-{job_id}" if not run else f"job-{job_id}-{run}")


def _new_run() -> str:
    return uuid.uuid4().hex[:12]


def _write_bytes(path: str, data: bytes) -> None:
    get_store().write_bytes(path, data)


def _read_bytes(path: str) -> bytes:
    return get_store().read_bytes(path)


# ----- start -------------------------------------------------------------------------------------
def refresh_fanout_start(job: Job, dataset: Dataset, segments: list[Segment]) -> dict[str, Any]:
    """Write the refresh's plan (version, as_of, split, specs) and start the chord."""
    from .segment_services import refresh_specs

    store = get_store()
    version = store.current(dataset.store_key)
    if version is None:
        raise JobFailed("the dataset has no events yet; import some first")
    job_progress(job, 5, f"fanning out over {version.partitions} partitions")
    low, high = store.time_bounds(dataset.store_key, version)
    as_of = high + 1 if high is not None else 0
    split = refresh_split(as_of, low)
    specs = refresh_specs(segments)
    plan = {
        "job": job.pk, "dataset": dataset.pk, "store_key": dataset.store_key,
        "version": version.number, "partitions": version.partitions,
        "as_of": as_of, "split": split, "outcome_event": dataset.outcome_event or None,
        "specs": [asdict(s) | {"definition": dict(s.definition)} for s in specs],
    }
    run = _new_run()
    _write_bytes(f"{_work(job.pk, run)}/plan.json", json.dumps(plan, default=str).encode())
    header = [partition_task.s(job.pk, part, run) for part in range(version.partitions)]
    chord(header)(refresh_reduce_task.s(job.pk, run))
    return CONTINUED


def _plan(job_id: int, run: str | None = None) -> dict[str, Any]:
    return json.loads(_read_bytes(f"{_work(job_id, run)}/plan.json"))


def _specs(plan: dict[str, Any]) -> list[SegmentSpec]:
    return [SegmentSpec(key=s["key"], kind=s["kind"], definition=s["definition"])
            for s in plan["specs"]]


def _running(job_id: int) -> Job | None:
    return Job.objects.filter(pk=job_id, state=JobState.RUNNING).first()


# ----- map ---------------------------------------------------------------------------------------
def refresh_partition(job_id: int, part: int, run: str | None = None) -> int:
    """Map one partition into its part file; returns the partition number."""
    plan = _plan(job_id, run)
    data = _partition_events(plan, part)
    rows = refresh_map(data, _specs(plan), as_of=plan["as_of"], split=plan["split"],
                       outcome_event=plan["outcome_event"])
    table = pa.Table.from_pandas(rows, preserve_index=False)
    meta = {**(table.schema.metadata or {}), META_KEY: json.dumps(rows.attrs, default=str).encode()}
    buffer = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(meta), buffer, compression="zstd")
    _write_bytes(f"{_work(job_id, run)}/part-{part:04d}.parquet", buffer.getvalue())
    return part


def _read_part(job_id: int, part: int, run: str | None = None) -> pd.DataFrame:
    table = pq.read_table(io.BytesIO(_read_bytes(
        f"{_work(job_id, run)}/part-{part:04d}.parquet")))
    attrs = json.loads((table.schema.metadata or {}).get(META_KEY, b"{}"))
    frame = table.to_pandas()
    frame.attrs = attrs
    return frame


@shared_task(name="segments.tasks.partition_task", acks_late=True, ignore_result=False)
def partition_task(job_id: int, part: int, run: str | None = None) -> int:
    job = _running(job_id)
    if job is None:  # failed or finished meanwhile: nothing to do
        return part
    try:
        if _plan(job_id, run).get("kind") == "behaviour":
            analysis_partition(job_id, part, run)
        else:
            refresh_partition(job_id, part, run)
    except Exception as exc:
        log.exception("job %s partition %s failed", job_id, part)
        error = f"partition {part}: {type(exc).__name__}: {exc}"
        job_fail_continued(job_id=job_id, error=error)
        raise PartitionFailed(error) from exc
    done = len(get_store().list_work(_work(job_id, run), prefix="part-"))
    total = max(1, int(_plan(job_id, run)["partitions"]))
    job_progress(job, 5 + int(75 * min(done, total) / total),
                 f"partition {part} done ({done} of {total})")
    return part


# ----- reduce ------------------------------------------------------------------------------------
@shared_task(name="segments.tasks.refresh_reduce_task", acks_late=True)
def refresh_reduce_task(parts: list[int], job_id: int, run: str | None = None) -> None:
    job = _running(job_id)
    if job is None:
        return
    try:
        result = refresh_finish(job, parts, run)
    except Exception as exc:
        log.exception("job %s reduce failed", job_id)
        job_fail_continued(job_id=job_id, error=f"merging partitions: {type(exc).__name__}: "
                                                f"{exc}")
        raise
    job_finish(job, JobState.SUCCEEDED, result=result)
    get_store().remove_work(_work(job_id, run))


def refresh_finish(job: Job, parts: list[int], run: str | None = None) -> dict[str, Any]:
    from .segment_services import refresh_store

    existing = Refresh.objects.filter(job=job, finished_at__isnull=False).first()
    if existing is not None:  # a redelivered callback: stored already
        return {"refresh_id": existing.pk, "reused": True}
    plan = _plan(job.pk, run)
    present = set(get_store().list_work(_work(job.pk, run), prefix="part-"))
    for part in range(plan["partitions"]):
        # A part missing here (a chord counted a redelivered task twice) is made now.
        if f"part-{part:04d}.parquet" not in present:
            log.warning("job %s: partition %s missing at the merge, mapping it here", job.pk, part)
            refresh_partition(job.pk, part, run)
    frames = [_read_part(job.pk, p, run) for p in range(plan["partitions"])]
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


# ----- behaviour analyses --------------------------------------------------------------------------
def analysis_fanout_start(job: Job, analysis: Any) -> dict[str, Any]:
    """Plan a funnel / retention / discovery analysis over the partitions; start the chord."""
    store = get_store()
    dataset = analysis.dataset
    version = store.current(dataset.store_key)
    if version is None:
        raise JobFailed("the dataset has no events yet; import some first")
    job_progress(job, 5, f"fanning out over {version.partitions} partitions")
    _, high = store.time_bounds(dataset.store_key, version)
    segments = list(Segment.objects.filter(pk__in=analysis.params.get("breakdown_segments")
                                           or []).order_by("name"))
    plan = {
        "kind": "behaviour", "job": job.pk, "analysis": analysis.pk,
        "store_key": dataset.store_key, "version": version.number,
        "partitions": version.partitions, "as_of": high + 1 if high is not None else 0,
        "segments": [[s.pk, s.name] for s in segments],
    }
    run = _new_run()
    _write_bytes(f"{_work(job.pk, run)}/plan.json", json.dumps(plan).encode())
    header = [partition_task.s(job.pk, part, run) for part in range(version.partitions)]
    chord(header)(analysis_reduce_task.s(job.pk, run))
    return CONTINUED


def _partition_events(plan: dict[str, Any], part: int) -> Any:
    store = get_store()
    events = store.read_version_partition(plan["store_key"], plan["version"], part,
                                          columns=COLUMNS).to_pandas()
    # The whole users table: attributes keep the same columns (and dtypes) in every partition
    # as in one process (``build_user_events`` aligns it to the partition's users).
    users = store.read_version_users(plan["store_key"], plan["version"])
    return build_user_events([events], users, with_properties=True)


def analysis_partition(job_id: int, part: int, run: str | None = None) -> int:
    """Map one partition of a behaviour analysis into its NPZ part."""
    from .behaviour_services import _scope
    from .models import BehaviourAnalysis
    from .segment_services import segment_members_mask

    plan = _plan(job_id, run)
    analysis = BehaviourAnalysis.objects.select_related("dataset").get(pk=plan["analysis"])
    ue = _partition_events(plan, part)
    users = _scope(analysis, ue)
    by_pk = Segment.objects.in_bulk([pk for pk, _ in plan["segments"]])
    masks = [(name, segment_members_mask(by_pk[pk], ue)) for pk, name in plan["segments"]]
    arrays = analysis_map(analysis.kind, analysis.params, ue, plan["as_of"], users, masks)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    _write_bytes(f"{_work(job_id, run)}/part-{part:04d}.npz", buffer.getvalue())
    return part


def _read_npz(job_id: int, part: int, run: str | None = None) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(_read_bytes(f"{_work(job_id, run)}/part-{part:04d}.npz")),
                 allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@shared_task(name="segments.tasks.analysis_reduce_task", acks_late=True)
def analysis_reduce_task(parts: list[int], job_id: int, run: str | None = None) -> None:
    from .models import BehaviourAnalysis

    job = _running(job_id)
    if job is None:
        return
    try:
        plan = _plan(job_id, run)
        analysis = BehaviourAnalysis.objects.get(pk=plan["analysis"])
        if not analysis.result:
            present = set(get_store().list_work(_work(job_id, run), prefix="part-"))
            for part in range(plan["partitions"]):
                if f"part-{part:04d}.npz" not in present:
                    analysis_partition(job_id, part, run)
            job_progress(job, 85, "merging partitions")
            frames = [_read_npz(job_id, p, run) for p in range(plan["partitions"])]
            analysis.result = analysis_reduce(analysis.kind, analysis.params, frames,
                                              plan["as_of"], [n for _, n in plan["segments"]])
            analysis.save(update_fields=["result"])
    except ValueError as exc:  # as the single-process job: the analysis cannot be made
        job_fail_continued(job_id=job_id, error=str(exc))
        return
    except Exception as exc:
        log.exception("job %s reduce failed", job_id)
        job_fail_continued(job_id=job_id, error=f"merging partitions: {type(exc).__name__}: "
                                                f"{exc}")
        raise
    job_finish(job, JobState.SUCCEEDED, result={"analysis_id": analysis.pk})
    get_store().remove_work(_work(job_id, run))
