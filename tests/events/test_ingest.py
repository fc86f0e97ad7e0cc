"""The pure ingest core: formats, validation, the quality report, de-duplication, the store.

No database. Every expected value is written out by hand (instants, counts, line numbers).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from events.ingest import (
    SAMPLE_LIMIT,
    ImportOptions,
    ImportRejected,
    ParsedEvents,
    anomalous_days,
    merge_into_store,
    parse_events,
    parse_users,
)
from events.store import EventStore, partition_of

NOW = datetime(2025, 1, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def opts(**kwargs: object) -> ImportOptions:
    return ImportOptions(now=NOW, **kwargs)  # type: ignore[arg-type]


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


def counts(parsed: ParsedEvents) -> dict[str, int]:
    return dict(parsed.problems.counts)


def lines_of(parsed: ParsedEvents, code: str) -> list[int]:
    return [sample["line"] for sample in parsed.problems.samples[code]]


def rows(frame: pd.DataFrame) -> list[tuple]:
    """(user, event, timestamp, revenue or None, properties or None) per row, in order."""
    out = []
    for rec in frame.to_dict("records"):
        revenue = None if pd.isna(rec["revenue"]) else rec["revenue"]
        props = None if pd.isna(rec["properties"]) else rec["properties"]
        out.append((rec["user_id"], str(rec["event"]), rec["timestamp"], revenue, props))
    return out


def rejected(path: Path, **kwargs: object) -> ImportRejected:
    with pytest.raises(ImportRejected) as info:
        parse_events(path, opts(**kwargs))
    return info.value


# ----- formats -------------------------------------------------------------------------------
def test_segment_track_calls(tmp_path):
    path = write(tmp_path, "segment.jsonl", "\n".join([
        json.dumps({"type": "track", "messageId": "m1", "userId": "u1", "event": "Order Completed",
                    "timestamp": "2024-03-01T10:00:00.250Z",
                    "properties": {"sku": "A-1", "revenue": 19.99},
                    "context": {"ip": "192.0.2.1"}, "anonymousId": "anon-1"}),
        json.dumps({"type": "track", "messageId": "m2", "userId": "u2", "event": "Signed Up",
                    "timestamp": "2024-03-01T12:30:00+02:00", "properties": {}}),
    ]) + "\n")
    parsed = parse_events(path, opts())
    assert parsed.format == "jsonl"
    assert parsed.columns == {"user_id": "userId", "event": "event", "timestamp": "timestamp",
                              "revenue": "revenue", "properties": "properties"}
    assert counts(parsed) == {}  # type, messageId, context, anonymousId are not "unknown"
    assert parsed.rows_read == 2
    assert rows(parsed.frame) == [
        ("u1", "Order Completed", utc("2024-03-01T10:00:00.250Z"), 19.99,
         '{"revenue":19.99,"sku":"A-1"}'),
        ("u2", "Signed Up", utc("2024-03-01T10:30:00Z"), None, None),
    ]
    assert parsed.frame["__line"].tolist() == [1, 2]


def test_mixpanel_export(tmp_path):
    # 1709287200 = 2024-03-01T10:00:00Z (2024-01-01 is 1704067200, plus 60 days and 10 hours).
    path = write(tmp_path, "mixpanel.jsonl", "\n".join([
        json.dumps({"event": "Purchase",
                    "properties": {"distinct_id": "m1", "time": 1709287200, "$os": "iOS",
                                   "price": 5}}),
        json.dumps({"event": "Purchase",
                    "properties": {"distinct_id": "m2", "time": 1709287200500, "$os": "Android"}}),
    ]))
    parsed = parse_events(path, opts())
    assert parsed.columns["user_id"] == "distinct_id"
    assert parsed.columns["timestamp"] == "time"
    assert counts(parsed) == {}
    assert rows(parsed.frame) == [
        ("m1", "Purchase", utc("2024-03-01T10:00:00Z"), None, '{"$os":"iOS","price":5}'),
        ("m2", "Purchase", utc("2024-03-01T10:00:00.500Z"), None, '{"$os":"Android"}'),
    ]


def test_amplitude_export(tmp_path):
    path = write(tmp_path, "amplitude.json", json.dumps(
        {"user_id": "a1", "event_type": "Checkout", "time": 1709287200000,
         "event_properties": {"cart": 3}, "revenue": 12.5, "device_id": "d1",
         "amplitude_id": 99}) + "\n")
    parsed = parse_events(path, opts())
    assert parsed.columns["event"] == "event_type"
    assert rows(parsed.frame) == [("a1", "Checkout", utc("2024-03-01T10:00:00Z"), 12.5,
                                   '{"cart":3}')]
    assert counts(parsed) == {"unknown_columns": 2}
    assert [s["values"]["column"] for s in parsed.problems.samples["unknown_columns"]] == [
        "device_id", "amplitude_id"]


def test_csv_with_revenue_cost_and_properties(tmp_path):
    path = write(tmp_path, "events.csv", (
        "user_id,event,timestamp,revenue,cost,properties\n"
        "u1,view,2024-03-01T10:00:00Z,,,\n"
        'u1,buy,2024-03-01T11:00:00Z,10.5,2.25,"{""sku"": ""A"", ""n"": 2}"\n'
        "u2,view,2024-03-02T09:00:00+01:00,,,\n"
    ))
    parsed = parse_events(path, opts())
    assert parsed.format == "csv"
    assert counts(parsed) == {}
    assert rows(parsed.frame) == [
        ("u1", "view", utc("2024-03-01T10:00:00Z"), None, None),
        ("u1", "buy", utc("2024-03-01T11:00:00Z"), 10.5, '{"n":2,"sku":"A"}'),
        ("u2", "view", utc("2024-03-02T08:00:00Z"), None, None),
    ]
    assert parsed.frame["cost"].tolist()[1] == 2.25
    assert parsed.frame["__line"].tolist() == [2, 3, 4]


def test_parquet_written_with_pyarrow(tmp_path):
    new_york = ZoneInfo("America/New_York")  # EST (-5) on 1 March 2024
    table = pa.table({
        "user_id": pa.array([7, None, 9, 10], pa.int64()),
        "event": pa.array(["view", "view", "buy", "buy"]).dictionary_encode(),
        "timestamp": pa.array([datetime(2024, 3, 1, 5, 0, tzinfo=new_york)] * 4,
                              pa.timestamp("ms", tz="America/New_York")),
        "revenue": pa.array([None, 1.0, float("nan"), 4.5], pa.float64(), from_pandas=False),
    })
    path = tmp_path / "events.parquet"
    pq.write_table(table, path)
    parsed = parse_events(path, opts())
    assert parsed.format == "parquet"
    # Row 2 has no user; row 3 has revenue NaN (a value, not a missing one).
    assert counts(parsed) == {"missing_user_id": 1, "bad_revenue": 1}
    assert lines_of(parsed, "missing_user_id") == [2]
    assert lines_of(parsed, "bad_revenue") == [3]
    assert rows(parsed.frame) == [
        ("7", "view", utc("2024-03-01T10:00:00Z"), None, None),  # "7", not "7.0"
        ("10", "buy", utc("2024-03-01T10:00:00Z"), 4.5, None),
    ]


def test_parquet_timestamps_null_naive_and_localized(tmp_path):
    table = pa.table({
        "user_id": ["u1", "u2", "u3"],
        "event": ["view", "view", "view"],
        # No time zone in the file: naive on purpose.
        "timestamp": pa.array([datetime(2024, 7, 1, 12, 0), None,  # noqa: DTZ001
                               datetime(2024, 1, 15, 12, 0)], pa.timestamp("us")),  # noqa: DTZ001
    })
    path = tmp_path / "naive.parquet"
    pq.write_table(table, path)
    error = rejected(path)  # no time zone named: no row has a usable time
    assert error.code == "no_valid_rows"
    assert "naive_timestamp" in error.message
    berlin = parse_events(path, opts(timezone="Europe/Berlin"))
    assert counts(berlin) == {"bad_timestamp": 1}
    assert berlin.frame["timestamp"].tolist() == [utc("2024-07-01T10:00:00Z"),
                                                  utc("2024-01-15T11:00:00Z")]


def test_parquet_detected_by_magic_bytes_whatever_the_name(tmp_path):
    path = tmp_path / "export.dat"
    pq.write_table(pa.table({"user_id": ["u1"], "event": ["e"],
                             "timestamp": ["2024-03-01T10:00:00Z"]}), path)
    assert parse_events(path, opts()).format == "parquet"
    assert rejected(path, format="csv").code == "wrong_format"


def test_mapping_for_custom_headers(tmp_path):
    text = ("customer,action,when,amount,channel\n"
            "c1,open,2024-03-01T10:00:00Z,3,web\n")
    path = write(tmp_path, "custom.csv", text)
    error = rejected(path)
    assert error.code == "missing_column"
    assert "user_id, event, timestamp" in error.message
    mapping = {"user_id": "customer", "event": "action", "timestamp": "when", "revenue": "amount"}
    parsed = parse_events(path, opts(mapping=mapping))
    assert parsed.columns == mapping
    assert rows(parsed.frame) == [("c1", "open", utc("2024-03-01T10:00:00Z"), 3.0, None)]
    assert counts(parsed) == {"unknown_columns": 1}
    assert parsed.problems.samples["unknown_columns"] == [
        {"line": 1, "values": {"column": "channel"}}]
    assert rejected(path, mapping={"user": "customer"}).code == "bad_mapping"
    assert rejected(path, mapping={"user_id": "client"}).code == "missing_column"


def test_mapping_wins_over_a_column_named_like_the_target(tmp_path):
    path = write(tmp_path, "both.csv", "customer,user_id,event,timestamp\n"
                                       "c1,legacy-1,open,2024-03-01T10:00:00Z\n")
    parsed = parse_events(path, opts(mapping={"user_id": "customer"}))
    assert parsed.frame["user_id"].tolist() == ["c1"]
    assert counts(parsed) == {"unknown_columns": 1}
    assert parsed.problems.samples["unknown_columns"][0]["values"] == {"column": "user_id"}


# ----- the quality report --------------------------------------------------------------------
PROBLEM_FILE = (
    "user_id,event,timestamp,revenue\n"          # 1
    "u1,view,2024-03-01T10:00:00Z,\n"             # 2  kept
    ",view,2024-03-01T10:00:00Z,\n"               # 3  missing_user_id
    'u2,"multi\n'                                 # 4  kept (the record spans lines 4-5)
    'line",2024-03-01T10:00:00Z,1\n'              # 5
    "\n"                                          # 6  blank: not a row
    "u3,view,2024-03-01 10:00:00,\n"              # 7  naive_timestamp
    "u4,view,not a time,\n"                       # 8  bad_timestamp
    "u5,view,2099-01-01T00:00:00Z,\n"             # 9  future_timestamp
    "u6,view,1999-12-31T23:59:59Z,\n"             # 10 timestamp_before_2000
    "u7,buy,2024-03-01T10:00:00Z,abc\n"           # 11 bad_revenue
    "u8,buy,2024-03-01T10:00:00Z,inf\n"           # 12 bad_revenue
    "u9,view,2024-03-01T10:00:00Z,1,extra\n"      # 13 ragged_row
    "u10,,2024-03-01T10:00:00Z,\n"                # 14 missing_event
    "null,view,2024-03-01T10:00:00Z,\n"           # 15 missing_user_id ("null" is no user)
    "u11,buy,2024-03-01T10:00:00Z,NaN\n"          # 16 bad_revenue
    "u12,view,2024-03-01T10:00:00Z,\n"            # 17 kept
)


def test_problem_counts_and_sample_line_numbers(tmp_path):
    parsed = parse_events(write(tmp_path, "problems.csv", PROBLEM_FILE), opts())
    assert counts(parsed) == {
        "missing_user_id": 2, "missing_event": 1, "naive_timestamp": 1, "bad_timestamp": 1,
        "future_timestamp": 1, "timestamp_before_2000": 1, "bad_revenue": 3, "ragged_row": 1,
    }
    assert lines_of(parsed, "missing_user_id") == [3, 15]
    assert lines_of(parsed, "missing_event") == [14]
    assert lines_of(parsed, "naive_timestamp") == [7]
    assert lines_of(parsed, "bad_timestamp") == [8]
    assert lines_of(parsed, "future_timestamp") == [9]
    assert lines_of(parsed, "timestamp_before_2000") == [10]
    assert lines_of(parsed, "bad_revenue") == [11, 12, 16]
    assert parsed.problems.samples["ragged_row"] == [
        {"line": 13, "values": {"fields": 5, "expected": 4}}]
    assert parsed.rows_read == 14  # 13 records read + 1 ragged; the blank line is no row
    assert parsed.frame["user_id"].tolist() == ["u1", "u2", "u12"]
    assert parsed.frame["event"].tolist() == ["view", "multi\nline", "view"]
    assert parsed.frame["__line"].tolist() == [2, 4, 17]
    # Samples carry the row's own values, as in the file.
    assert parsed.problems.samples["bad_revenue"][0]["values"] == {
        "user_id": "u7", "event": "buy", "timestamp": "2024-03-01T10:00:00Z", "revenue": "abc"}
    report = parsed.problems.as_dict()
    assert report["naive_timestamp"]["note"].startswith("timestamps without a UTC offset")


def test_samples_stop_at_five_but_the_count_does_not(tmp_path):
    body = ",view,2024-03-01T10:00:00Z\n" * 7
    path = write(tmp_path, "many.csv", "user_id,event,timestamp\nu1,view,2024-03-01T10:00:00Z\n"
                 + body)
    parsed = parse_events(path, opts())
    assert SAMPLE_LIMIT == 5
    assert counts(parsed) == {"missing_user_id": 7}
    assert lines_of(parsed, "missing_user_id") == [3, 4, 5, 6, 7]


def test_line_numbers_with_crlf_blank_lines_and_literal_quotes(tmp_path):
    data = (b'user_id,event,timestamp,revenue\r\n'              # 1
            b'u1,"5"" screen, ""tv""",2024-03-01T10:00:00Z,\r\n'  # 2 quoted, escaped quotes
            b'\r\n'                                                # 3 blank
            b'u2,5" screen,2024-03-01T10:00:00Z,\r\n'              # 4 literal quote mid-value
            b'u3,"a\r\nb",2024-03-01T10:00:00Z,x\r\n'              # 5-6 bad_revenue
            b'u4,view,2024-03-01T10:00:00Z,2\r\n')                 # 7
    parsed = parse_events(write(tmp_path, "crlf.csv", data), opts())
    assert counts(parsed) == {"bad_revenue": 1}
    assert lines_of(parsed, "bad_revenue") == [5]
    assert parsed.frame["event"].tolist() == ['5" screen, "tv"', '5" screen', "view"]
    assert parsed.frame["__line"].tolist() == [2, 4, 7]


