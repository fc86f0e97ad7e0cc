"""``manage.py import_events`` takes gzip-compressed text like the API: decompressed while it is
copied, checked by its leading bytes (issue 16, item 12)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from events import services
from events.models import Dataset, Import

pytestmark = pytest.mark.django_db

CSV = "user_id,event,timestamp,revenue\n" + "".join(
    f"u{i},buy,2025-01-0{1 + i % 5}T10:00:00Z,{i}\n" for i in range(12))
JSONL = "".join(json.dumps({"userId": f"j{i}", "event": "view",
                            "timestamp": "2025-01-02T10:00:00Z"}) + "\n" for i in range(5))


@pytest.mark.parametrize(("name", "text", "rows"), [
    ("events.csv.gz", CSV, 12), ("events.jsonl.gz", JSONL, 5), ("events.json.gz", JSONL, 5)])
def test_gzip_text_imports_from_the_command_line(team, tmp_path, capsys, name, text, rows):
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()))
    call_command("import_events", workspace="acme", events=path)
    record = Import.objects.get()
    assert (record.status, record.rows_added, record.events_name) == ("succeeded", rows, name)
    assert Path(record.events_path).read_bytes() == text.encode()  # kept decompressed
    dataset = Dataset.objects.get(workspace=team["acme"], name="events")
    assert dataset.total_events == rows
    assert len(services.get_store().read_events(dataset.store_key)) == rows


def test_the_same_gzip_file_twice_adds_nothing(team, tmp_path, capsys):
    path = tmp_path / "events.csv.gz"
    path.write_bytes(gzip.compress(CSV.encode()))
    call_command("import_events", workspace="acme", events=path)
    call_command("import_events", workspace="acme", events=path)
    assert "already imported" in capsys.readouterr().out
    assert Import.objects.count() == 1


@pytest.mark.parametrize(("data", "message"), [
    (CSV.encode(), "events.csv.gz is named .gz but is not gzip-compressed"),
    (gzip.compress(CSV.encode())[:30] + b"garbage" * 5,
     r"not a readable gzip file \(.*\) \(events.csv.gz\)"),
])
def test_a_bad_gzip_file_is_refused_like_the_api_refuses_it(team, tmp_path, data, message):
    path = tmp_path / "events.csv.gz"
    path.write_bytes(data)
    with pytest.raises(CommandError, match=message):
        call_command("import_events", workspace="acme", events=path)
    assert not Import.objects.exists()


def test_a_mapping_nested_too_deeply_is_a_clear_error_not_a_crash(team, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(CSV)
    deep = "[" * 5000 + "]" * 5000
    with pytest.raises(CommandError, match="--mapping is not valid JSON: nested deeper than 64"):
        call_command("import_events", workspace="acme", events=path, mapping=deep)
    assert not Import.objects.exists()
