"""Malformed and hostile files, imported for real (upload -> import -> job -> event store).

Every case first has a small good import in the dataset. A rejected file must leave the
dataset exactly as it was (same rows, same version, no new store version); an accepted one
must report its problems with exact counts and add only its valid rows.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import services
from events.ingest import ImportOptions, ImportRejected, ParsedEvents, parse_events, parse_users
from events.models import Dataset, Import

H = "user_id,event,timestamp,revenue\n"
PRIOR = (H + "p1,signup,2024-01-01T10:00:00Z,\n"
         "p2,signup,2024-01-02T10:00:00Z,\n"
         "p3,purchase,2024-01-03T10:00:00Z,9.5\n")


def row(user: str, event: str = "view", when: str = "2024-02-01T10:00:00Z",
        revenue: str = "") -> str:
    return f"{user},{event},{when},{revenue}\n"


def jsonl(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def good_json(user: str) -> str:
    return json.dumps({"userId": user, "event": "view", "timestamp": "2024-02-01T10:00:00Z"})


def parquet(columns: dict[str, pa.Array]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    return buffer.getvalue()


def good_parquet() -> bytes:
    return parquet({"user_id": pa.array(["n1", "n2"]), "event": pa.array(["view", "buy"]),
                    "timestamp": pa.array(["2024-02-01T10:00:00Z"] * 2)})


def xlsx_like() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", "<worksheet/>")
    return buffer.getvalue()


Row = tuple[str, str, str, float | None, str | None]


@dataclass(frozen=True)
class Case:
    id: str
    data: bytes | Callable[[], bytes]
    name: str = "events.csv"
    code: str | None = None                  # the whole file is rejected with this code
    problems: dict[str, int] | None = None   # or accepted with exactly these problem counts
    added: int | None = None                 # and this many new events
    options: dict[str, Any] = field(default_factory=dict)
    kind: str = "events"                     # or "users"
    max_bytes: int | None = None             # upload limit (save_upload)
    check: Callable[[set[Row]], None] | None = None  # on the newly stored rows

    def bytes(self) -> bytes:
        return self.data() if callable(self.data) else self.data


def events_are(*expected: str) -> Callable[[set[Row]], None]:
    def check(new: set[Row]) -> None:
        assert sorted(r[1] for r in new) == sorted(expected)
    return check


def users_are(*expected: str) -> Callable[[set[Row]], None]:
    def check(new: set[Row]) -> None:
        assert sorted(r[0] for r in new) == sorted(expected)
    return check


def times_are(*expected: str) -> Callable[[set[Row]], None]:
    def check(new: set[Row]) -> None:
        assert sorted(r[2] for r in new) == sorted(expected)
    return check


def no_carriage_returns(new: set[Row]) -> None:
    assert [r for r in new if any("\r" in str(v) for v in r)] == []


def revenues_are(*expected: float) -> Callable[[set[Row]], None]:
    def check(new: set[Row]) -> None:
        assert sorted(r[3] for r in new) == sorted(expected)
    return check


FORMULAS = ("=cmd|'/c calc'!A1", "+SUM(A1:A9)", "-2+3", '@HYPERLINK("http://evil.example")')


def formulas_stored_verbatim(new: set[Row]) -> None:
    events_are(*FORMULAS, "view")(new)
    users_are("n0", "n1", "n2", "n3", "=1+1")(new)


DEEP = '{"userId": "n1", "event": "view", "timestamp": "2024-02-01T10:00:00Z", "properties": ' \
       + '{"a": ' * 50_000 + "1" + "}" * 50_000 + "}"

CORPUS = [
    # --- encodings and bytes --------------------------------------------------------------
    Case("utf16-le-without-bom", (H + row("n1")).encode("utf-16-le"), code="bad_encoding"),
    Case("utf16-with-bom", (H + row("n1")).encode("utf-16"), code="bad_encoding"),
    Case("latin1", (H + row("müller")).encode("latin-1"), code="bad_encoding"),
    Case("cp1252-smart-quotes", (H + row("n1", "“quoted”")).encode("cp1252"), code="bad_encoding"),
    Case("utf8-cut-mid-character", (H + row("n1")).encode() + b"n2,caf\xc3", code="bad_encoding"),
    Case("nul-bytes", (H + row("n1") + "n2,vi\x00ew,2024-02-01T10:00:00Z,\n").encode(),
         code="nul_bytes"),
    Case("binary-blob", bytes(range(256)) * 8, code="nul_bytes"),
    Case("png-named-csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), code="wrong_format"),
    Case("gzip-csv", lambda: gzip.compress((H + row("n1")).encode()), code="wrong_format"),
    Case("xlsx-named-csv", xlsx_like, code="wrong_format"),
    Case("bom-utf8", b"\xef\xbb\xbf" + (H + row("n1")).encode(), problems={}, added=1,
         check=users_are("n1")),
    Case("crlf", (H + row("n1") + row("n2")).replace("\n", "\r\n").encode(), problems={},
         added=2, check=no_carriage_returns),
    Case("bare-cr", (H + row("n1") + row("n2")).replace("\n", "\r").encode(), problems={},
         added=2, check=users_are("n1", "n2")),
    # --- emptiness, header, shape ---------------------------------------------------------
    Case("empty-file", b"", code="empty_file"),
    Case("header-only", H.encode(), code="empty_file"),
    Case("header-only-no-newline", H.strip().encode(), code="empty_file"),
    Case("blank-lines-only", b"\n\n\n", code="missing_header"),
    Case("whitespace-only", b"   \n  \n", code="missing_header"),
    Case("missing-user-column", b"event,timestamp\nview,2024-02-01T10:00:00Z\n",
         code="missing_column"),
    Case("semicolon-separated", b"user_id;event;timestamp\nn1;view;2024-02-01T10:00:00Z\n",
         code="missing_column"),
    Case("duplicate-header", b"user_id,event,timestamp,event\nn1,a,2024-02-01T10:00:00Z,b\n",
         code="duplicate_columns"),
    Case("unnamed-header-column", b"user_id,,timestamp\nn1,a,2024-02-01T10:00:00Z\n",
         code="missing_header"),
    Case("same-header-in-two-cases",
         b"user_id,USER_ID,event,timestamp\nn1,N1,view,2024-02-01T10:00:00Z\n",
         problems={"unknown_columns": 1}, added=1, check=users_are("n1")),
    Case("formula-in-header",
         (H.strip() + ',"=HYPERLINK(""http://evil.example"")"\n' + row("n1").strip() + ",x\n")
         .encode(), problems={"unknown_columns": 1}, added=1),
    Case("ragged-rows", (H + row("n1") + "n2,view\n" + "n3,view,2024-02-01T10:00:00Z,1,x,y\n"
                         + row("n4", "buy", "2024-02-02T10:00:00Z", "3")).encode(),
         problems={"ragged_row": 2}, added=2, check=users_are("n1", "n4")),
    Case("unclosed-quote", (H + row("n1") + 'n2,"view,2024-02-01T10:00:00Z,\n'
                            + row("n3") + row("n4")).encode(), code="unclosed_quote"),
    Case("quotes-commas-newlines",
         (H + 'n1,"add, to cart",2024-02-01T10:00:00Z,\n'
          + 'n2,"multi\nline",2024-02-01T10:00:00Z,\n'
          + 'n3,"say ""hi""",2024-02-01T10:00:00Z,\n').encode(),
         problems={}, added=3, check=events_are("add, to cart", "multi\nline", 'say "hi"')),
    Case("literal-inch-quote", (H + row("n1", '27" monitor')).encode(), problems={}, added=1,
         check=events_are('27" monitor')),
    Case("field-of-2mb", lambda: (H + row("n1", "x" * 2_000_000) + row("n2")).encode(),
         problems={"field_too_large": 1}, added=1, check=users_are("n2")),
    Case("formula-cells",
         (H + "".join(row(f"n{i}", '"' + f.replace('"', '""') + '"')
                      for i, f in enumerate(FORMULAS)) + row("=1+1")).encode(),
         problems={}, added=5, check=formulas_stored_verbatim),
    Case("all-rows-invalid", (H + row("") + row("") + row("null")).encode(),
         code="no_valid_rows"),
    Case("null-like-user-ids", (H + row("null") + row("undefined") + row("") + row("   ")
                                + row("NULL") + row("n1")).encode(),
         problems={"missing_user_id": 5}, added=1, check=users_are("n1")),
    # --- values -----------------------------------------------------------------------------
    Case("naive-timestamps-without-timezone",
         (H + row("n1", when="2024-02-01 10:00:00") + row("n2", when="2024-02-01T10:00:00")
          + row("n3")).encode(),
         problems={"naive_timestamp": 2}, added=1, check=users_are("n3")),
    Case("ambiguous-dst-with-timezone",
         (H + row("n1", when="2023-10-29 02:30:00")     # Berlin: 02:30 happens twice
          + row("n2", when="2024-03-31 02:30:00")       # Berlin: 02:30 never happens
          + row("n3", when="2024-02-01 10:00:00")).encode(),
         options={"timezone": "Europe/Berlin"}, problems={"ambiguous_timestamp": 2}, added=1,
         check=times_are("2024-02-01T09:00:00+00:00")),
    Case("unparseable-timestamps",
         (H + row("n1", when="yesterday") + row("n2", when="2024-02-30T10:00:00Z")
          + row("n3", when="") + row("n4")).encode(),
         problems={"bad_timestamp": 3}, added=1),
    Case("future-and-before-2000",
         (H + row("n1", when="2999-01-01T00:00:00Z") + row("n2", when="1999-12-31T23:59:59Z")
          + row("n3", when="1970-01-01T00:00:00Z") + row("n4")).encode(),
         problems={"future_timestamp": 1, "timestamp_before_2000": 2}, added=1),
    Case("wrong-type-revenue",
         (H + row("n1", revenue="abc") + row("n2", revenue="inf") + row("n3", revenue="NaN")
          + row("n4", revenue="-Infinity") + row("n5", revenue="1e999")
          + row("n6", revenue='"12,50"') + row("n7", revenue="3.5")).encode(),
         problems={"bad_revenue": 6}, added=1, check=revenues_are(3.5)),
    Case("duplicate-only", (H + row("p1", "signup", "2024-01-01T10:00:00Z") * 3
                            + row("p2", "signup", "2024-01-02T10:00:00Z")).encode(),
         problems={"duplicate": 4}, added=0),
    # --- JSON lines -------------------------------------------------------------------------
    Case("json-every-line-garbage", b'not json\n[1, 2]\n"text"\n{"unclosed": \n',
         name="events.jsonl", code="malformed_json"),
    Case("json-array-document", json.dumps([json.loads(good_json("n1"))]).encode(),
         name="events.json", code="malformed_json"),
    Case("json-non-objects-mixed", jsonl(good_json("n1"), "[1]", "42", "null", "{broken",
                                         good_json("n2")),
         name="events.jsonl", problems={"malformed_json": 4}, added=2),
    Case("json-deep-nesting", jsonl(DEEP, good_json("n2")), name="events.jsonl",
         problems={"malformed_json": 1}, added=1, check=users_are("n2")),
    Case("json-lone-surrogate",
         jsonl('{"userId": "\\ud800", "event": "view", "timestamp": "2024-02-01T10:00:00Z"}',
               good_json("n2")),
         name="events.jsonl", problems={"malformed_json": 1}, added=1),
    Case("json-nan-and-boolean",
         jsonl('{"userId": "n1", "event": "v", "timestamp": "2024-02-01T10:00:00Z", '
               '"revenue": NaN}',
               '{"userId": "n2", "event": "v", "timestamp": true}', good_json("n3")),
         name="events.jsonl", problems={"bad_revenue": 1, "bad_timestamp": 1}, added=1),
    Case("json-wrong-types",
         jsonl('{"userId": 42, "event": "view", "timestamp": "2024-02-01T10:00:00Z"}',
               '{"userId": "n2", "event": "view", "timestamp": "2024-02-01T10:00:00Z", '
               '"properties": [1, 2]}',
               '{"userId": "n3", "event": "view", "timestamp": "2024-02-01T10:00:00Z", '
               '"properties": "not an object"}'),
         name="events.jsonl", problems={"bad_properties": 2}, added=1, check=users_are("42")),
    # --- Parquet ----------------------------------------------------------------------------
    Case("parquet-truncated", lambda: good_parquet()[:len(good_parquet()) // 2],
         name="events.parquet", code="malformed_parquet"),
    Case("parquet-footer-cut", lambda: good_parquet()[:-12], name="events.parquet",
         code="malformed_parquet"),
    Case("parquet-binary-user-ids-not-utf8",
         lambda: parquet({"user_id": pa.array([b"\xff\xfe", b"n2"]),
                          "event": pa.array(["view", "view"]),
                          "timestamp": pa.array(["2024-02-01T10:00:00Z"] * 2)}),
         name="events.parquet", code="bad_encoding"),
    Case("parquet-nan-revenue",
         lambda: parquet({"user_id": pa.array(["n1", "n2"]), "event": pa.array(["buy", "buy"]),
                          "timestamp": pa.array(["2024-02-01T10:00:00Z"] * 2),
                          "revenue": pa.array([float("nan"), 2.0], from_pandas=False)}),
         name="events.parquet", problems={"bad_revenue": 1}, added=1, check=users_are("n2")),
    Case("parquet-declared-csv", good_parquet, name="events.parquet",
         options={"format": "csv"}, code="wrong_format"),
    # --- options and limits -----------------------------------------------------------------
    Case("over-the-size-limit", (H + row("n1") * 50).encode(), max_bytes=100, code="too_large"),
    Case("unknown-mapping-target", (H + row("n1")).encode(),
         options={"mapping": {"userid_column": "user_id"}}, code="bad_mapping"),
    Case("mapping-to-missing-column", (H + row("n1")).encode(),
         options={"mapping": {"user_id": "customer"}}, code="missing_column"),
    Case("unknown-timezone", (H + row("n1")).encode(), options={"timezone": "Mars/Olympus_Mons"},
         code="bad_timezone"),
    Case("timezone-path-traversal", (H + row("n1")).encode(),
         options={"timezone": "../../../etc/passwd"}, code="bad_timezone"),
    # --- users files ------------------------------------------------------------------------
    Case("users-mismatched", b"user_id,plan\nx1,pro\nx2,free\n", name="users.csv", kind="users",
         code="users_mismatch"),
    Case("users-without-user-column", b"customer,plan\np1,pro\n", name="users.csv",
         kind="users", code="missing_column"),
    Case("users-latin1", "user_id,plan\np1,prö\n".encode("latin-1"), name="users.csv",
         kind="users", code="bad_encoding"),
    Case("users-partly-unknown", b"user_id,plan\np1,pro\nzz,free\n", name="users.csv",
         kind="users", problems={"users_without_events": 1}, added=0),
]