def test_line_numbers_when_a_quote_ends_an_unquoted_value(tmp_path):
    # 12" followed by a comma is a literal quote to the CSV reader; the byte scan cannot tell,
    # so the numbering falls back to the csv module and is still right.
    data = ('user_id,event,timestamp,revenue\n'   # 1
            'u1,12",2024-03-01T10:00:00Z,\n'      # 2
            '\n'                                  # 3 blank
            'u2,view,2024-03-01T10:00:00Z,x\n'    # 4 bad_revenue
            'u3,view,2024-03-01T10:00:00Z,\n')    # 5
    parsed = parse_events(write(tmp_path, "inch.csv", data), opts())
    assert parsed.frame["event"].tolist() == ['12"', "view"]
    assert lines_of(parsed, "bad_revenue") == [4]
    assert parsed.frame["__line"].tolist() == [2, 5]


def test_ragged_rows_after_a_multiline_record_name_their_real_lines(tmp_path):
    data = ("user_id,event,timestamp\n"          # 1
            'u1,"one\ntwo\nthree",2024-03-01T10:00:00Z\n'  # 2-4
            "u2,view\n"                          # 5 ragged (2 fields)
            "u3,view,2024-03-01T10:00:00Z,x,y\n"  # 6 ragged (5 fields)
            "u4,view,2024-03-01T10:00:00Z\n")    # 7
    parsed = parse_events(write(tmp_path, "ragged.csv", data), opts())
    assert counts(parsed) == {"ragged_row": 2}
    assert parsed.problems.samples["ragged_row"] == [
        {"line": 5, "values": {"fields": 2, "expected": 3}},
        {"line": 6, "values": {"fields": 5, "expected": 3}},
    ]
    assert parsed.frame["__line"].tolist() == [2, 7]


