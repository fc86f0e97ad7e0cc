"""The job machinery: create, dispatch on commit, claim atomically, report progress, finish.

A job is safe to run twice: a worker claims it with a conditional UPDATE (queued, or running
with a heartbeat older than the lease, meaning its worker died), and the handlers themselves
are idempotent (an import already published is finalized, not applied again).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Workspace

from .models import Job, JobState

log = logging.getLogger(__name__)

Handler = Callable[[Job], dict[str, Any]]
# The registry: each app registers its job kinds (imported from its AppConfig.ready()), so this
# machinery knows no domain and the runner dispatches by kind.
HANDLERS: dict[str, Handler] = {}
RUN_JOB_TASK = "jobs.tasks.run_job"


# What a job kind's record does when its job ends failed, wherever that is decided (the
# handler's own error, a partition or merge failure, the last retry given up): e.g. an import
# row that would otherwise stay "running". Registered like handlers, by the owning app.
FAILURE_HOOKS: dict[str, Callable[[Job], None]] = {}


def job_failure_hook(kind: str) -> Callable[[Callable[[Job], None]], Callable[[Job], None]]:
    """Register what to do with a job kind's record when its job fails."""

    def register(func: Callable[[Job], None]) -> Callable[[Job], None]:
        FAILURE_HOOKS[kind] = func
        return func

    return register


def _after_failure(job_id: int) -> None:
    job = Job.objects.filter(pk=job_id, state=JobState.FAILED).first()
    hook = FAILURE_HOOKS.get(job.kind) if job is not None else None
    if hook is not None:
        try:
            hook(job)
        except Exception:  # noqa: BLE001 - the job's own failure is already recorded
            log.exception("job %s: its failure hook failed", job_id)


def job_handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the function that does the work of a job kind."""

    def register(func: Handler) -> Handler:
        HANDLERS[kind] = func
        return func

    return register


class JobFailed(Exception):
    """A handler's expected failure: the job ends as failed with this message, no retry."""


# An absolute file path (not a URL's path, not a relative one): its folders are cut.
_SERVER_PATH = re.compile(r"(?<![\w.~:/-])/(?:[^\s'\"/:]+/)+([^\s'\"/:]*)")


def without_server_paths(text: str) -> str:
    """A message with every absolute file path cut to its last part (``…/name``)."""
    return _SERVER_PATH.sub(lambda found: "…/" + found.group(1), text)


def internal_error(exc: BaseException, what: str) -> str:
    """An unexpected failure: logged with its traceback under a new error id; returns what the
    job's readers see instead: the exception's type and first line (server paths cut) and the
    id, which an admin finds in the log."""
    error_id = uuid.uuid4().hex[:12]
    log.error("%s failed: error id %s", what, error_id, exc_info=exc)
    lines = str(exc).strip().splitlines()
    text = without_server_paths(lines[0]) if lines else ""
    shown = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return f"{shown[:500]} (error id {error_id})"


# What a handler returns when it handed the rest of the work to other tasks (a chord of one
# task per partition and a callback): the job stays running, and the callback ends it with
# ``job_finish`` (a failing partition task with ``job_fail_continued``).
CONTINUED: dict[str, Any] = {"continued": True}


def job_create(
    *, workspace: Workspace, kind: str, params: dict[str, Any], input_hash: str,
    user: object | None = None,
) -> Job:
    """Create a queued job and send it to a worker once the transaction commits."""
    job = Job.objects.create(workspace=workspace, kind=kind, params=params,
                             input_hash=input_hash, created_by=user)
    job_dispatch(job_id=job.pk)
    return job


class BrokerUnavailable(Exception):
    """The task broker could not take the job: it was recorded as failed, nothing ran."""


# Publishing gives up after ~1.5 s when the broker does not answer (the request then says so).
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0.25, "interval_step": 0.5,
                 "interval_max": 1.0}


def job_dispatch(*, job_id: int) -> None:
    transaction.on_commit(lambda: job_send(job_id=job_id))


