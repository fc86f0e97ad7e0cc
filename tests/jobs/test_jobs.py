"""The job machinery: atomic claim, lease, failure and retry states."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from jobs.models import Job
from jobs.services import HANDLERS, JobFailed, job_claim, job_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(team):
    return Job.objects.create(workspace=team["acme"], kind="test-kind", input_hash="h")


@pytest.fixture
def handler():
    calls: list[int] = []

    def register(behaviour):  # type: ignore[no-untyped-def]
        def run(job):  # type: ignore[no-untyped-def]
            calls.append(job.pk)
            return behaviour(job)

        HANDLERS["test-kind"] = run
        return calls

    yield register
    HANDLERS.pop("test-kind", None)


def test_a_job_is_claimed_once(job):
    first = job_claim(job_id=job.pk)
    second = job_claim(job_id=job.pk)
    assert first is not None and first.state == "running" and first.attempts == 1
    assert second is None


def test_a_running_job_with_a_stale_heartbeat_can_be_reclaimed(job, settings):
    settings.JOB_LEASE_SECONDS = 60
    assert job_claim(job_id=job.pk) is not None
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=30))
    assert job_claim(job_id=job.pk) is None  # within the lease: a live worker holds it
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=61))
    again = job_claim(job_id=job.pk)
    assert again is not None and again.attempts == 2


def test_running_a_finished_job_again_does_nothing(job, handler):
    calls = handler(lambda j: {"ok": 1})
    done = job_run(job_id=job.pk)
    assert done.state == "succeeded" and done.result == {"ok": 1}
    assert job_run(job_id=job.pk) is None
    assert calls == [job.pk]


def test_an_expected_failure_ends_the_job_with_its_message(job, handler):
    def fail(j):  # type: ignore[no-untyped-def]
        raise JobFailed("the file is empty")

    handler(fail)
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.state, job.error) == ("failed", "the file is empty")
    assert job.finished_at is not None


def test_a_database_outage_puts_the_job_back_for_a_retry(job, handler):
    def outage(j):  # type: ignore[no-untyped-def]
        raise OperationalError("server closed the connection unexpectedly")

    handler(outage)
    with pytest.raises(OperationalError):
        job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == "queued"
    assert "retrying" in job.message
    assert job_claim(job_id=job.pk) is not None  # the retried task can take it


def test_an_unexpected_error_fails_the_job_with_the_reason(job, handler):
    handler(lambda j: 1 / 0)
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == "failed"
    assert job.error.startswith("ZeroDivisionError")