def test_an_unclosed_quote_rejects_the_file_instead_of_swallowing_it(tmp_path):
    data = ("user_id,event,timestamp\n"
            "u1,view,2024-03-01T10:00:00Z\n"
            'u2,"view,2024-03-01T10:00:00Z\n'   # line 3: the quote is never closed
            "u3,view,2024-03-01T10:00:00Z\n"
            "u4,view,2024-03-01T10:00:00Z\n")
    error = rejected(write(tmp_path, "open.csv", data))
    assert error.code == "unclosed_quote"
    assert error.where == "line 3"


def test_timezone_option_converts_naive_local_times(tmp_path):
    data = ("user_id,event,timestamp\n"
            "u1,a,2024-07-01 12:00:00\n"     # CEST (+2) -> 10:00 UTC
            "u2,a,2024-01-15 12:00:00\n"     # CET (+1)  -> 11:00 UTC
            "u3,a,2024-10-27 02:30:00\n"     # clocks go back at 03:00: happens twice
            "u4,a,2024-03-31 02:30:00\n"     # clocks go forward at 02:00: never happens
            "u5,a,2024-07-01T12:00:00Z\n")   # has an offset: the option does not apply
    path = write(tmp_path, "local.csv", data)
    parsed = parse_events(path, opts(timezone="Europe/Berlin"))
    assert parsed.frame["timestamp"].tolist() == [
        utc("2024-07-01T10:00:00Z"), utc("2024-01-15T11:00:00Z"), utc("2024-07-01T12:00:00Z")]
    assert counts(parsed) == {"ambiguous_timestamp": 2}
    assert lines_of(parsed, "ambiguous_timestamp") == [4, 5]

    without = parse_events(path, opts())
    assert counts(without) == {"naive_timestamp": 4}
    assert lines_of(without, "naive_timestamp") == [2, 3, 4, 5]
    assert without.frame["user_id"].tolist() == ["u5"]

    assert rejected(path, timezone="Mars/Olympus_Mons").code == "bad_timezone"


