"""Celery tasks: thin. Each receives a job id and hands it to the job machinery."""

from __future__ import annotations

import os

from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import fanout
from .services import internal_error, job_give_up, job_run

# Transient failures (database, network) retry with exponential backoff: 2, 4, 8, ... s.
MAX_RETRIES = int(os.environ.get("JOB_MAX_RETRIES", "5"))
RETRY_BACKOFF = int(os.environ.get("JOB_RETRY_BACKOFF", "2"))


@shared_task(
    name="jobs.tasks.run_job",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError, ConnectionError, TimeoutError),
    retry_backoff=RETRY_BACKOFF,
    retry_backoff_max=60,
    retry_jitter=False,
    max_retries=MAX_RETRIES,
)
def run_job(self, job_id: int) -> None:
    try:
        job_run(job_id=job_id)
    except Exception as exc:
        if self.request.retries >= MAX_RETRIES:
            job_give_up(job_id=job_id, error=f"gave up after {MAX_RETRIES} retries: "
                                             + internal_error(exc, f"job {job_id}"))
        raise


@shared_task(name="jobs.tasks.partition_task", acks_late=True, ignore_result=False)
def partition_task(job_id: int, part: int, run: str) -> int:
    """Map one store partition of a fanned-out job (see ``jobs.fanout``)."""
    return fanout.partition_run(job_id=job_id, part=part, run=run)


@shared_task(name="jobs.tasks.merge_task", acks_late=True)
def merge_task(parts: list[int], job_id: int, run: str) -> None:
    """The chord's callback: merge the partitions' parts and finish the job."""
    fanout.merge_run(job_id=job_id, run=run)
