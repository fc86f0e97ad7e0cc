"""A failed job tells its readers what failed and an error id, never a traceback or a server
path; the traceback goes to the log under the same id (issue 16, item 8)."""

from __future__ import annotations

import logging
import re

import pytest

from jobs.models import Job
from jobs.services import HANDLERS, job_run

pytestmark = pytest.mark.django_db

SERVER_PATH = "/srv/segment-planner/var/event-store/uploads/3/9f86d081884c7d65.csv"
ERROR_ID = re.compile(r"\(error id ([0-9a-f]{12})\)$")


@pytest.fixture
def failing(team):  # type: ignore[no-untyped-def]
    def make(exc: Exception) -> Job:
        def run(job):  # type: ignore[no-untyped-def]
            raise exc

        HANDLERS["test-failing"] = run
        return Job.objects.create(workspace=team["acme"], kind="test-failing", input_hash="h")

    yield make
    HANDLERS.pop("test-failing", None)


@pytest.mark.parametrize(("exc", "shown"), [
    (KeyError(f"no column in {SERVER_PATH}"), "KeyError: 'no column in …/9f86d081884c7d65.csv'"),
    (FileNotFoundError(2, "No such file or directory", SERVER_PATH),
     "FileNotFoundError: [Errno 2] No such file or directory: '…/9f86d081884c7d65.csv'"),
    (ZeroDivisionError("division by zero"), "ZeroDivisionError: division by zero"),
])
def test_a_failed_job_shows_a_message_and_an_error_id_and_logs_the_traceback(
        failing, team, api, caplog, exc, shown):
    job = failing(exc)
    with caplog.at_level(logging.ERROR, logger="jobs.services"):
        job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == "failed"
    found = ERROR_ID.search(job.error)
    assert found, job.error
    assert job.error == f"{shown} (error id {found.group(1)})"
    assert "Traceback" not in job.error and "/srv/" not in job.error
    # The log line names the job and the id, with the traceback, for the admin.
    [record] = [r for r in caplog.records if found.group(1) in r.getMessage()]
    assert f"job {job.pk}" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[1] is exc
    # A viewer reads the same message, nothing more.
    body = api(team["viewer"]).get(f"/api/v1/jobs/{job.pk}/").json()
    assert body["error"] == job.error


@pytest.mark.parametrize(("text", "shown"), [
    ("open '/var/lib/sp/x.parquet' failed", "open '…/x.parquet' failed"),
    ("at /a/b/ and /c", "at …/ and /c"),
    ("see https://example.org/a/b and s3://bucket/a/b", "see https://example.org/a/b and "
                                                        "s3://bucket/a/b"),
    ("relative data/a/b.csv stays; 10/20/30 too", "relative data/a/b.csv stays; 10/20/30 too"),
])
def test_server_paths_are_cut_to_their_last_part(text, shown):
    from jobs.services import without_server_paths

    assert without_server_paths(text) == shown