def test_timestamp_spellings(tmp_path):
    data = ("user_id,event,timestamp\n"
            "u1,a,1709287200\n"                      # epoch seconds
            "u2,a,1709287200123\n"                   # epoch milliseconds
            "u3,a,1709287200.5\n"                    # fractional seconds
            "u4,a,2024-03-01T11:00:00+01:00\n"
            "u5,a,2024-03-01 10:00:00 UTC\n"
            "u6,a,2024-03-01T10:00:00z\n"
            "u7,a,12345\n"                           # not a time
            "u8,a,2024-13-45T10:00:00Z\n")           # not a date
    parsed = parse_events(write(tmp_path, "times.csv", data), opts())
    assert parsed.frame["timestamp"].tolist() == [
        utc("2024-03-01T10:00:00Z"), utc("2024-03-01T10:00:00.123Z"),
        utc("2024-03-01T10:00:00.5Z"), utc("2024-03-01T10:00:00Z"),
        utc("2024-03-01T10:00:00Z"), utc("2024-03-01T10:00:00Z")]
    assert counts(parsed) == {"bad_timestamp": 2}
    assert lines_of(parsed, "bad_timestamp") == [8, 9]


def test_a_json_array_is_not_json_lines(tmp_path):
    path = write(tmp_path, "array.json", json.dumps([{"userId": "u1", "event": "a",
                                                      "timestamp": "2024-03-01T10:00:00Z"}]))
    error = rejected(path)
    assert (error.code, error.where) == ("malformed_json", "line 1")
    assert "one JSON array" in error.message


