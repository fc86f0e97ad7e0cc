"""Issue 16, item 7: the event catalog at any cardinality.

The catalog is computed with group-bys (no loop per event name); a dataset holds at most
``MAX_EVENT_NAMES`` distinct event names (an import that would go over is rejected with
``too_many_event_names`` and nothing is stored); the dataset page and
``GET /api/v1/datasets/{id}/catalog/`` are paginated and searchable."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from events.catalog import event_catalog
from events.ingest import ImportOptions, ImportRejected, merge_into_store, parse_events
from events.store import EventStore

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def frame(rows: list[tuple[str, str, str, str | None]]) -> pd.DataFrame:
    return pd.DataFrame({
        "user_id": [r[0] for r in rows],
        "event": pd.Categorical([r[1] for r in rows]),
        "timestamp": pd.to_datetime([r[2] for r in rows], utc=True, format="ISO8601").astype(
            "datetime64[us, UTC]"),
        "properties": [r[3] for r in rows],
    })


PART_A = frame([
    ("u1", "view", "2024-03-04T10:00:00Z", '{"page":"/","ref":"x"}'),   # a Monday
    ("u1", "view", "2024-03-10T23:59:59.5Z", None),                      # that week's Sunday
    ("u1", "buy", "2024-03-11T00:00:00Z", '{"sku":"a"}'),
])
PART_B = frame([
    ("u2", "view", "2024-01-01T00:00:00Z", '{"page":"/a"}'),
    ("u2", "signup", "2023-12-31T12:00:00Z", None),
    ("u3", "buy", "2024-03-12T08:00:00Z", '{"coupon":"z","sku":"b"}'),
])


def test_the_catalog_by_hand_from_frames_or_arrow_tables():
    expected = [
        {"event": "view", "count": 3, "users": 2, "first_seen": "2024-01-01T00:00:00+00:00",
         "last_seen": "2024-03-10T23:59:59.500000+00:00", "property_keys": ["page", "ref"]},
        {"event": "buy", "count": 2, "users": 2, "first_seen": "2024-03-11T00:00:00+00:00",
         "last_seen": "2024-03-12T08:00:00+00:00", "property_keys": ["coupon", "sku"]},
        {"event": "signup", "count": 1, "users": 1, "first_seen": "2023-12-31T12:00:00+00:00",
         "last_seen": "2023-12-31T12:00:00+00:00", "property_keys": []},
    ]
    weeks = pd.date_range(end="2024-03-11", periods=12, freq="7D").strftime("%Y-%m-%d").tolist()
    # Weeks start on Mondays: 2023-12-31 (a Sunday) is in the week of 2023-12-25, the first.
    counts = {"view": [0, 1] + [0] * 8 + [2, 0], "buy": [0] * 11 + [2], "signup": [1] + [0] * 11}
    for inputs in ([PART_A, PART_B], [pa.Table.from_pandas(PART_A), pa.Table.from_pandas(PART_B)]):
        catalog = event_catalog(inputs)
        assert [{k: e[k] for k in expected[0]} for e in catalog] == expected
        for entry in catalog:
            assert entry["weekly"]["weeks"] == weeks
            assert entry["weekly"]["counts"] == counts[entry["event"]], entry["event"]
    assert event_catalog([]) == []
    assert event_catalog([PART_A.iloc[:0]]) == []


def test_equal_counts_are_listed_by_name():
    part = frame([("u1", name, "2024-03-04T10:00:00Z", None) for name in ("b", "c", "a")])
    assert [e["event"] for e in event_catalog([part])] == ["a", "b", "c"]


def many_names(n_names: int, rows: int, parts: int = 4) -> list[pd.DataFrame]:
    rng = np.random.default_rng(0)
    names = np.array([f"event_{i:06d}" for i in range(n_names)])
    event = names[np.r_[np.arange(n_names), rng.integers(0, n_names, rows - n_names)]]
    stamps = pd.to_datetime(1_700_000_000_000_000 + rng.integers(0, 200 * 86_400 * 10**6, rows),
                            unit="us", utc=True)
    props = np.where(rng.random(rows) < 0.5, '{"a":1,"b":"x"}', None)
    whole = pd.DataFrame({"user_id": [f"u{i % 5000}" for i in range(rows)],
                          "event": pd.Categorical(event), "timestamp": stamps,
                          "properties": props})
    return [whole.iloc[i::parts].reset_index(drop=True) for i in range(parts)]


def test_twenty_thousand_names_take_well_under_a_second_per_ten_thousand():
    parts = many_names(20_000, 60_000)
    started = time.perf_counter()
    catalog = event_catalog(parts)
    elapsed = time.perf_counter() - started
    assert len(catalog) == 20_000
    assert sum(e["count"] for e in catalog) == 60_000
    assert all(len(e["weekly"]["counts"]) == 12 for e in catalog)
    # The loop over names took 23 s here; the group-bys take a fraction of a second.
    assert elapsed < 5, elapsed


# ----- the limit on distinct event names ------------------------------------------------------
def events_file(tmp_path: Path, name: str, events: list[str]) -> object:
    path = tmp_path / name
    path.write_text("user_id,event,timestamp\n" + "".join(
        f"{name}-u{i},{e},2024-03-01T10:00:0{i % 10}Z\n" for i, e in enumerate(events)))
    return parse_events(path, ImportOptions(now=NOW))


def test_an_import_that_would_pass_the_limit_is_rejected_and_nothing_is_stored(tmp_path):
    store = EventStore(tmp_path / "store", partitions=2)
    merge_into_store(store, "ds", import_id="a", events=events_file(tmp_path, "a.csv",
                     ["view", "buy", "view"]), users=None, report={}, max_event_names=3)
    with pytest.raises(ImportRejected) as info:
        merge_into_store(store, "ds", import_id="b", events=events_file(
            tmp_path, "b.csv", ["view", "signup", "refund"]), users=None, report={},
            max_event_names=3)
    error = info.value
    assert error.code == "too_many_event_names"
    assert "4 distinct event names" in error.message and "3" in error.message
    assert "refund" in error.message and "signup" in error.message
    assert store.current("ds").number == 1
    # Known names only: accepted; one more name up to the limit: accepted.
    merge_into_store(store, "ds", import_id="c", events=events_file(
        tmp_path, "c.csv", ["buy", "view", "signup"]), users=None, report={}, max_event_names=3)
    assert store.current("ds").number == 2
    # A dataset already over a (lowered) limit still takes rows of names it knows.
    merge_into_store(store, "ds", import_id="d", events=events_file(
        tmp_path, "d.csv", ["buy", "buy"]), users=None, report={}, max_event_names=2)
    assert store.current("ds").number == 3


@pytest.mark.django_db
def test_the_import_job_rejects_too_many_event_names(team, tmp_path, settings):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from events.models import Dataset, Import

    settings.MAX_EVENT_NAMES = 2
    path = tmp_path / "events.csv"
    path.write_text("user_id,event,timestamp\nu1,a,2024-03-01T10:00:00Z\n"
                    "u1,b,2024-03-01T10:00:01Z\nu1,c,2024-03-01T10:00:02Z\n")
    with pytest.raises(CommandError, match="too_many_event_names"):
        call_command("import_events", workspace="acme", events=path, dataset="web")
    dataset = Dataset.objects.get(workspace=team["acme"], name="web")
    record = Import.objects.get(dataset=dataset)
    assert record.status == "rejected" and record.error["code"] == "too_many_event_names"
    assert "MAX_EVENT_NAMES" in record.error["message"]
    assert dataset.total_events == 0 and dataset.event_catalog == []


# ----- pages ----------------------------------------------------------------------------------
@pytest.fixture
def wide(team, tmp_path, settings):
    """A dataset of 130 event names: name_000 (130 events) ... name_129 (1 event)."""
    from django.core.management import call_command

    from events.models import Dataset

    lines = ["user_id,event,timestamp"]
    for i in range(130):
        lines += [f"u{j},name_{i:03d},2024-03-01T10:{j // 60:02d}:{j % 60:02d}Z"
                  for j in range(130 - i)]
    path = tmp_path / "wide.csv"
    path.write_text("\n".join(lines) + "\n")
    call_command("import_events", workspace="acme", events=path, dataset="wide")
    return Dataset.objects.get(workspace=team["acme"], name="wide")


@pytest.mark.django_db
def test_the_catalog_api_is_paginated_and_searchable(team, wide):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(team["viewer"])
    url = f"/api/v1/datasets/{wide.pk}/catalog/"
    first = client.get(url).json()
    assert first["event_count"] == 130 and first["page"] == 1 and first["page_size"] == 100
    assert [e["event"] for e in first["event_catalog"][:2]] == ["name_000", "name_001"]
    assert len(first["event_catalog"]) == 100 and first["previous"] is None
    assert "page=2" in first["next"]
    assert first["attribute_catalog"] == []
    second = client.get(url, {"page": 3, "page_size": 50}).json()
    assert [e["event"] for e in second["event_catalog"]] == [f"name_{i:03d}" for i in range(100, 130)]
    assert second["next"] is None and "page=2" in second["previous"]
    found = client.get(url, {"q": "NAME_12"}).json()
    assert [e["event"] for e in found["event_catalog"]] == [f"name_{i:03d}" for i in range(120, 130)]
    assert found["event_count"] == 10
    for bad in ({"page": 0}, {"page": "x"}, {"page_size": 501}, {"page": 9}):
        res = client.get(url, bad)
        assert res.status_code in (400, 404), (bad, res.status_code)


@pytest.mark.django_db
def test_the_dataset_page_shows_one_page_of_the_catalog(client, team, wide):
    client.force_login(team["viewer"])
    url = f"/w/acme/datasets/{wide.pk}/"
    html = client.get(url).content.decode()
    assert "name_000" in html and "name_049" in html and "name_050" not in html
    assert "130 event names" in html and "?page=2" in html
    html = client.get(url, {"page": 3}).content.decode()
    assert "name_100" in html and "name_129" in html and "name_099" not in html
    html = client.get(url, {"q": "name_12"}).content.decode()
    assert "name_120" in html and "name_000" not in html and "10 event names" in html
    assert client.get(url, {"page": "999"}).status_code == 200  # the last page
