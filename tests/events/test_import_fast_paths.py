"""The import's speed paths give the same result as the plain ones.

A CSV without any double quote is read with the reader's faster chunker (no value can hold a
line break); big imports parse timestamps and code user ids on a second thread. Each is
checked against the plain path on the same rows, with expected counts written out by hand.
No database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from events.ingest import ImportOptions, merge_into_store, parse_events
from events.ingest import formats as formats_mod
from events.ingest import merge as merge_mod
from events.ingest import validate as validate_mod
from events.store import EventStore

NOW = datetime(2026, 1, 2, tzinfo=UTC)
HEADER = "user_id,event,timestamp,revenue\n"


def _rows() -> str:
    """40 rows: 30 distinct good events, 4 exact repeats of them, one row of each problem
    the checks look for (missing user, missing event, bad time, future time, naive time, bad
    revenue)."""
    good = [f"u{i % 7:03d},{'view' if i % 3 else 'buy'},2025-03-{1 + i % 28:02d}T10:{i:02d}:00Z,"
            f"{'' if i % 4 else f'{i}.5'}" for i in range(30)]
    repeats = good[:4]
    bad = [",view,2025-03-01T10:00:00Z,",            # missing user
           "u001,,2025-03-01T10:00:00Z,",            # missing event
           "u001,view,yesterday,",                   # unparseable time
           "u001,view,2027-01-01T00:00:00Z,",        # in the future
           "u001,view,2025-03-01 10:00:00,",         # no offset
           "u001,view,2025-03-01T10:00:00Z,ten"]     # revenue not a number
    return "\n".join(good + repeats + bad) + "\n"


def _import(path: Path, root: Path) -> tuple[dict, dict, list]:
    store = EventStore(root, partitions=4)
    parsed = parse_events(path, ImportOptions(now=NOW))
    result = merge_into_store(store, "d", import_id="i", events=parsed, users=None, report={})
    version = store.current("d")
    tables = [pq.read_table(f).to_pylist() for f in sorted(version.path.glob("*.parquet"))]
    return dict(parsed.problems.counts), {k: v for k, v in result.__dict__.items()}, tables


def test_it_notes_whether_a_text_file_holds_a_quote(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text(HEADER + "u1,view,2025-03-01T10:00:00Z,\n")
    quoted = tmp_path / "quoted.csv"
    quoted.write_text(HEADER + 'u1,"a, ""b""",2025-03-01T10:00:00Z,\n')
    assert formats_mod._check_text(plain).has_quotes is False
    assert formats_mod._check_text(quoted).has_quotes is True


def test_it_reads_a_quoted_line_break_when_the_file_has_quotes(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(HEADER + 'u1,"two\nlines",2025-03-01T10:00:00Z,\nu2,view,2025-03-02T10:00:00Z,2\n')
    parsed = parse_events(path, ImportOptions(now=NOW))
    assert parsed.frame["event"].tolist() == ["two\nlines", "view"]
    assert parsed.frame["__line"].tolist() == [2, 4]


def test_the_threaded_checks_and_codes_give_the_plain_result(tmp_path, monkeypatch):
    path = tmp_path / "events.csv"
    path.write_text(HEADER + _rows())
    plain = _import(path, tmp_path / "plain")
    monkeypatch.setattr(validate_mod, "PARALLEL_CHECK_ROWS", 1)
    monkeypatch.setattr(merge_mod, "PARALLEL_ROWS", 1)
    threaded = _import(path, tmp_path / "threaded")
    assert threaded == plain
    problems, result, _ = threaded
    assert problems == {"missing_user_id": 1, "missing_event": 1, "bad_timestamp": 1,
                        "future_timestamp": 1, "naive_timestamp": 1, "bad_revenue": 1,
                        "duplicate": 4}
    assert result["rows_added"] == 30
    assert result["total_users"] == 7


@pytest.mark.parametrize("quoted", [False, True])
def test_a_file_with_or_without_quotes_stores_the_same_events(tmp_path, quoted):
    rows = _rows()
    if quoted:  # the same values, every event name quoted: the careful chunker reads it
        rows = "\n".join(",".join(f'"{v}"' if k == 1 and v else v
                                  for k, v in enumerate(line.split(",")))
                         for line in rows.rstrip("\n").split("\n")) + "\n"
    path = tmp_path / "events.csv"
    path.write_text(HEADER + rows)
    problems, result, tables = _import(path, tmp_path / "store")
    expected_path = tmp_path / "plain.csv"
    expected_path.write_text(HEADER + _rows())
    assert (problems, result, tables) == _import(expected_path, tmp_path / "expected")
    assert result["rows_added"] == 30