def test_epoch_numbers_in_json_and_booleans_are_not_times(tmp_path):
    path = write(tmp_path, "epoch.jsonl", "\n".join([
        '{"userId": "u1", "event": "a", "timestamp": 1709287200}',
        '{"userId": "u2", "event": "a", "timestamp": 1709287200123}',
        '{"userId": "u3", "event": "a", "timestamp": true}',
        '{"userId": "u4", "event": "a", "timestamp": "2024-03-01T10:00:00Z", "revenue": NaN}',
    ]))
    parsed = parse_events(path, opts())
    assert parsed.frame["timestamp"].tolist() == [utc("2024-03-01T10:00:00Z"),
                                                  utc("2024-03-01T10:00:00.123Z")]
    assert counts(parsed) == {"bad_timestamp": 1, "bad_revenue": 1}
    assert lines_of(parsed, "bad_timestamp") == [3]
    assert lines_of(parsed, "bad_revenue") == [4]


def test_size_limit(tmp_path):
    path = write(tmp_path, "small.csv", "user_id,event,timestamp\nu1,a,2024-03-01T10:00:00Z\n")
    error = rejected(path, max_bytes=10)
    assert error.code == "too_large"
    assert "over the limit of 10" in error.message


def test_users_file_attributes(tmp_path):
    data = ("user_id,signup_time,plan,device,country,seats\n"
            "u1,2024-01-01T00:00:00Z,pro,ios,DE,3\n"       # 2 replaced by line 4
            "u2,,free,web,US,1\n"                          # 3 no signup time: kept
            "u1,2024-02-01T00:00:00Z,team,ios,DE,10\n"     # 4 the last row of u1 wins
            ",2024-01-01T00:00:00Z,free,web,FR,1\n"        # 5 missing_user_id
            "u3,yesterday,free,web,FR,2\n"                 # 6 bad_signup_time
            "u4,2024-01-01 00:00:00,free,web,FR,2\n")      # 7 naive_signup_time
    parsed = parse_users(write(tmp_path, "users.csv", data), opts())
    assert dict(parsed.problems.counts) == {"duplicate_user": 1, "missing_user_id": 1,
                                            "bad_signup_time": 1, "naive_signup_time": 1}
    assert [s["line"] for s in parsed.problems.samples["duplicate_user"]] == [2]
    assert [s["line"] for s in parsed.problems.samples["bad_signup_time"]] == [6]
    frame = parsed.frame
    assert frame["user_id"].tolist() == ["u2", "u1"]
    assert frame["plan"].tolist() == ["free", "team"]
    assert frame["seats"].tolist() == [1, 10]  # an all-numeric extra column is a number
    assert pd.isna(frame["signup_time"].iloc[0])
    assert frame["signup_time"].iloc[1] == utc("2024-02-01T00:00:00Z")


