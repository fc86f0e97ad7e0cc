"""Faults with a real Celery worker on Redis and PostgreSQL (issue 8, Faults).

* a worker killed mid-refresh and mid-optimizer-run (inside the transaction that stores the
  result): the job is redelivered, completes once, no duplicate or partial rows, and the
  ``Job`` row tells the truth throughout;
* the broker unavailable when a job is started: the API answers 503 with a clear message, the
  job is recorded as failed with the reason, nothing else is written, and a new start works
  once the broker is back;
* the database unavailable to the worker (a lock the job needs cannot be taken:
  ``lock_timeout``): the task retries with exponential backoff and the job ends failed after
  the limit; nothing half-written;
* two refreshes or two optimizer runs started at the same moment on the same input: one job.

The import case (worker killed after publishing) is in test_worker.py.
"""

from __future__ import annotations

import re
import signal
import threading

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections
from worker_support import _db_url, start_worker, stop, wait_for

from events.models import Dataset
from jobs.models import Job
from planner import services as planner_services
from planner.models import Allocation, Investment, OptimizationRun, Scenario
from segments import segment_services
from segments.models import Refresh, Segment, SegmentSnapshot

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

EVENTS = "user_id,event,timestamp,revenue\n" + "".join(
    f"u{i},{'purchase' if i % 3 == 0 else 'view'},2025-01-{1 + i % 28:02d}T10:00:00Z,"
    f"{'12.5' if i % 3 == 0 else ''}\n" for i in range(300))
USERS = "user_id,signup_time,plan\n" + "".join(
    f"u{i},2025-01-01T00:00:00Z,{'pro' if i % 2 else 'free'}\n" for i in range(300))


@pytest.fixture
def broker():  # type: ignore[no-untyped-def]
    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        pytest.skip("fault tests need Redis (CELERY_BROKER_URL=redis://...)")
    from config.celery import app

    app.control.purge()
    return url


@pytest.fixture
def postgres():  # type: ignore[no-untyped-def]
    if connection.vendor != "postgresql":
        pytest.skip("fault tests need PostgreSQL (DATABASE_URL=postgres://...)")


@pytest.fixture
def dataset(postgres, broker, team, tmp_path):  # type: ignore[no-untyped-def]
    from config.celery import app

    (tmp_path / "e.csv").write_text(EVENTS)
    (tmp_path / "u.csv").write_text(USERS)
    app.conf.task_always_eager = True  # the import itself is not under test here
    try:
        call_command("import_events", workspace="acme", events=tmp_path / "e.csv",
                     users=tmp_path / "u.csv", dataset="app")
    finally:
        app.conf.task_always_eager = False
    ds = Dataset.objects.get(workspace=team["acme"], name="app")
    team["acme"].min_segment_size = 1
    team["acme"].save()
    for name, rule in [("viewers", {"event": "view", "min_count": 1}),
                       ("buyers", {"event": "purchase", "min_count": 1})]:
        Segment.objects.create(workspace=team["acme"], dataset=ds, name=name, definition=rule)
    return ds


@pytest.fixture
def scenario(postgres, team):  # type: ignore[no-untyped-def]
    ws = team["acme"]
    for i, (cost, value) in enumerate([(60, 200.0), (20, 40.0), (50, 180.0), (30, 90.0)]):
        Investment.objects.create(workspace=ws, title=f"inv {i}", cost=cost,
                                  roadmap="experimental" if i == 1 else "core",
                                  expected_value=value, value_low=value / 2, value_high=value * 2)
    return Scenario.objects.create(workspace=ws, name="faults", budget=120, frontier_points=2)


