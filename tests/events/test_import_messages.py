"""A rejected import names the file the user uploaded, never the stored copy (its sha256 name)
or a server path (issue 16, items 8 and 10)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from events.models import Dataset, Import

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 40


def upload(team, api, capture, name: str, data: bytes, field: str = "events") -> Import:  # type: ignore[no-untyped-def]
    dataset, _ = Dataset.objects.get_or_create(workspace=team["acme"], name="app")
    handle = io.BytesIO(data)
    handle.name = name
    with capture(execute=True):
        r = api(team["analyst"]).post("/api/v1/imports/", {"dataset": dataset.pk, field: handle},
                                      format="multipart")
    assert r.status_code == 202, r.content
    return Import.objects.get(pk=r.json()["id"])


def assert_names_only_the_users_file(record: Import, name: str) -> None:
    stored = Path(record.events_path or record.users_path)
    shown = [record.error["message"], record.error["where"], record.job.error]
    for text in shown:
        assert stored.stem not in text, text  # the sha256 of the stored copy
        assert str(settings.EVENT_STORE) not in text and "/uploads" not in text, text
    assert record.error["where"].startswith(name), record.error
    assert name in record.job.error


@pytest.mark.parametrize(("name", "data", "code", "message", "where"), [
    ("my events.parquet", b"PAR1" + b"not really parquet" * 4, "malformed_parquet",
     "the Parquet file cannot be read: Could not open Parquet input source 'my events.parquet':"
     " Parquet magic bytes not found in footer. Either the file is corrupted or this is not a "
     "parquet file.", "my events.parquet"),
    ("header only.csv", b"user_id,event,timestamp\n", "empty_file",
     "the file has a header but no rows", "header only.csv"),
    ("screenshot.csv", PNG, "wrong_format", "the file is a PNG image, not CSV, Parquet or JSON "
     "Lines", "screenshot.csv, byte 0"),
    # Stored decompressed (a .csv copy), named as uploaded.
    ("export.csv.gz", gzip.compress(b"user_id,event,timestamp\n"), "empty_file",
     "the file has a header but no rows", "export.csv.gz"),
])
def test_rejections_name_the_uploaded_file(team, api, django_capture_on_commit_callbacks,
                                           name, data, code, message, where):
    record = upload(team, api, django_capture_on_commit_callbacks, name, data)
    assert record.status == "rejected", record.error
    assert record.error["code"] == code, record.error
    assert (record.error["message"], record.error["where"]) == (message, where)
    assert_names_only_the_users_file(record, name)
    assert record.job.error == f"rejected: {record.error['message']} ({record.error['where']})"


def test_a_users_file_rejection_names_the_users_file(team, api, django_capture_on_commit_callbacks):
    record = upload(team, api, django_capture_on_commit_callbacks, "crm people.csv",
                    b"user_id,plan\n", field="users")
    assert record.status == "rejected"
    assert (record.error["code"], record.error["where"]) == ("empty_file", "crm people.csv")
    assert_names_only_the_users_file(record, "crm people.csv")


def test_the_command_line_names_the_given_file(team, tmp_path):
    path = tmp_path / "local export.csv"
    path.write_bytes(PNG)
    with pytest.raises(CommandError) as info:
        call_command("import_events", workspace="acme", events=path)
    record = Import.objects.get()
    assert str(info.value) == (f"import #{record.pk} rejected: wrong_format the file is a PNG "
                               "image, not CSV, Parquet or JSON Lines local export.csv, byte 0")
    assert_names_only_the_users_file(record, "local export.csv")


def test_a_rejection_from_anywhere_is_told_in_the_users_words(team, api, monkeypatch,
                                                              django_capture_on_commit_callbacks):
    from events import services
    from events.ingest import ImportRejected

    def refuse(path, options, name=""):  # type: ignore[no-untyped-def]
        raise ImportRejected("odd", f"cannot read {path} (the copy {path.name})", path.name)

    monkeypatch.setattr(services, "parse_events", refuse)
    record = upload(team, api, django_capture_on_commit_callbacks, "q3.csv", b"user_id\nu1\n")
    assert (record.error["message"], record.error["where"]) == (
        "cannot read q3.csv (the copy q3.csv)", "q3.csv")
    assert_names_only_the_users_file(record, "q3.csv")