def test_users_merge_counts_added_and_updated(tmp_path):
    store = EventStore(tmp_path / "store", partitions=2)
    first = parse_users(write(tmp_path, "u1.csv", "user_id,plan\nu1,free\nu2,free\n"), opts())
    merge_into_store(store, "ds", import_id="1", events=None, users=first, report={})
    second = parse_users(write(tmp_path, "u2.csv", "user_id,plan,country\nu2,pro,DE\nu3,free,FR\n"),
                         opts())
    result = merge_into_store(store, "ds", import_id="2", events=None, users=second, report={})
    assert (result.users_added, result.users_updated) == (1, 1)
    users = store.read_users("ds")
    assert users["user_id"].tolist() == ["u1", "u2", "u3"]
    assert users["plan"].tolist() == ["free", "pro", "free"]
    assert [None if pd.isna(v) else v for v in users["country"]] == [None, "DE", "FR"]


def test_an_attribute_changing_type_between_users_files_is_kept_as_text(tmp_path):
    store = EventStore(tmp_path / "store", partitions=2)
    numeric = parse_users(write(tmp_path, "a.csv", "user_id,tier\nu1,1\nu2,2\n"), opts())
    merge_into_store(store, "ds", import_id="1", events=None, users=numeric, report={})
    text = parse_users(write(tmp_path, "b.csv", "user_id,tier\nu3,gold\n"), opts())
    merge_into_store(store, "ds", import_id="2", events=None, users=text, report={})
    assert store.read_users("ds")["tier"].tolist() == ["1", "2", "gold"]


# ----- merging into the store ----------------------------------------------------------------
def parse_text(tmp_path: Path, name: str, text: str) -> ParsedEvents:
    return parse_events(write(tmp_path, name, text), opts())


FILE_A = (
    "user_id,event,timestamp,revenue,properties\n"
    "u1,view,2024-03-01T10:00:00Z,,\n"
    "u1,view,2024-03-01T10:00:00Z,,\n"                 # duplicate inside the file
    'u1,view,2024-03-01T10:00:00Z,,"{""a"": 1}"\n'     # other properties: not a duplicate
    "u2,buy,2024-03-01T11:00:00Z,5,\n"
    "u2,buy,2024-03-01T11:00:00Z,7,\n"                 # another amount: a distinct event
)
FILE_B = (
    "user_id,event,timestamp,revenue,properties\n"
    "u1,view,2024-03-01T10:00:00Z,,\n"                 # already stored
    "u2,buy,2024-03-01T12:00:00+01:00,5,\n"            # already stored (same instant)
    'u1,view,2024-03-01T10:00:00Z,,"{ ""a"" : 1 }"\n'  # already stored (same object)
    "u3,view,2024-03-02T10:00:00Z,,\n"                 # new
    "u3,view,2024-03-02T10:00:00Z,,\n"                 # duplicate inside the file
    "u1,view,2024-03-01T10:00:01Z,,\n"                 # new: one second later
)


