"""Fan-out: a job that runs as one task per user-hash partition of the event store (a Celery
chord) and a callback that merges the partitions' parts.

The machinery knows no domain. An app registers a job kind with ``register_fanout``: a *map*
(plan, partition) -> the part's bytes, and a *merge* (job, plan, read_parts) -> the job's
result. ``fanout_start`` writes the plan under a work folder of the store (one folder per run
of a job: a re-claimed job's second chord never mixes parts with the first) and starts the
chord; each partition task writes its part there, and the callback makes any part still
missing, merges, finishes the job and removes the folder.

``FANOUT`` (setting / environment): ``off`` (default: one process), ``on``, or ``auto`` (on
when the broker is Redis). A chord needs a result backend (``CELERY_RESULT_BACKEND``, Redis by
default with a Redis broker); eager Celery (tests) runs it synchronously.

A merge may start another pass instead of finishing: it calls ``fanout_start`` again with the
next plan (the refresh maps twice: statistics first, then the segments with what the first
merge broadcast) and returns its ``CONTINUED``; the finished pass's folder is removed.

``read_parts`` yields the parts one at a time, so a merge that folds them holds one part.

The job stays ``running`` while the partitions run (each renews its lease and reports
progress); the callback ends it. A failing partition task ends the job as failed, naming the
partition. Redelivered tasks overwrite their own part: the work is idempotent.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from celery import chord, current_app
from django.conf import settings

from .models import Job, JobState
from .services import (
    CONTINUED,
    JobFailed,
    internal_error,
    job_fail_continued,
    job_finish,
    job_progress,
)

log = logging.getLogger(__name__)


class PartitionFailed(Exception):
    """A partition task failed: the message names the partition."""


@dataclass(frozen=True)
class FanoutKind:
    """How one job kind runs as a map over store partitions and a merge."""

    map: Callable[[dict[str, Any], int], bytes]
    merge: Callable[[Job, dict[str, Any], Callable[[], Iterator[bytes]]], dict[str, Any]]
    storage: Callable[[], Any]  # the store: work_path, write/read_bytes, list/remove_work
    part_suffix: str = ".bin"


FANOUTS: dict[str, FanoutKind] = {}


def register_fanout(kind: str, fanout: FanoutKind) -> None:
    """Register the map and merge of a job kind (from the owning app's ``ready()``)."""
    FANOUTS[kind] = fanout


def fanout_mode() -> str:
    mode = str(getattr(settings, "FANOUT", "off") or "off").strip().lower()
    return mode if mode in {"on", "off", "auto"} else "off"


def fanout_enabled() -> bool:
    """Whether jobs fan out: ``on``, or ``auto`` with a Redis broker."""
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
def work_folder(kind: FanoutKind, job_id: int, run: str) -> str:
    """The work folder of one fan-out run of a job."""
    return kind.storage().work_path(f"job-{job_id}-{run}")


def _part_name(kind: FanoutKind, part: int) -> str:
    return f"part-{part:04d}{kind.part_suffix}"


def read_plan(kind: FanoutKind, job_id: int, run: str) -> dict[str, Any]:
    return json.loads(kind.storage().read_bytes(f"{work_folder(kind, job_id, run)}/plan.json"))


def fanout_start(job: Job, plan: dict[str, Any], *, partitions: int, progress: int = 5,
                 message: str = "") -> dict[str, Any]:
    """Write the plan and start the chord; the job continues in the tasks (``CONTINUED``).
    A merge calls it again to start a next pass (``progress``/``message``: where it stands)."""
    kind = FANOUTS[job.kind]
    run = uuid.uuid4().hex[:12]
    plan = {**plan, "job": job.pk, "partitions": partitions, "progress": progress}
    kind.storage().write_bytes(f"{work_folder(kind, job.pk, run)}/plan.json",
                               json.dumps(plan, default=str).encode())
    job_progress(job, progress, message or f"fanning out over {partitions} partitions")
    partition_task = current_app.tasks["jobs.tasks.partition_task"]
    merge_task = current_app.tasks["jobs.tasks.merge_task"]
    chord([partition_task.s(job.pk, part, run) for part in range(partitions)])(
        merge_task.s(job.pk, run))
    return CONTINUED


def _running(job_id: int) -> Job | None:
    return Job.objects.filter(pk=job_id, state=JobState.RUNNING).first()


def _map_into_part(kind: FanoutKind, job_id: int, plan: dict[str, Any], part: int,
                   run: str) -> None:
    data = kind.map(plan, part)
    kind.storage().write_bytes(f"{work_folder(kind, job_id, run)}/{_part_name(kind, part)}", data)


def partition_run(*, job_id: int, part: int, run: str) -> int:
    """Map one partition into its part; returns the partition number."""
    job = _running(job_id)
    if job is None:  # failed or finished meanwhile: nothing to do
        return part
    kind = FANOUTS[job.kind]
    try:
        plan = read_plan(kind, job_id, run)
        _map_into_part(kind, job_id, plan, part, run)
    except Exception as exc:
        error = f"partition {part}: {internal_error(exc, f'job {job_id} partition {part}')}"
        job_fail_continued(job_id=job_id, error=error)
        raise PartitionFailed(error) from exc
    done = len(kind.storage().list_work(work_folder(kind, job_id, run), prefix="part-"))
    total = max(1, int(plan["partitions"]))
    low = int(plan.get("progress", 5))
    job_progress(job, low + int((80 - low) * min(done, total) / total),
                 f"partition {part} done ({done} of {total})")
    return part


def merge_run(*, job_id: int, run: str) -> None:
    """The callback: make missing parts, merge, finish the job, remove the work folder."""
    job = _running(job_id)
    if job is None:
        return
    kind = FANOUTS[job.kind]
    folder = work_folder(kind, job_id, run)
    store = kind.storage()

    def read_parts() -> Iterator[bytes]:
        present = set(store.list_work(folder, prefix="part-"))
        for part in range(plan["partitions"]):
            # A part missing here (a chord counted a redelivered task twice) is made now.
            if _part_name(kind, part) not in present:
                log.warning("job %s: partition %s missing at the merge, mapping it here",
                            job_id, part)
                _map_into_part(kind, job_id, plan, part, run)
        for p in range(plan["partitions"]):  # one part in memory at a time
            yield store.read_bytes(f"{folder}/{_part_name(kind, p)}")

    try:
        plan = read_plan(kind, job_id, run)  # once: read_parts and the merge share it
        result = kind.merge(job, plan, read_parts)
    except JobFailed as exc:  # as the single-process job: the result cannot be made
        job_fail_continued(job_id=job_id, error=str(exc))
        return
    except Exception as exc:
        job_fail_continued(job_id=job_id, error="merging partitions: "
                                                + internal_error(exc, f"job {job_id} merge"))
        raise
    if result is not CONTINUED:  # else the merge started the next pass
        job_finish(job, JobState.SUCCEEDED, result=result)
    store.remove_work(folder)