# ----- (a) a worker killed mid-job ---------------------------------------------------------
def test_a_worker_killed_mid_refresh_ends_with_one_refresh(dataset, broker, tmp_path):
    marker = tmp_path / "fault-fired"
    job = segment_services.refresh_start(dataset=dataset)
    doomed = start_worker(broker, tmp_path, "doomed",
                          SEGMENT_PLANNER_FAULT=f"refresh-in-transaction:{marker}")
    try:
        doomed.wait(timeout=90)
    finally:
        stop(doomed)
    assert doomed.returncode == -signal.SIGKILL and marker.exists()
    # Killed inside the transaction that stores the snapshots: nothing of it is visible, and
    # the row says the job was running (its worker died; the lease will expire).
    job.refresh_from_db()
    assert (job.state, job.attempts) == ("running", 1)
    assert not Refresh.objects.filter(dataset=dataset).exists()
    assert not SegmentSnapshot.objects.filter(segment__dataset=dataset).exists()

    rescuer = start_worker(broker, tmp_path, "rescuer")
    try:
        wait_for(lambda: Job.objects.get(pk=job.pk).state == "succeeded",
                 what="the redelivered refresh to finish")
    finally:
        stop(rescuer)
    job.refresh_from_db()
    assert (job.state, job.attempts, job.progress) == ("succeeded", 2, 100)
    refresh = Refresh.objects.get(dataset=dataset)
    assert refresh.job_id == job.pk and refresh.finished_at is not None
    snaps = SegmentSnapshot.objects.filter(segment__dataset=dataset)
    assert snaps.count() == 2 and {s.refresh_id for s in snaps} == {refresh.pk}
    assert {s.segment.name: s.size for s in snaps} == {"viewers": 200, "buyers": 100}


def test_a_worker_killed_mid_optimizer_run_ends_with_one_allocation(scenario, broker, tmp_path):
    marker = tmp_path / "fault-fired"
    run = planner_services.run_start(scenario=scenario)
    doomed = start_worker(broker, tmp_path, "doomed",
                          SEGMENT_PLANNER_FAULT=f"optimize-in-transaction:{marker}")
    try:
        doomed.wait(timeout=90)
    finally:
        stop(doomed)
    assert doomed.returncode == -signal.SIGKILL and marker.exists()
    job = Job.objects.get(pk=run.job_id)
    assert (job.state, job.attempts) == ("running", 1)
    assert not Allocation.objects.filter(run=run).exists()
    run.refresh_from_db()
    assert run.finished_at is None and run.status == "running"  # it follows its job

    rescuer = start_worker(broker, tmp_path, "rescuer")
    try:
        wait_for(lambda: Job.objects.get(pk=run.job_id).state == "succeeded",
                 what="the redelivered optimizer run to finish")
    finally:
        stop(rescuer)
    job.refresh_from_db()
    run.refresh_from_db()
    assert (job.state, job.attempts) == ("succeeded", 2)
    assert run.status == "optimal" and run.finished_at is not None
    assert Allocation.objects.filter(run=run).count() == 4  # one row per item, once
    assert OptimizationRun.objects.filter(scenario=scenario).count() == 1


