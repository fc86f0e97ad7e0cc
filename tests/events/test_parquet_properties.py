"""Parquet properties given as a struct (or a map) keep their nested lists, structs and maps
as JSON, not as numpy's text of an array (issue 16, item 9)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from events import services
from events.ingest import ImportOptions, parse_events
from events.models import Import

pytestmark = pytest.mark.django_db

PROPS = pa.struct([
    ("items", pa.list_(pa.int64())),
    ("plan", pa.string()),
    ("meta", pa.struct([("a", pa.int64()), ("tags", pa.list_(pa.string()))])),
    ("lines", pa.list_(pa.struct([("sku", pa.string()), ("qty", pa.list_(pa.float64()))]))),
    ("counts", pa.map_(pa.string(), pa.int64())),
])
ROWS = [
    {"items": [1, 2], "plan": "pro", "meta": {"a": 1, "tags": ["x", "y"]},
     "lines": [{"sku": "s1", "qty": [1.5, 2.0]}], "counts": [("k", 1), ("j", 2)]},
    {"items": [], "plan": None, "meta": None, "lines": None, "counts": None},
]
# Canonical JSON: sorted keys, no spaces; a map is an object.
EXPECTED = [
    '{"counts":{"j":2,"k":1},"items":[1,2],"lines":[{"qty":[1.5,2.0],"sku":"s1"}],'
    '"meta":{"a":1,"tags":["x","y"]},"plan":"pro"}',
    '{"counts":null,"items":[],"lines":null,"meta":null,"plan":null}',
]


def events_parquet(properties: pa.Array) -> bytes:
    table = pa.table({"user_id": ["u1", "u2"], "event": ["buy", "buy"],
                      "timestamp": ["2024-02-01T10:00:00Z", "2024-02-01T11:00:00Z"],
                      "properties": properties})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def test_struct_properties_keep_nested_lists_structs_and_maps_as_json(tmp_path):
    path = tmp_path / "events.parquet"
    path.write_bytes(events_parquet(pa.array(ROWS, type=PROPS)))
    parsed = parse_events(path, ImportOptions(now=datetime(2025, 1, 1, tzinfo=UTC)))
    assert parsed.frame["properties"].tolist() == EXPECTED
    assert parsed.problems.counts == {}


def test_map_properties_are_an_object(tmp_path):
    path = tmp_path / "events.parquet"
    path.write_bytes(events_parquet(pa.array([[("plan", "pro"), ("seats", "3")], []],
                                             type=pa.map_(pa.string(), pa.string()))))
    parsed = parse_events(path, ImportOptions(now=datetime(2025, 1, 1, tzinfo=UTC)))
    # An empty map is no properties, like an empty object.
    stored = parsed.frame["properties"]
    assert (stored[0], stored.isna().tolist()) == ('{"plan":"pro","seats":"3"}', [False, True])
    assert "bad_properties" not in parsed.problems.counts


def test_imported_struct_properties_are_stored_as_json(team, api,
                                                       django_capture_on_commit_callbacks):
    dataset = services.dataset_create(workspace=team["acme"], name="app")
    upload = io.BytesIO(events_parquet(pa.array(ROWS, type=PROPS)))
    upload.name = "events.parquet"
    with django_capture_on_commit_callbacks(execute=True):
        r = api(team["analyst"]).post("/api/v1/imports/", {"dataset": dataset.pk,
                                                           "events": upload}, format="multipart")
    assert r.status_code == 202, r.content
    record = Import.objects.get(pk=r.json()["id"])
    assert record.status == "succeeded", record.error
    events = services.get_store().read_events(dataset.store_key).sort_values("user_id")
    assert events["properties"].tolist() == EXPECTED


def test_a_map_with_a_key_twice_keeps_both_values(tmp_path):
    path = tmp_path / "events.parquet"
    kind = pa.struct([("counts", pa.map_(pa.string(), pa.int64()))])
    path.write_bytes(events_parquet(pa.array([{"counts": [("k", 1), ("k", 2)]},
                                              {"counts": [("k", 3)]}], type=kind)))
    parsed = parse_events(path, ImportOptions(now=datetime(2025, 1, 1, tzinfo=UTC)))
    assert parsed.frame["properties"].tolist() == ['{"counts":[["k",1],["k",2]]}',
                                                   '{"counts":{"k":3}}']