def job_send(*, job_id: int) -> None:
    """Send the job's message. If the broker is down, the job ends failed with that reason
    (a new start of the same input creates a new job) and ``BrokerUnavailable`` is raised:
    the API answers 503."""
    from celery import current_app
    from kombu.exceptions import OperationalError as KombuOperationalError

    try:
        # By name: the services do not import the task module that calls them.
        current_app.tasks[RUN_JOB_TASK].apply_async((job_id,), retry=True,
                                                    retry_policy=PUBLISH_RETRY)
    except (KombuOperationalError, OSError) as exc:
        log.error("job %s: the broker is unavailable: %s", job_id, exc)
        Job.objects.filter(pk=job_id, state=JobState.QUEUED).update(
            state=JobState.FAILED, finished_at=timezone.now(),
            error=f"not started: the task queue (broker) is unavailable: {exc}"[:2000])
        raise BrokerUnavailable("The job queue is unavailable; nothing was started. "
                                "Try again in a moment.") from exc


def job_claim(*, job_id: int) -> Job | None:
    """Atomically take a job; None when it is done or another live worker holds it."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.JOB_LEASE_SECONDS)
    claimed = (
        Job.objects.filter(pk=job_id)
        .filter(Q(state=JobState.QUEUED) | Q(state=JobState.RUNNING, heartbeat_at__lt=stale))
        .update(state=JobState.RUNNING, started_at=now, heartbeat_at=now,
                attempts=F("attempts") + 1, error="")
    )
    if not claimed:
        return None
    return Job.objects.get(pk=job_id)


def job_progress(job: Job, progress: int, message: str = "") -> None:
    """Record progress (0-100) and renew the lease."""
    job.progress = max(0, min(100, int(progress)))
    job.message = message[:300]
    job.heartbeat_at = timezone.now()
    Job.objects.filter(pk=job.pk, state=JobState.RUNNING).update(
        progress=job.progress, message=job.message, heartbeat_at=job.heartbeat_at
    )


def job_run(*, job_id: int) -> Job | None:
    """Claim and run a job to its end. Transient errors propagate so the task retries."""
    job = job_claim(job_id=job_id)
    if job is None:
        log.info("job %s not claimed (done or held by a live worker)", job_id)
        return None
    handler = HANDLERS.get(job.kind)
    if handler is None:
        return job_finish(job, JobState.FAILED, error=f"no handler for job kind {job.kind!r}")
    try:
        result = handler(job)
    except JobFailed as exc:
        return job_finish(job, JobState.FAILED, error=str(exc))
    except (ConnectionError, TimeoutError, OSError) as exc:
        if _is_transient(exc):
            job_release(job, f"retrying after: {exc}")
            raise
        return job_finish(job, JobState.FAILED, error=internal_error(exc, f"job {job_id}"))
    except Exception as exc:  # noqa: BLE001 - a failed job must say why, whatever happened
        from django.db import InterfaceError, OperationalError

        if isinstance(exc, OperationalError | InterfaceError):
            job_release(job, f"retrying after database error: {exc}")
            raise
        return job_finish(job, JobState.FAILED, error=internal_error(exc, f"job {job_id}"))
    if result is CONTINUED:
        log.info("job %s continues in other tasks", job_id)
        return job
    return job_finish(job, JobState.SUCCEEDED, result=result)


def job_fail_continued(*, job_id: int, error: str) -> None:
    """A continued job's task failed: the job ends as failed (unless already finished)."""
    Job.objects.filter(pk=job_id, state=JobState.RUNNING).update(
        state=JobState.FAILED, error=error[:5000], finished_at=timezone.now())
    _after_failure(job_id)


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, ConnectionError | TimeoutError)


def job_release(job: Job, message: str) -> None:
    """Put a running job back in the queue state so the retried task can claim it."""
    Job.objects.filter(pk=job.pk, state=JobState.RUNNING).update(
        state=JobState.QUEUED, message=message[:300]
    )


def job_finish(job: Job, state: str, *, result: dict[str, Any] | None = None,
               error: str = "") -> Job:
    job.state = state
    job.finished_at = timezone.now()
    job.error = error
    if state == JobState.SUCCEEDED:
        # Keep a handler's closing message (set at 100%); otherwise the last step's is stale.
        if job.progress < 100 or not job.message:
            job.message = "done"
        job.progress = 100
    job.result = result or {}
    Job.objects.filter(pk=job.pk).update(
        state=job.state, finished_at=job.finished_at, error=job.error, progress=job.progress,
        message=job.message, result=job.result,
    )
    if state == JobState.FAILED:
        _after_failure(job.pk)
    return job


def job_give_up(*, job_id: int, error: str) -> None:
    """After the last retry: the job ends as failed."""
    Job.objects.filter(pk=job_id).exclude(state__in=[JobState.SUCCEEDED]).update(
        state=JobState.FAILED, error=error, finished_at=timezone.now()
    )
    _after_failure(job_id)