def _row_tuples(frame: pd.DataFrame) -> list[Row]:
    out = []
    for rec in frame.to_dict("records"):
        out.append((rec["user_id"], str(rec["event"]), rec["timestamp"].isoformat(),
                    None if pd.isna(rec["revenue"]) else float(rec["revenue"]),
                    None if pd.isna(rec["properties"]) else rec["properties"]))
    return out


def _store_listing(dataset: Dataset) -> list[str]:
    directory = services.get_store().dataset_dir(dataset.store_key)
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture
def importer(workspace_factory, django_capture_on_commit_callbacks, settings):  # type: ignore[no-untyped-def]
    settings.EVENT_STORE_PARTITIONS = 1  # partitioning is not what these cases test: keep it fast
    workspace = workspace_factory("acme")
    dataset = services.dataset_create(workspace=workspace, name="Hostile")

    def run(data: bytes, name: str, *, kind: str = "events", options: dict | None = None,
            max_bytes: int | None = None) -> Import:
        upload = services.save_upload(io.BytesIO(data), name=name, max_bytes=max_bytes,
                                      workspace=workspace)
        files = {"events": (upload[0], name)} if kind == "events" else {
            "events": None, "users": (upload[0], name)}
        with django_capture_on_commit_callbacks(execute=True):
            record, created = services.import_create(dataset=dataset, user=None,
                                                     options=options, **files)
        assert created
        record.refresh_from_db()
        return record

    prior = run(PRIOR.encode(), "prior.csv")
    assert prior.status == "succeeded", prior.job.error
    assert prior.rows_added == 3
    return dataset, run


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_hostile_input(case: Case, importer) -> None:  # type: ignore[no-untyped-def]
    dataset, run = importer
    store = services.get_store()
    dataset.refresh_from_db()
    version, total = dataset.version, dataset.total_events
    before = store.read_events(dataset.store_key)
    listing = _store_listing(dataset)
    imports_before = Import.objects.count()

    if case.max_bytes is not None:
        with pytest.raises(ImportRejected) as info:
            run(case.bytes(), case.name, kind=case.kind, options=case.options,
                max_bytes=case.max_bytes)
        assert info.value.code == case.code
        assert Import.objects.count() == imports_before  # nothing registered
        uploads = Path(services.get_store().root) / "uploads"
        assert [p.name for p in uploads.rglob(".incoming*")] == []
        record = None
    else:
        record = run(case.bytes(), case.name, kind=case.kind, options=case.options)

    dataset.refresh_from_db()
    after = store.read_events(dataset.store_key)
    if case.code is not None:
        if record is not None:
            assert record.status == "rejected", (record.status, record.error, record.job.error)
            assert record.error["code"] == case.code, record.error
            assert record.error["message"]
            assert (record.rows_added, record.dataset_version, record.report) == (0, None, {})
        # Nothing added, nothing lost, no new version.
        pd.testing.assert_frame_equal(after, before)
        assert (dataset.version, dataset.total_events) == (version, total)
        assert _store_listing(dataset) == listing
        if case.kind == "users":
            assert len(store.read_users(dataset.store_key)) == 0
        return

    assert record is not None
    assert record.status == "succeeded", (record.status, record.error, record.job.error)
    section = record.report["events" if case.kind == "events" else "users"]
    found = {code: entry["count"] for code, entry in section["problems"].items()}
    assert found == case.problems
    assert record.rows_added == case.added
    old, new = _row_tuples(before), _row_tuples(after)
    assert set(old) <= set(new), "previously imported rows were lost"
    assert len(new) == len(old) + case.added
    added = set(new) - set(old)
    assert len(added) == case.added
    # A file that adds nothing publishes no new version of the events.
    assert dataset.version == version + (1 if case.added or case.kind == "users" else 0)
    if case.check is not None:
        case.check(added)


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 25
    assert len({c.id for c in CORPUS}) == len(CORPUS)
    for case in CORPUS:
        assert (case.code is None) != (case.problems is None), case.id


# ----- property: arbitrary bytes only ever end in a clean rejection --------------------------
PREFIXES = [b"", H.encode(), b'{"userId": "u1", "event": "e", "timestamp": ', b"PAR1",
            b"\xef\xbb\xbf" + H.encode()]


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(prefix=st.sampled_from(PREFIXES), body=st.binary(max_size=2048),
       suffix=st.sampled_from([".csv", ".jsonl", ".parquet", ".txt"]),
       timezone=st.sampled_from([None, "Europe/Berlin"]))
def test_arbitrary_bytes_are_parsed_or_cleanly_rejected(tmp_path, prefix, body, suffix, timezone):
    path = tmp_path / f"upload{suffix}"
    path.write_bytes(prefix + body)
    options = ImportOptions(now=datetime(2025, 1, 1, tzinfo=UTC), timezone=timezone)
    try:
        result = parse_events(path, options)
    except ImportRejected as exc:
        assert exc.code and exc.message
    else:
        assert isinstance(result, ParsedEvents)
        assert len(result.frame) > 0
    try:
        parse_users(path, options)
    except ImportRejected as exc:
        assert exc.code