def test_dedup_within_the_file_and_against_the_store_then_append(tmp_path):
    store = EventStore(tmp_path / "store", partitions=4)
    first = merge_into_store(store, "ds", import_id="a", events=parse_text(tmp_path, "a.csv", FILE_A),
                             users=None, report={})
    assert (first.version, first.rows_added, first.duplicates_in_file,
            first.duplicates_of_stored, first.total_events, first.total_users) == (1, 4, 1, 0, 4, 2)
    assert first.same_event_other_amount == 1
    second = merge_into_store(store, "ds", import_id="b",
                              events=parse_text(tmp_path, "b.csv", FILE_B), users=None, report={})
    assert (second.version, second.rows_added, second.duplicates_in_file,
            second.duplicates_of_stored, second.total_events, second.total_users) == (2, 2, 1, 3, 6, 3)
    stored = store.read_events("ds")
    assert sorted(rows(stored), key=repr) == sorted([
        ("u1", "view", utc("2024-03-01T10:00:00Z"), None, None),
        ("u1", "view", utc("2024-03-01T10:00:00Z"), None, '{"a":1}'),
        ("u1", "view", utc("2024-03-01T10:00:01Z"), None, None),
        ("u2", "buy", utc("2024-03-01T11:00:00Z"), 5.0, None),
        ("u2", "buy", utc("2024-03-01T11:00:00Z"), 7.0, None),   # distinct amounts: both kept
        ("u3", "view", utc("2024-03-02T10:00:00Z"), None, None),
    ], key=repr)
    assert store.current("ds").manifest["total_events"] == 6
    assert sorted(store.current("ds").manifest["imports"]) == ["a", "b"]


def test_a_file_of_stored_rows_publishes_no_new_version(tmp_path):
    store = EventStore(tmp_path / "store", partitions=2)
    merge_into_store(store, "ds", import_id="a", events=parse_text(tmp_path, "a.csv", FILE_A),
                     users=None, report={})
    versions = sorted(p.name for p in (tmp_path / "store" / "ds").glob("v*"))
    again = merge_into_store(store, "ds", import_id="b",
                             events=parse_text(tmp_path, "a2.csv", FILE_A), users=None, report={})
    # 5 rows: 1 repeats another in the file, the other 4 are stored already.
    assert (again.rows_added, again.duplicates_in_file, again.duplicates_of_stored) == (0, 1, 4)
    assert (again.version, again.total_events) == (1, 4)
    assert store.current("ds").number == 1
    assert sorted(p.name for p in (tmp_path / "store" / "ds").glob("v*")) == versions


def random_events(seed: int, users: int, per_user: int) -> str:
    rng = random.Random(seed)
    lines = ["user_id,event,timestamp"]
    for u in range(users):
        for _ in range(per_user):
            second = rng.randrange(0, 86400 * 30)
            day, rest = divmod(second, 86400)
            stamp = f"2024-03-{day + 1:02d}T{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}Z"
            lines.append(f"user-{u:03d},{rng.choice(['view', 'buy', 'open'])},{stamp}")
    body = lines[1:]
    rng.shuffle(body)
    return "\n".join([lines[0], *body]) + "\n"


def test_partitions_are_sorted_and_each_user_lives_in_one(tmp_path):
    store = EventStore(tmp_path / "store", partitions=4)
    for i, seed in enumerate((1, 2)):
        parsed = parse_text(tmp_path, f"r{i}.csv", random_events(seed, users=40, per_user=6))
        merge_into_store(store, "ds", import_id=str(i), events=parsed, users=None, report={})
    version = store.current("ds")
    files = version.event_files()
    assert [f.name for f in files] == [f"events-{p:02d}.parquet" for p in range(4)]
    seen: dict[str, int] = {}
    total = 0
    for number, path in enumerate(files):
        frame = pq.read_table(path).to_pandas()
        total += len(frame)
        keys = list(zip(frame["user_id"], frame["timestamp"], strict=True))
        assert keys == sorted(keys), f"partition {number} is not sorted by (user, time)"
        for user in frame["user_id"].unique():
            assert user not in seen, f"{user} is in partitions {seen[user]} and {number}"
            seen[user] = number
    assert len(seen) == 40
    assert total == store.current("ds").manifest["total_events"]
    expected = partition_of(np.asarray(sorted(seen)), 4)
    assert [seen[u] for u in sorted(seen)] == expected.tolist()


