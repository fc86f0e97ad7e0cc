"""Upload size and type limits on the event import (UI posts to the API) and the experiment
tables, checked before anything is stored."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pandas as pd
import pytest

from events.models import Import

pytestmark = pytest.mark.django_db

EVENTS = "user_id,event,timestamp\n" + "".join(
    f"u{i},signup,2025-01-0{1 + i % 5}T10:00:00Z\n" for i in range(20))


def _file(name: str, data: bytes) -> io.BytesIO:
    f = io.BytesIO(data)
    f.name = name
    return f


def _import(client, dataset_id: int, name: str, data: bytes, field: str = "events"):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/imports/", {"dataset": dataset_id, field: _file(name, data)},
                       format="multipart")


def _uploads_dir(settings) -> list[Path]:  # type: ignore[no-untyped-def]
    """The files stored under the uploads folder (one folder per workspace)."""
    folder = Path(settings.EVENT_STORE) / "uploads"
    return [p for p in folder.rglob("*") if p.is_file()]


def _refused(r, status: int, code: str, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.content
    error = r.json()["error"]
    assert error["code"] == code, error
    for needle in needles:
        assert needle in error["message"], error


def test_an_event_file_over_the_limit_is_413_naming_file_and_limit(objs, team, api, settings):
    settings.MAX_UPLOAD_BYTES = 100
    client = api(team["analyst"])
    r = _import(client, objs["dataset"].pk, "big.csv", EVENTS.encode())
    _refused(r, 413, "too_large", "big.csv", "100 bytes")
    assert r.json()["error"]["where"] == "events"
    r = _import(client, objs["dataset"].pk, "people.csv", b"user_id\n" + b"u1\n" * 60, "users")
    _refused(r, 413, "too_large", "people.csv")
    assert not Import.objects.exists() and _uploads_dir(settings) == []


@pytest.mark.parametrize(("name", "data", "code", "needle"), [
    ("events.txt", EVENTS.encode(), "unsupported_type", "only .csv, .csv.gz, .parquet"),
    ("events.xlsx", b"PK\x03\x04rest", "unsupported_type", "events.xlsx"),
    ("events", EVENTS.encode(), "unsupported_type", "events"),
    ("events.parquet", EVENTS.encode(), "wrong_type", "not a Parquet file"),
    ("events.csv", b"PAR1" + b"\0" * 20, "wrong_type", "name it .parquet"),
    ("events.csv", gzip.compress(EVENTS.encode()), "wrong_type", "name it events.csv.gz"),
    ("events.csv.gz", EVENTS.encode(), "wrong_type", "not gzip-compressed"),
    ("events.parquet.gz", gzip.compress(b"PAR1"), "unsupported_type", "events.parquet.gz"),
])
def test_only_event_file_types_are_accepted_by_name_and_leading_bytes(objs, team, api, settings,
                                                                       name, data, code, needle):
    r = _import(api(team["analyst"]), objs["dataset"].pk, name, data)
    _refused(r, 400, code, needle)
    assert not Import.objects.exists() and _uploads_dir(settings) == []


def test_gzip_text_is_decompressed_and_imported(objs, team, api,
                                                django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        r = _import(api(team["analyst"]), objs["dataset"].pk, "events.csv.gz",
                    gzip.compress(EVENTS.encode()))
    assert r.status_code == 202, r.content
    record = Import.objects.get()
    assert record.status == "succeeded", record.report
    assert record.events_name == "events.csv.gz"
    objs["dataset"].refresh_from_db()
    assert objs["dataset"].total_events == 20


def test_a_gzip_bomb_stops_at_the_limit_and_a_corrupt_archive_is_refused(objs, team, api,
                                                                         settings):
    settings.MAX_UPLOAD_BYTES = 10_000
    client = api(team["analyst"])
    bomb = gzip.compress(EVENTS.encode() + b"u1,signup,2025-01-01T10:00:00Z\n" * 5_000)
    assert len(bomb) < 10_000
    r = _import(client, objs["dataset"].pk, "events.csv.gz", bomb)
    _refused(r, 400, "too_large", "10,000 bytes")
    corrupt = gzip.compress(EVENTS.encode())[:30] + b"garbage" * 5
    r = _import(client, objs["dataset"].pk, "events.csv.gz", corrupt)
    _refused(r, 400, "malformed_gzip", "gzip")
    assert not Import.objects.exists() and _uploads_dir(settings) == []


def test_parquet_and_json_lines_are_accepted(objs, team, api,
                                             django_capture_on_commit_callbacks):
    client = api(team["analyst"])
    frame = pd.read_csv(io.StringIO(EVENTS))
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    with django_capture_on_commit_callbacks(execute=True):
        assert _import(client, objs["dataset"].pk, "events.parquet",
                       buffer.getvalue()).status_code == 202
    lines = frame.head(3).assign(user_id=lambda f: f.user_id + "j").to_json(
        orient="records", lines=True)
    with django_capture_on_commit_callbacks(execute=True):
        assert _import(client, objs["dataset"].pk, "more.jsonl",
                       lines.encode()).status_code == 202
    assert set(Import.objects.values_list("status", flat=True)) == {"succeeded"}


ASSIGN = "user_id,arm,assigned_at\n" + "".join(
    f"u{i},{'control' if i % 2 else 'treatment'},2026-05-01T00:00:00Z\n" for i in range(40))


def test_experiment_tables_have_their_own_limit_and_type(objs, team, api, settings):
    settings.EXPERIMENT_UPLOAD_MAX_BYTES = 200
    client = api(team["analyst"])
    url = f"/api/v1/experiments/{objs['experiment'].pk}/assignments/"
    r = client.post(url, {"file": _file("assign.csv", ASSIGN.encode())}, format="multipart")
    _refused(r, 413, "too_large", "assign.csv", "200 bytes")
    r = client.post(url, {"file": _file("assign.xlsx", b"PK\x03\x04")}, format="multipart")
    _refused(r, 400, "unsupported_type", "only .csv")
    r = client.post(url, {"file": _file("assign.csv", gzip.compress(b"x"))}, format="multipart")
    _refused(r, 400, "wrong_type", "gzip")
    settings.EXPERIMENT_UPLOAD_MAX_BYTES = 10_000
    r = client.post(url, {"file": _file("assign.csv", ASSIGN.encode())}, format="multipart")
    assert r.status_code == 200 and r.json()["assignments_rows"] == 40


def test_experiment_page_uploads_show_the_refusal(objs, team, client, settings):
    settings.EXPERIMENT_UPLOAD_MAX_BYTES = 100
    client.force_login(team["analyst"])
    url = f"/w/acme/experiments/{objs['experiment'].pk}/"
    for action in ("assignments", "summaries"):
        r = client.post(url, {"action": action, "file": _file("table.csv", ASSIGN.encode())},
                        follow=True)
        page = r.content.decode()
        assert r.status_code == 200 and "table.csv" in page and "over the limit" in page, action
    r = client.post(url, {"action": "summaries", "file": _file("table.json", b"{}")},
                    follow=True)
    assert "only .csv files are accepted" in r.content.decode()
    assert objs["experiment"].summaries.count() == 0
