"""Issue 16, item 13: the duplicate key is the whole event (user, event, time, properties,
revenue, cost). Distinct amounts are never merged; a row that differs from another only in
its amount is kept and counted in the quality report (``same_event_other_amount``); exact
repeats are still removed, and re-importing the same rows stays idempotent. The stored order
never depends on the file's row order. Pure (no database) except the last test."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from events.ingest import ImportOptions, merge_into_store, parse_events
from events.store import EventStore

NOW = datetime(2025, 1, 1, tzinfo=UTC)
HEADER = "user_id,event,timestamp,revenue,cost,properties\n"


def parsed(tmp_path: Path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return parse_events(path, ImportOptions(now=NOW))


def stored(store: EventStore, key: str = "ds") -> list[tuple]:
    """Every stored row, partition by partition, in stored order."""
    out = []
    for frame in store.iter_partitions(key):
        for rec in frame.to_dict("records"):
            out.append(tuple(None if v != v else v for v in (  # NaN -> None
                rec["user_id"], str(rec["event"]), rec["timestamp"].isoformat(), rec["revenue"],
                rec["cost"], rec["properties"])))
    return out


TWO_PURCHASES = HEADER + (
    "u1,purchase,2024-03-01T10:00:00Z,10,,\n"
    "u1,purchase,2024-03-01T10:00:00Z,99,,\n"
)


def test_two_purchases_in_one_second_with_different_amounts_are_both_kept(tmp_path):
    store = EventStore(tmp_path / "store", partitions=2)
    events = parsed(tmp_path, "a.csv", TWO_PURCHASES)
    result = merge_into_store(store, "ds", import_id="a", events=events, users=None, report={})
    assert (result.rows_added, result.duplicates_in_file, result.duplicates_of_stored) == (2, 0, 0)
    assert sorted(r[3] for r in stored(store)) == [10.0, 99.0]
    assert result.same_event_other_amount == 1
    report = events.problems.as_dict()
    assert report["same_event_other_amount"]["count"] == 1
    sample = report["same_event_other_amount"]["samples"][0]
    assert sample["line"] in (2, 3)
    assert sample["values"]["user_id"] == "u1" and sample["values"]["event"] == "purchase"
    assert "kept" in report["same_event_other_amount"]["note"]
    assert "duplicate" not in report
    # The same file again: every row is stored already (idempotent), nothing new to report.
    again_events = parsed(tmp_path, "a2.csv", TWO_PURCHASES)
    again = merge_into_store(store, "ds", import_id="b", events=again_events, users=None,
                             report={})
    assert (again.rows_added, again.duplicates_in_file, again.duplicates_of_stored) == (0, 0, 2)
    assert again.same_event_other_amount == 0
    assert "same_event_other_amount" not in again_events.problems.counts
    assert len(stored(store)) == 2


def test_a_row_that_differs_from_a_stored_one_only_in_amount_is_kept_and_reported(tmp_path):
    store = EventStore(tmp_path / "store", partitions=2)
    merge_into_store(store, "ds", import_id="a", events=parsed(tmp_path, "a.csv", HEADER + (
        "u1,purchase,2024-03-01T10:00:00Z,10,1.5,\"{\"\"sku\"\": \"\"x\"\"}\"\n")),
        users=None, report={})
    later = parsed(tmp_path, "b.csv", HEADER + (
        "u1,purchase,2024-03-01T10:00:00Z,10,1.5,\"{\"\"sku\"\": \"\"x\"\"}\"\n"  # stored: dup
        "u1,purchase,2024-03-01T10:00:00Z,10,2.5,\"{\"\"sku\"\": \"\"x\"\"}\"\n"  # other cost
        "u1,purchase,2024-03-01T10:00:00Z,99,1.5,\"{\"\"sku\"\": \"\"x\"\"}\"\n"  # other revenue
        "u1,purchase,2024-03-01T10:00:00Z,99,1.5,\"{\"\"sku\"\": \"\"x\"\"}\"\n"  # repeat: dup
        "u1,purchase,2024-03-01T10:00:00Z,10,1.5,\"{\"\"sku\"\": \"\"y\"\"}\"\n"  # other props
    ))
    result = merge_into_store(store, "ds", import_id="b", events=later, users=None, report={})
    assert (result.rows_added, result.duplicates_in_file, result.duplicates_of_stored) == (3, 1, 1)
    assert result.same_event_other_amount == 2
    samples = later.problems.samples["same_event_other_amount"]
    assert sorted(s["line"] for s in samples) == [3, 4]
    assert sorted((r[3], r[4], r[5]) for r in stored(store)) == [
        (10.0, 1.5, '{"sku":"x"}'), (10.0, 1.5, '{"sku":"y"}'), (10.0, 2.5, '{"sku":"x"}'),
        (99.0, 1.5, '{"sku":"x"}')]


def test_a_missing_amount_is_an_amount_of_its_own_and_negative_zero_is_zero(tmp_path):
    store = EventStore(tmp_path / "store", partitions=1)
    events = parsed(tmp_path, "a.csv", HEADER + (
        "u1,refund,2024-03-01T10:00:00Z,,,\n"
        "u1,refund,2024-03-01T10:00:00Z,0,,\n"
        "u1,refund,2024-03-01T10:00:00Z,-0.0,,\n"   # the same amount as 0: a repeat
        "u1,refund,2024-03-01T10:00:00Z,,,\n"       # a repeat of the first row
    ))
    result = merge_into_store(store, "ds", import_id="a", events=events, users=None, report={})
    assert (result.rows_added, result.duplicates_in_file) == (2, 2)
    assert result.same_event_other_amount == 1


def rows_with_ties(seed: int) -> list[str]:
    """Rows of 6 users over 4 seconds: many share user, time and event, and differ in
    properties or amounts; no exact repeats."""
    rng = random.Random(seed)
    seen, lines = set(), []
    while len(lines) < 120:
        row = (f"u{rng.randrange(6)}", rng.choice(["view", "buy"]),
               f"2024-03-01T10:00:0{rng.randrange(4)}Z", rng.choice(["", "5", "7", "7.5"]),
               rng.choice(["", "1"]), rng.choice(["", '"{""a"": 1}"', '"{""a"": 2}"']))
        if row not in seen:
            seen.add(row)
            lines.append(",".join(row) + "\n")
    return lines


def test_stored_order_does_not_depend_on_the_files_row_order(tmp_path):
    lines = rows_with_ties(3)
    contents = []
    for attempt in range(3):
        shuffled = lines[:]
        random.Random(attempt).shuffle(shuffled)
        store = EventStore(tmp_path / f"store{attempt}", partitions=2)
        result = merge_into_store(store, "ds", import_id="x",
                                  events=parsed(tmp_path, f"{attempt}.csv", HEADER + "".join(shuffled)),
                                  users=None, report={})
        assert result.rows_added == 120 and result.duplicates_in_file == 0
        contents.append(stored(store))
    assert contents[0] == contents[1] == contents[2]
    # Sorted by user, then time, then event name, properties and amounts.
    for frame in EventStore(tmp_path / "store0", partitions=2).iter_partitions("ds"):
        table = pa.Table.from_pandas(frame)
        keys = list(zip(*(table.column(c).to_pylist() for c in ("user_id", "timestamp")),
                        strict=True))
        assert keys == sorted(keys)


@pytest.mark.django_db
def test_the_import_report_counts_same_event_other_amount(team, tmp_path):
    from django.core.management import call_command

    from events.models import Dataset, Import

    path = tmp_path / "events.csv"
    path.write_text(TWO_PURCHASES)
    call_command("import_events", workspace="acme", events=path, dataset="shop")
    dataset = Dataset.objects.get(workspace=team["acme"], name="shop")
    record = Import.objects.get(dataset=dataset)
    assert dataset.total_events == 2 and record.rows_added == 2
    problem = record.report["events"]["problems"]["same_event_other_amount"]
    assert problem["count"] == 1 and len(problem["samples"]) == 1
    assert record.report["summary"]["same_event_other_amount"] == 1
