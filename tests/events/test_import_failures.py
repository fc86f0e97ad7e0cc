"""An import whose job fails for an unexpected reason, or gives up after its retries, says so
on its row instead of staying running (issue 16: records follow their jobs)."""

from __future__ import annotations

import pytest

from events import services
from events.models import Dataset, Import
from jobs.models import Job
from jobs.services import job_give_up

pytestmark = pytest.mark.django_db

EVENTS = b"user_id,event,timestamp\nu1,view,2025-01-02T10:00:00Z\n"


def _queue(team, tmp_path, django_capture_on_commit_callbacks, execute):  # type: ignore[no-untyped-def]
    dataset = Dataset.objects.create(workspace=team["acme"], name="events")
    path = tmp_path / "e.csv"
    path.write_bytes(EVENTS)
    with django_capture_on_commit_callbacks(execute=execute):
        record, _ = services.import_create(dataset=dataset, user=None,
                                           events=(path, "e.csv"))
    record.refresh_from_db()
    return record


def test_an_unexpected_error_fails_the_import_row_with_the_jobs_message(
        team, tmp_path, monkeypatch, django_capture_on_commit_callbacks):
    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(services, "parse_events", broken)
    record = _queue(team, tmp_path, django_capture_on_commit_callbacks, execute=True)
    job = Job.objects.get(pk=record.job_id)
    assert job.state == "failed"
    assert record.status == "failed" and record.finished_at is not None
    assert record.error["code"] == "failed"
    assert record.error["message"] == job.error
    assert "RuntimeError: disk on fire" in record.error["message"]


def test_a_job_given_up_after_its_retries_fails_its_import(
        team, tmp_path, django_capture_on_commit_callbacks):
    record = _queue(team, tmp_path, django_capture_on_commit_callbacks, execute=False)
    assert record.status == "pending"
    job_give_up(job_id=record.job_id, error="gave up after 5 retries: database is locked")
    record.refresh_from_db()
    assert (record.status, record.error["message"]) == (
        "failed", "gave up after 5 retries: database is locked")


def test_a_rejected_import_stays_rejected(team, tmp_path, django_capture_on_commit_callbacks):
    dataset = Dataset.objects.create(workspace=team["acme"], name="events")
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with django_capture_on_commit_callbacks(execute=True):
        record, _ = services.import_create(dataset=dataset, user=None,
                                           events=(path, "empty.csv"))
    record.refresh_from_db()
    assert record.status == "rejected" and record.error["code"] == "empty_file"
    assert Import.objects.get(pk=record.pk).status == "rejected"
