"""Uploads are kept per workspace, and an erasure (or a pseudonymized import) deletes only its
own workspace's raw files (issue 16, item 11)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command

from events import privacy, services
from events.models import Dataset, Erasure, Import

pytestmark = pytest.mark.django_db

EVENTS = ("user_id,event,timestamp\n" + "u1,signup,2025-01-01T00:00:00Z\n"
          "u2,signup,2025-01-01T00:00:00Z\nu2,buy,2025-01-02T00:00:00Z\n").encode()


def import_into(api, user, dataset: Dataset, capture, data: bytes = EVENTS) -> Import:  # type: ignore[no-untyped-def]
    upload = io.BytesIO(data)
    upload.name = "events.csv"
    with capture(execute=True):
        r = api(user).post("/api/v1/imports/", {"dataset": dataset.pk, "events": upload},
                           format="multipart")
    assert r.status_code == 202, r.content
    record = Import.objects.get(pk=r.json()["id"])
    assert record.status == "succeeded", record.error
    return record


def erase(api, user, dataset: Dataset, user_id: str, capture) -> Erasure:  # type: ignore[no-untyped-def]
    with capture(execute=True):
        r = api(user).post(f"/api/v1/datasets/{dataset.pk}/erase/",
                           {"user_id": user_id, "reason": "DSAR"}, format="json")
    assert r.status_code == 202, r.content
    erasure = Erasure.objects.get(pk=r.json()["id"])
    assert erasure.job.state == "succeeded", erasure.job.error
    return erasure


@pytest.fixture
def two(team, api, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """The same bytes imported into a dataset of acme and one of other."""
    ours = Dataset.objects.create(workspace=team["acme"], name="app")
    theirs = Dataset.objects.create(workspace=team["other"], name="app")
    return (ours, import_into(api, team["admin"], ours, django_capture_on_commit_callbacks),
            theirs, import_into(api, team["outsider"], theirs,
                                django_capture_on_commit_callbacks))


def test_uploads_are_stored_in_a_folder_per_workspace(team, two):
    ours, mine, theirs, their_import = two
    root = services.get_store().root / "uploads"
    assert Path(mine.events_path).parent == root / str(team["acme"].pk)
    assert Path(their_import.events_path).parent == root / str(team["other"].pk)
    assert Path(mine.events_path).name == Path(their_import.events_path).name  # same sha256
    assert Path(mine.events_path).read_bytes() == Path(their_import.events_path).read_bytes() \
        == EVENTS


def test_an_erasure_leaves_another_workspaces_upload_and_import_intact(
        team, api, two, django_capture_on_commit_callbacks):
    ours, mine, theirs, their_import = two
    erasure = erase(api, team["admin"], ours, "u1", django_capture_on_commit_callbacks)
    assert erasure.counts["results"]["raw_uploads_deleted"] == 1
    assert not Path(mine.events_path).exists()  # ours mentioned u1: deleted
    # Theirs: the raw upload, the import and the stored events are as they were.
    assert Path(their_import.events_path).read_bytes() == EVENTS
    their_import.refresh_from_db()
    assert (their_import.status, their_import.rows_added) == ("succeeded", 3)
    stored = services.get_store().read_events(theirs.store_key)
    assert sorted(stored["user_id"]) == ["u1", "u2", "u2"]


def test_a_shared_upload_from_before_the_per_workspace_folders_is_left_to_the_other_workspace(
        team, api, two, django_capture_on_commit_callbacks):
    """Rows made before uploads were per workspace point into one shared folder."""
    ours, mine, theirs, their_import = two
    legacy = services.get_store().root / "uploads" / Path(mine.events_path).name
    shutil.copyfile(mine.events_path, legacy)
    Import.objects.filter(pk__in=[mine.pk, their_import.pk]).update(events_path=str(legacy))
    erasure = erase(api, team["admin"], ours, "u1", django_capture_on_commit_callbacks)
    assert erasure.counts["results"].get("raw_uploads_deleted", 0) == 0
    assert legacy.read_bytes() == EVENTS


def test_a_pseudonymized_import_keeps_a_shared_upload_another_workspace_points_to(
        team, two, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setenv(privacy.KEY_ENV, "test-pseudonymization-key-0123456789")
    ours, mine, theirs, their_import = two
    hashed = Dataset.objects.create(workspace=team["acme"], name="hashed")
    legacy = Path(their_import.events_path)  # as a row from before the folders would share it
    with django_capture_on_commit_callbacks(execute=True):
        record, _ = services.import_create(dataset=hashed, user=None,
                                           events=(legacy, "events.csv"),
                                           options={"pseudonymize": True})
    record.refresh_from_db()
    assert record.status == "succeeded", record.error
    assert legacy.read_bytes() == EVENTS


def test_the_command_line_stores_into_the_workspace_folder(team, tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes(EVENTS)
    call_command("import_events", workspace="other", events=path)
    record = Import.objects.get()
    assert Path(record.events_path).parent == (services.get_store().root / "uploads"
                                               / str(team["other"].pk))