# ----- (b) broker or database unavailable ----------------------------------------------------
def _use_broker(url: str) -> None:
    """Point this process's Celery app at another broker URL (fresh producer pool; kombu's
    global pool registry keeps the old one for when the URL comes back)."""
    from config.celery import app

    app.conf.broker_url = app.conf.broker_write_url = app.conf.broker_read_url = url
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def dead_broker(broker):  # type: ignore[no-untyped-def]
    """A broker URL on a port nobody listens on, for this process only."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _use_broker(f"redis://127.0.0.1:{port}/0")
    yield
    _use_broker(broker)


def test_broker_down_the_api_says_503_and_nothing_is_half_written(scenario, dead_broker, api,
                                                                  team):
    client = api(team["analyst"])
    res = client.post(f"/api/v1/scenarios/{scenario.pk}/run/")
    assert res.status_code == 503, res.content
    assert res.json()["code"] == "broker_unavailable"
    assert "queue is unavailable" in res.json()["detail"]
    assert res["Retry-After"] == "30"
    # The truth is recorded: the job failed without running; the run is marked failed.
    job = Job.objects.get(kind="optimize")
    assert job.state == "failed" and job.attempts == 0 and "broker" in job.error
    run = OptimizationRun.objects.get(scenario=scenario)
    assert run.status == "failed" and not Allocation.objects.exists()

    # A refresh start fails the same way (no pending job left behind to be "reused").
    ds = Dataset.objects.create(workspace=team["acme"], name="d")
    res = client.post("/api/v1/refreshes/", {"dataset": ds.pk}, format="json")
    assert res.status_code == 503
    assert not Job.objects.filter(kind="refresh", state__in=["queued", "running"]).exists()


def test_broker_down_a_page_says_so_with_a_503(scenario, dead_broker, client, team):
    client.force_login(team["analyst"])
    res = client.post("/w/acme/scenarios/", {"run": scenario.pk})
    assert res.status_code == 503 and res["Retry-After"] == "30"
    page = res.content.decode()
    assert "could not be started" in page and "queue is unavailable" in page
    assert Job.objects.get(kind="optimize").state == "failed"


def test_after_the_broker_is_back_a_new_start_runs(scenario, broker, api, team, tmp_path):
    client = api(team["analyst"])
    _use_broker("redis://127.0.0.1:1/0")
    try:
        assert client.post(f"/api/v1/scenarios/{scenario.pk}/run/").status_code == 503
    finally:
        _use_broker(broker)
    res = client.post(f"/api/v1/scenarios/{scenario.pk}/run/")
    assert res.status_code == 202
    worker = start_worker(broker, tmp_path, "w")
    try:
        wait_for(lambda: Job.objects.get(pk=res.json()["job"]).state == "succeeded",
                 what="the new run to finish")
    finally:
        stop(worker)
    assert OptimizationRun.objects.filter(scenario=scenario).count() == 2
    assert OptimizationRun.objects.get(pk=res.json()["id"]).status == "optimal"


def _locked(table: str):  # type: ignore[no-untyped-def]
    """A second connection holding an exclusive lock on a table until closed."""
    conn = psycopg.connect(_db_url())
    conn.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
    return conn


def test_database_unavailable_to_the_worker_retries_with_backoff_then_fails(
        scenario, broker, tmp_path):
    run = planner_services.run_start(scenario=scenario)
    lock = _locked(Allocation._meta.db_table)
    # The worker cannot take the lock it needs (lock_timeout 300 ms: a database error).
    worker = start_worker(broker, tmp_path, "w", JOB_MAX_RETRIES="2", JOB_RETRY_BACKOFF="1",
                          DATABASE_URL=_db_url() + "?options=-c%20lock_timeout%3D300")
    try:
        wait_for(lambda: Job.objects.get(pk=run.job_id).state == "failed", timeout=60,
                 what="the job to give up")
    finally:
        lock.close()
        stop(worker)
    job = Job.objects.get(pk=run.job_id)
    assert job.attempts == 3  # the first try and 2 retries
    assert "gave up after 2 retries" in job.error and "lock" in job.error
    log = (tmp_path / "w.log").read_text()
    assert re.findall(r"Retry in (\d+)s", log) == ["1", "2"]  # exponential backoff
    assert not Allocation.objects.filter(run=run).exists()
    run.refresh_from_db()
    assert run.finished_at is None
    # A new start is not blocked by the failed one.
    again = planner_services.run_start(scenario=scenario)
    assert again.pk != run.pk


def test_database_back_before_the_limit_the_job_succeeds(scenario, broker, tmp_path):
    run = planner_services.run_start(scenario=scenario)
    lock = _locked(Allocation._meta.db_table)
    worker = start_worker(broker, tmp_path, "w", JOB_MAX_RETRIES="3", JOB_RETRY_BACKOFF="1",
                          DATABASE_URL=_db_url() + "?options=-c%20lock_timeout%3D300")
    try:
        wait_for(lambda: Job.objects.get(pk=run.job_id).attempts >= 2, timeout=60,
                 what="a retry")
        lock.close()
        wait_for(lambda: Job.objects.get(pk=run.job_id).state == "succeeded", timeout=60,
                 what="the job to succeed")
    finally:
        lock.close()
        stop(worker)
    assert Allocation.objects.filter(run=run).count() == 4


# ----- (c) two identical starts at the same moment -------------------------------------------
def _together(func, n: int = 2) -> list:  # type: ignore[no-untyped-def]
    """Call func in n threads released at the same moment (each with its own connection)."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results[i] = func()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def test_two_optimizer_runs_started_together_make_one_run(scenario, broker):
    for _ in range(3):
        runs = _together(lambda: planner_services.run_start(scenario=scenario), n=4)
        assert len({r.pk for r in runs}) == 1
    assert OptimizationRun.objects.filter(scenario=scenario).count() == 1
    assert Job.objects.filter(kind="optimize").count() == 1


def test_two_refreshes_started_together_make_one_job(dataset, broker):
    for _ in range(3):
        jobs = _together(lambda: segment_services.refresh_start(dataset=dataset), n=4)
        assert len({j.pk for j in jobs}) == 1
    assert Job.objects.filter(kind="refresh").count() == 1