def test_partition_of_is_stable_across_processes():
    ids = ["u1", "user-042", "ü-unicode", "", "1234567890"]
    here = partition_of(np.asarray(ids, dtype=object), 8).tolist()
    code = ("import json, sys, numpy as np; from events.store import partition_of; "
            f"print(json.dumps(partition_of(np.asarray({ids!r}, dtype=object), 8).tolist()))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONHASHSEED": "12345"}, timeout=60, check=True)
    assert json.loads(out.stdout) == here


def test_merge_is_idempotent_per_import_id(tmp_path):
    store = EventStore(tmp_path / "store", partitions=2)
    parsed = parse_text(tmp_path, "a.csv", FILE_A)
    first = merge_into_store(store, "ds", import_id="42", events=parsed, users=None, report={})
    before = store.read_events("ds")
    versions = sorted(p.name for p in (tmp_path / "store" / "ds").glob("v*"))
    again = merge_into_store(store, "ds", import_id="42",
                             events=parse_text(tmp_path, "a2.csv", FILE_A), users=None, report={})
    assert again.already_applied is True
    assert (again.version, again.rows_added, again.total_events) == (1, first.rows_added, 4)
    assert store.current("ds").number == 1
    assert sorted(p.name for p in (tmp_path / "store" / "ds").glob("v*")) == versions
    pd.testing.assert_frame_equal(store.read_events("ds"), before)


def test_a_failure_mid_publish_leaves_the_previous_version(tmp_path, monkeypatch):
    store = EventStore(tmp_path / "store", partitions=4)
    merge_into_store(store, "ds", import_id="a", events=parse_text(tmp_path, "a.csv", FILE_A),
                     users=None, report={})
    before = store.read_events("ds")
    directory = tmp_path / "store" / "ds"
    listing = sorted(p.name for p in directory.iterdir())

    real = pq.write_table
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(pq, "write_table", flaky)
    # Twenty new users touch several partitions: the second Parquet write fails.
    parsed = parse_text(tmp_path, "b.csv", random_events(5, users=20, per_user=2))
    with pytest.raises(OSError, match="disk full"):
        merge_into_store(store, "ds", import_id="b", events=parsed, users=None, report={})
    assert calls["n"] == 2
    monkeypatch.undo()

    assert store.current("ds").number == 1
    assert sorted(store.current("ds").manifest["imports"]) == ["a"]
    pd.testing.assert_frame_equal(store.read_events("ds"), before)
    assert sorted(p.name for p in directory.iterdir()) == listing  # no new or half version

    # The same import can be applied once the disk is back.
    retry = merge_into_store(store, "ds", import_id="b", events=parsed, users=None, report={})
    assert retry.version == 2 and not retry.already_applied


# ----- anomalous days ------------------------------------------------------------------------
def test_anomalous_days_flags_a_planted_spike():
    stamps = []
    for day in range(1, 29):  # 28 days of March 2024, 100 events a day (+-3)
        n = 100 + (day % 7) - 3
        if day == 15:
            n = 1100
        stamps += [pd.Timestamp(f"2024-03-{day:02d}T00:00:00Z") + pd.Timedelta(minutes=i)
                   for i in range(n)]
    days = anomalous_days(pd.Series(stamps))
    assert days["day"].tolist() == ["2024-03-15"]
    assert days["events"].tolist() == [1100]
    assert days["score"].iloc[0] > 5


def test_anomalous_days_needs_two_weeks_of_history():
    stamps = [pd.Timestamp(f"2024-03-{d:02d}T00:00:00Z") for d in range(1, 8) for _ in range(10)]
    stamps += [pd.Timestamp("2024-03-08T00:00:00Z")] * 1000
    assert anomalous_days(pd.Series(stamps)).empty
