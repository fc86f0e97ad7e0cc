"""Jobs through a real Celery worker on Redis, including a worker killed mid-import."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from django.conf import settings
from worker_support import start_worker, stop, wait_for

from events import services
from events.models import Dataset, Import
from jobs.models import Job

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROWS = 3000


@pytest.fixture
def broker():
    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        pytest.skip("worker tests need Redis (CELERY_BROKER_URL=redis://...)")
    from config.celery import app

    app.control.purge()
    return url


def events_file(tmp_path: Path) -> Path:
    lines = ["user_id,event,timestamp,revenue"]
    for i in range(ROWS):
        lines.append(f"u{i % 500},e{i % 7},2025-03-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z,")
    path = tmp_path / "events.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def queue_import(tmp_path: Path, team) -> Import:  # type: ignore[no-untyped-def]
    dataset = Dataset.objects.create(workspace=team["acme"], name="worker")
    path = events_file(tmp_path)
    with open(path, "rb") as handle:
        stored = services.save_upload(handle, name="events.csv", workspace=team["acme"])
    record, created = services.import_create(dataset=dataset, user=None,
                                             events=(stored[0], "events.csv"))
    assert created
    return record


def test_an_import_runs_through_a_real_worker(broker, tmp_path, team):
    worker = start_worker(broker, tmp_path, "w1")
    try:
        record = queue_import(tmp_path, team)
        wait_for(lambda: Import.objects.get(pk=record.pk).status == "succeeded",
                 what="import to succeed")
    finally:
        stop(worker)
    record.refresh_from_db()
    job = Job.objects.get(pk=record.job_id)
    assert (job.state, job.progress, job.attempts) == ("succeeded", 100, 1)
    assert job.started_at <= job.finished_at
    assert record.rows_added == ROWS
    stored = services.get_store().read_events(record.dataset.store_key)
    assert len(stored) == ROWS


def test_a_worker_killed_mid_import_ends_complete_exactly_once(broker, tmp_path, team):
    marker = tmp_path / "fault-fired"
    doomed = start_worker(broker, tmp_path, "doomed",
                          SEGMENT_PLANNER_FAULT=f"import-after-publish:{marker}")
    record = queue_import(tmp_path, team)
    try:
        doomed.wait(timeout=90)
    finally:
        stop(doomed)
    assert doomed.returncode == -signal.SIGKILL
    assert marker.exists()
    # The row tells the truth: the job was running when its worker died; the events are
    # published in the store but the import is not finalized.
    job = Job.objects.get(pk=record.job_id)
    assert (job.state, job.attempts) == ("running", 1)
    assert Import.objects.get(pk=record.pk).status == "running"
    version = services.get_store().current(record.dataset.store_key)
    assert version is not None and version.number == 1

    rescuer = start_worker(broker, tmp_path, "rescuer")
    try:
        wait_for(lambda: Import.objects.get(pk=record.pk).status == "succeeded",
                 what="the redelivered import to finish")
    finally:
        stop(rescuer)
    record.refresh_from_db()
    job.refresh_from_db()
    assert (job.state, job.attempts) == ("succeeded", 2)
    assert record.rows_added == ROWS
    store = services.get_store()
    assert store.current(record.dataset.store_key).number == 1  # no second version
    stored = store.read_events(record.dataset.store_key)
    assert len(stored) == ROWS
    assert not stored.duplicated(["user_id", "event", "timestamp"]).any()
    dataset = Dataset.objects.get(pk=record.dataset_id)
    assert (dataset.total_events, dataset.version) == (ROWS, 1)
