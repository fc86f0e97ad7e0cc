"""Parse, validate and de-duplicate event and user files; merge them into the event store.

Pure (no Django). Two kinds of failure:

* ``ImportRejected``: the file cannot be imported at all (wrong format, bad encoding, missing
  required column, empty, over the size limit, no valid row). Nothing is written.
* row problems: counted in the quality report with up to five sample rows (line numbers), and
  the offending rows are left out; everything else is imported.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from .store import EVENT_SCHEMA, EventStore, partition_of

SAMPLE_LIMIT = 5
MIN_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
# Clock skew we tolerate before calling a timestamp "in the future".
FUTURE_TOLERANCE = pd.Timedelta(minutes=10)
# A single value (user id, event name, properties) larger than this is a row problem.
MAX_FIELD_BYTES = 1_000_000
CSV_BLOCK_SIZE = 8 << 20
SCAN_CHUNK = 16 << 20
# Rows per piece of the fast timestamp parser; a piece it cannot take goes the general way.
TS_CHUNK = 1 << 20
# User ids that are an exporter's spelling of "no user" rather than a user.
NULL_USER_IDS = ("null", "none", "nan", "undefined")

EVENT_ALIASES: dict[str, tuple[str, ...]] = {
    "user_id": ("user_id", "userId", "distinct_id", "userid", "user"),
    "event": ("event", "event_type", "event_name", "name"),
    "timestamp": ("timestamp", "time", "event_time", "ts", "datetime"),
    "revenue": ("revenue", "amount", "price"),
    "cost": ("cost", "cost_to_serve"),
    "properties": ("properties", "event_properties"),
}
REQUIRED_EVENT_COLUMNS = ("user_id", "event", "timestamp")
USER_ALIASES: dict[str, tuple[str, ...]] = {
    "user_id": ("user_id", "userId", "distinct_id", "userid", "user"),
    "signup_time": ("signup_time", "signup_at", "signed_up_at", "created_at", "signup"),
}
# Keys analytics tools put beside the track call that carry no behaviour of their own.
IGNORED_JSON_KEYS = {"type", "messageId", "anonymousId", "context", "receivedAt", "sentAt",
                     "originalTimestamp", "integrations", "insert_id", "$insert_id", "uuid"}

_TZ_SUFFIX = r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|z|UTC|[+-]\d{2}(?::?\d{2})?)$"
_EPOCH = r"^\s*-?\d{9,13}(?:\.\d+)?\s*$"
_UTC_SUFFIX = r"\s*(?:UTC|[Zz])$"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")

# Leading bytes of files people upload by mistake; named in the rejection message.
BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook?)"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel .xls / Office document"),
    (b"\x1f\x8b", "gzip-compressed; decompress it first"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed; decompress it first"),
    (b"\xfd7zXZ\x00", "xz-compressed; decompress it first"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"ARROW1", "an Arrow/Feather file"),
    (b"Obj\x01", "an Avro file"),
)
UNICODE_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


class ImportRejected(Exception):
    """The whole file is refused; ``code`` names the problem class, ``where`` locates it."""

    def __init__(self, code: str, message: str, where: str = "") -> None:
        super().__init__(f"{message} ({where})" if where else message)
        self.code = code
        self.message = message
        self.where = where

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "where": self.where}


@dataclass(frozen=True)
class ImportOptions:
    """How to read one file. ``now`` is a parameter so validation is deterministic."""

    now: datetime
    format: str = "auto"  # auto | csv | parquet | jsonl
    mapping: Mapping[str, str] = field(default_factory=dict)
    timezone: str | None = None
    max_bytes: int | None = None


@dataclass
class Problems:
    """Row problems of one file: counts and up to five samples per class."""

    counts: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def add(self, code: str, mask: np.ndarray, frame: pd.DataFrame, columns: list[str]) -> None:
        n = int(mask.sum())
        if n == 0:
            return
        self.counts[code] = self.counts.get(code, 0) + n
        have = self.samples.setdefault(code, [])
        if len(have) < SAMPLE_LIMIT:
            rows = frame.loc[mask].head(SAMPLE_LIMIT - len(have))
            for _, row in rows.iterrows():
                have.append(
                    {
                        "line": int(row["__line"]),
                        "values": {c: _jsonable(row[c]) for c in columns if c in row.index},
                    }
                )

    def add_raw(self, code: str, count: int, samples: list[dict[str, Any]], note: str = "") -> None:
        if count <= 0:
            return
        self.counts[code] = self.counts.get(code, 0) + count
        have = self.samples.setdefault(code, [])
        have.extend(samples[: max(0, SAMPLE_LIMIT - len(have))])
        if note:
            self.notes[code] = note

    def as_dict(self) -> dict[str, Any]:
        return {
            code: {
                "count": count,
                "samples": self.samples.get(code, []),
                **({"note": self.notes[code]} if code in self.notes else {}),
            }
            for code, count in sorted(self.counts.items())
        }


@dataclass
class ParsedEvents:
    frame: pd.DataFrame  # user_id, event, timestamp, revenue, cost, properties, __line
    rows_read: int
    problems: Problems
    columns: dict[str, str]  # canonical -> source column
    format: str


@dataclass
class ParsedUsers:
    frame: pd.DataFrame  # user_id, signup_time, attributes...
    rows_read: int
    problems: Problems
    format: str
    user_column: str = "user_id"  # the file's user id column (samples use its name)


# ----- reading raw files ---------------------------------------------------------------------
def detect_format(path: Path, declared: str = "auto") -> str:
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if declared != "auto":
        if declared not in {"csv", "parquet", "jsonl"}:
            raise ImportRejected("unknown_format", f"unsupported format {declared!r}",
                                 "expected csv, parquet or jsonl")
        if declared != "parquet" and head[:4] == b"PAR1":
            raise ImportRejected("wrong_format", f"this is a Parquet file, not {declared}",
                                 f"{path.name}: set the format to parquet or auto")
        return declared
    if head[:4] == b"PAR1":
        return "parquet"
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        return "parquet"
    if suffix in {".jsonl", ".ndjson", ".json"}:
        return "jsonl"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped[:1] == b"{":
        return "jsonl"
    return "csv"


def check_file(path: Path, options: ImportOptions) -> int:
    """Size, emptiness and known non-tabular formats; returns the size in bytes."""
    size = path.stat().st_size
    if size == 0:
        raise ImportRejected("empty_file", "the file is empty", path.name)
    if options.max_bytes is not None and size > options.max_bytes:
        raise ImportRejected(
            "too_large",
            f"the file has {size:,} bytes, over the limit of {options.max_bytes:,}",
            path.name,
        )
    with open(path, "rb") as handle:
        head = handle.read(64)
    for magic, what in BINARY_SIGNATURES:
        if head.startswith(magic):
            raise ImportRejected(
                "wrong_format", f"the file is {what}, not CSV, Parquet or JSON Lines",
                f"{path.name}, byte 0",
            )
    return size


@dataclass(frozen=True)
class TextShape:
    """What the encoding check learned on its way through a text file."""

    newlines: int
    ends_with_newline: bool


def _check_text(path: Path) -> TextShape:
    """Reject text that is not UTF-8 or contains NUL bytes, naming the line."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    offset = 0
    last = 0
    buffer = bytearray(SCAN_CHUNK)
    with open(path, "rb") as handle:
        while size := handle.readinto(buffer):
            chunk = buffer if size == len(buffer) else buffer[:size]
            if offset == 0:
                _check_not_utf16(bytes(chunk[:4096]))
            nul = chunk.find(b"\x00")
            if nul >= 0:
                where = line + chunk.count(b"\n", 0, nul)
                raise ImportRejected("nul_bytes",
                                     "the file contains NUL bytes (is it a binary file?)",
                                     f"line {where}, byte {offset + nul}")
            try:
                # Plain ASCII after a complete character is valid UTF-8: no decoding needed.
                if not (chunk.isascii() and decoder.getstate()[0] == b""):
                    decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                where = line + chunk.count(b"\n", 0, exc.start)
                raise ImportRejected(
                    "bad_encoding", "the file is not valid UTF-8 text; save it as UTF-8",
                    f"line {where}, byte {offset + exc.start}",
                ) from None
            line += int(np.count_nonzero(np.frombuffer(chunk, dtype=np.uint8, count=size) == 10))
            offset += size
            last = chunk[size - 1]
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ImportRejected("bad_encoding", "the file ends inside a UTF-8 character",
                                 f"line {line}, byte {offset}") from None
    return TextShape(newlines=line - 1, ends_with_newline=last == 10)


def _check_not_utf16(head: bytes) -> None:
    """UTF-16/32 text (with or without a byte order mark) is an encoding problem, not NULs."""
    for bom, name in UNICODE_BOMS:
        if head.startswith(bom):
            raise ImportRejected("bad_encoding",
                                 f"the file is {name} text; save it as UTF-8",
                                 "byte 0 (byte order mark)")
    sample = head[:4096]
    half = len(sample) // 2
    if half < 4:
        return
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    # ASCII in UTF-16: every other byte is NUL, the bytes between are not.
    if max(even, odd) >= 0.6 * half and min(even, odd) <= 0.05 * half:
        raise ImportRejected(
            "bad_encoding",
            f"the file looks like UTF-16{'-LE' if odd > even else '-BE'} text "
            "(every other byte is NUL); save it as UTF-8",
            "line 1, byte 0",
        )


def _read_csv(path: Path) -> tuple[pd.DataFrame, Problems]:
    shape = _check_text(path)
    problems = Problems()
    with open(path, encoding="utf-8-sig", newline="") as handle:
        first = handle.readline()
    if not first.strip():
        raise ImportRejected("missing_header", "the first line (the header) is empty", "line 1")
    if not first.endswith(("\n", "\r")):
        raise ImportRejected("empty_file", "the file has a header but no rows",
                             f"{path.name}, line 1")
    try:
        header = next(csv.reader([first]))
    except csv.Error as exc:
        raise ImportRejected("malformed_header", f"the header cannot be read: {exc}", "line 1") from None
    header = [h.strip() for h in header]
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise ImportRejected("duplicate_columns", f"columns appear twice: {', '.join(dupes)}", "line 1")
    if any(not h for h in header):
        raise ImportRejected("missing_header", "a column in the header has no name", "line 1")
    ragged_text: list[str] = []
    ragged_shapes: list[tuple[int, int, int]] = []  # (fields, lines, bytes) of rows left out
    ragged_count = 0
    open_quote: list[str] = []  # ragged records that may be a quote never closed

    def on_invalid(row: pa_csv.InvalidRow) -> str:
        nonlocal ragged_count
        ragged_count += 1
        text = row.text or ""
        ragged_shapes.append((int(row.actual_columns), text.count("\n") + 1,
                              len(text.encode("utf-8"))))
        if len(ragged_text) < SAMPLE_LIMIT:
            ragged_text.append(text[:200])
        if "\n" in text and text.count('"') % 2:
            open_quote.append(text)
        return "skip"

    try:
        table = pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(block_size=CSV_BLOCK_SIZE, column_names=header,
                                            skip_rows=1),
            parse_options=pa_csv.ParseOptions(invalid_row_handler=on_invalid,
                                              newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types={h: pa.large_string() for h in header},  # as pandas keeps text
                strings_can_be_null=True,
                null_values=[""],
            ),
        )
    except pa.ArrowInvalid as exc:
        text = str(exc)
        if "straddl" in text or "larger than block size" in text:
            raise ImportRejected("field_too_large",
                                 f"a row is larger than {CSV_BLOCK_SIZE >> 20} MB", path.name) from None
        raise ImportRejected("malformed_csv", f"the CSV cannot be parsed: {text[:300]}", path.name) from None
    lines_in_file = shape.newlines + (0 if shape.ends_with_newline else 1)
    for text in open_quote:
        _reject_if_unclosed_quote(path, text, lines_in_file)
    if table.num_rows:
        for column in table.columns:  # the last value may be a quote never closed, too
            value = column[-1].as_py()
            if value and "\n" in value:
                _reject_if_unclosed_quote(path, value, lines_in_file)
    width = len(header)
    layout = None
    if ragged_count or lines_in_file != table.num_rows + 1:
        # Not one record per line (quoted newlines, blank lines) or rows left out: find
        # the start line of every record so samples name the right line. Each row spans
        # one line more than the line breaks inside its values.
        spans = np.ones(table.num_rows, dtype=np.int64)
        for column in table.columns:
            breaks = pc.count_substring(column, "\n").fill_null(0)
            spans += np.asarray(breaks.to_numpy(), dtype=np.int64)
        shapes = (spans, ragged_shapes)
        layout = _consistent(_record_layout(path), width, shapes)
        if layout is None:  # quoting this scan does not model: the csv module's reading
            layout = _consistent(_record_lines(path), width, shapes)
    frame = table.to_pandas()
    if layout is not None:
        starts, widths = layout
        good = widths == width
        frame["__line"] = starts[good]
        ragged = [{"line": int(line), "values": {"fields": int(w), "expected": width}}
                  for line, w in zip(starts[~good][:SAMPLE_LIMIT], widths[~good][:SAMPLE_LIMIT],
                                     strict=True)]
    else:
        # One record per line after the header (line 1).
        frame["__line"] = np.arange(2, len(frame) + 2)
        ragged = [{"line": None, "values": {"text": text, "expected": width}}
                  for text in ragged_text]
    problems.add_raw("ragged_row", ragged_count, ragged,
                     "rows with a different number of fields than the header; left out")
    return frame, problems


def _reject_if_unclosed_quote(path: Path, text: str, lines_in_file: int) -> None:
    """A record (or last value) that runs to the very end of the file across lines is an
    opening quote never closed: the rest of the file would silently become one value.

    A value whose quotes are closed cannot match the file's tail: the file has the closing
    quote after it, and any quote inside it is doubled in the file."""
    raw = text.encode("utf-8").rstrip(b"\r\n")
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - len(raw) - 4))
        tail = handle.read().rstrip(b"\r\n")
    if tail.endswith(raw):
        start = max(2, lines_in_file - text.rstrip("\r\n").count("\n"))
        raise ImportRejected(
            "unclosed_quote",
            "a quoted field is never closed; the rest of the file would be read as one value",
            f"line {start}",
        )


Layout = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]


def _consistent(
    layout: Layout | None,
    width: int,
    shapes: tuple[np.ndarray, list[tuple[int, int, int]]],
) -> tuple[np.ndarray, np.ndarray] | None:
    """(starts, widths) if the layout agrees record by record with what the CSV reader
    kept (in order: lines spanned) and left out (fields, lines and bytes), else None."""
    if layout is None:
        return None
    starts, widths, spans, sizes = layout
    good = widths == width
    kept_spans, ragged = shapes
    if not np.array_equal(spans[good], kept_spans):
        return None
    if sizes is None:
        found = sorted(zip(widths[~good].tolist(), spans[~good].tolist(), strict=True))
        expected = sorted(shape[:2] for shape in ragged)
    else:
        found = sorted(zip(widths[~good].tolist(), spans[~good].tolist(),
                           sizes[~good].tolist(), strict=True))
        expected = sorted(ragged)
    return (starts, widths) if found == expected else None


_BOUNDARY = np.zeros(256, dtype=bool)
_BOUNDARY[[10, 13, 34, 44]] = True  # newline, carriage return, quote, comma


def _record_layout(path: Path) -> Layout | None:
    """Start line, field count, lines spanned and size in bytes (without the line break)
    of every data record of a CSV file, vectorized over the bytes.

    A double quote next to a field boundary toggles "inside quotes" (an escaped "" toggles
    twice); a quote inside an unquoted value (5" screen) is a literal. Newlines and commas
    outside quotes end records and fields; empty lines are not records. Returns None for
    bare-CR line endings and quotes left open; the caller also checks the result against
    what the CSV reader found.
    """
    starts: list[np.ndarray] = []
    widths: list[np.ndarray] = []
    ends_at: list[np.ndarray] = []  # line of the newline that ends each record
    sizes: list[np.ndarray] = []
    inside = np.uint8(0)  # quote state at the end of the previous chunk
    newlines = offset = open_commas = 0
    record_start, record_line = 0, 1
    prev = 10  # the byte before the file counts as a line break
    with open(path, "rb") as handle:
        while chunk := handle.read(SCAN_CHUNK):
            arr = np.frombuffer(chunk, dtype=np.uint8)
            following = handle.peek(1)[:1]
            before = np.empty_like(arr)
            before[0] = prev
            before[1:] = arr[:-1]
            after = np.empty_like(arr)
            after[-1] = following[0] if following else 10
            after[:-1] = arr[1:]
            quote = (arr == 34) & (_BOUNDARY[before] | _BOUNDARY[after])
            state = np.bitwise_xor.accumulate(quote.view(np.uint8)) ^ inside
            outside = state == 0
            if np.any(outside & (arr == 13) & (after != 10)):
                return None
            newline_at = np.flatnonzero(arr == 10)
            ends = newline_at[outside[newline_at]]
            commas = np.flatnonzero((arr == 44) & outside)
            if len(ends):
                commas_before = np.searchsorted(commas, ends)
                per_record = np.diff(commas_before, prepend=0)
                per_record[0] += open_commas
                global_ends = ends + offset
                global_starts = np.concatenate(([record_start], global_ends[:-1] + 1))
                index = np.searchsorted(newline_at, ends)
                lines = np.concatenate(([record_line], newlines + index[:-1] + 2))
                length = global_ends - global_starts
                empty = (length == 0) | ((length == 1) & (before[ends] == 13))
                starts.append(lines[~empty])
                widths.append(per_record[~empty] + 1)
                ends_at.append((newlines + index + 1)[~empty])
                sizes.append((length - (before[ends] == 13))[~empty])
                record_start = int(global_ends[-1]) + 1
                record_line = newlines + int(index[-1]) + 2
                open_commas = len(commas) - int(commas_before[-1])
            else:
                open_commas += len(commas)
            newlines += len(newline_at)
            offset += len(arr)
            inside = state[-1]
            prev = int(arr[-1])
    if inside:  # quotes left open: this reading of the quotes is not the CSV reader's
        return None
    length = offset - record_start
    if length > 0 and not (length == 1 and prev == 13):
        starts.append(np.asarray([record_line]))
        widths.append(np.asarray([open_commas + 1]))
        ends_at.append(np.asarray([newlines + 1]))
        sizes.append(np.asarray([length - (prev == 13)]))

    def joined(parts: list[np.ndarray]) -> np.ndarray:  # without the header record
        return (np.concatenate(parts) if parts else np.zeros(0, np.int64))[1:].astype(np.int64)

    first, last = joined(starts), joined(ends_at)
    return first, joined(widths), last - first + 1, joined(sizes)


def _record_lines(path: Path) -> Layout | None:
    """Start line, field count and lines spanned of every data record, read by the csv
    module (the fallback for quoting the byte scan does not model)."""
    starts: list[int] = []
    widths: list[int] = []
    spans: list[int] = []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        try:
            next(reader, None)
            line = reader.line_num + 1
            for record in reader:
                if record:
                    starts.append(line)
                    widths.append(len(record))
                    spans.append(reader.line_num - line + 1)
                line = reader.line_num + 1
        except csv.Error:  # e.g. a value over the csv module's field size limit
            return None
    return (np.asarray(starts, dtype=np.int64), np.asarray(widths, dtype=np.int64),
            np.asarray(spans, dtype=np.int64), None)


def _read_parquet(path: Path) -> tuple[pd.DataFrame, Problems]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ImportRejected("malformed_parquet", f"the Parquet file cannot be read: {str(exc)[:300]}",
                             path.name) from None
    nan_masks: dict[str, np.ndarray] = {}
    for i, column in enumerate(table.schema):
        kind = column.type
        if (pa.types.is_binary(kind) or pa.types.is_large_binary(kind)
                or pa.types.is_fixed_size_binary(kind) or pa.types.is_binary_view(kind)):
            try:
                table = table.set_column(i, column.name, table.column(i).cast(pa.string()))
            except pa.ArrowInvalid:
                raise ImportRejected("bad_encoding",
                                     f"column {column.name!r} holds bytes that are not UTF-8 text",
                                     path.name) from None
        elif pa.types.is_floating(kind):
            # NaN is a value, not a missing one: keep the difference for revenue and cost.
            nan = pc.is_nan(table.column(i)).fill_null(False)
            if pc.any(nan).as_py():
                nan_masks[column.name] = nan.to_numpy(zero_copy_only=False)
    try:
        # Integers stay integers when some are missing (user id 7, not 7.0).
        frame = table.to_pandas(types_mapper=_nullable_integers)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise ImportRejected("malformed_parquet",
                             f"the Parquet file's columns cannot be read: {str(exc)[:300]}",
                             path.name) from None
    frame.attrs["nan_masks"] = nan_masks
    frame["__line"] = np.arange(1, len(frame) + 1)
    return frame, Problems()


def _nullable_integers(kind: pa.DataType) -> Any:
    if pa.types.is_integer(kind):
        return pd.UInt64Dtype() if kind == pa.uint64() else pd.Int64Dtype()
    return None


def _read_jsonl(path: Path) -> tuple[pd.DataFrame, Problems]:
    _check_text(path)
    problems = Problems()
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    bad: list[dict[str, Any]] = []
    bad_count = 0
    with open(path, encoding="utf-8-sig") as handle:
        for number, raw in enumerate(handle, start=1):
            text = raw.strip()
            if not text:
                continue
            record = _json_record(text)
            if record is None:
                bad_count += 1
                if len(bad) < SAMPLE_LIMIT:
                    bad.append({"line": number, "values": {"text": text[:200]}})
                continue
            records.append(record)
            lines.append(number)
    if not records and bad_count:
        first = bad[0]["values"]["text"]
        hint = ("; the file is one JSON array, but JSON Lines needs one object per line"
                if first.startswith("[") and bad_count == 1 else "")
        raise ImportRejected("malformed_json", f"no line of the file is a JSON object{hint}",
                             f"line {bad[0]['line']}")
    problems.add_raw("malformed_json", bad_count, bad, "lines that are not a JSON object; left out")
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    frame["__line"] = np.asarray(lines, dtype=np.int64)
    return frame, problems


def _json_record(text: str) -> dict[str, Any] | None:
    """One line as a flat record, or None when it is not a usable JSON object."""
    try:
        # NaN and Infinity stay text, so revenue "NaN" is reported, not taken as missing.
        value = json.loads(text, parse_constant=str)
        if not isinstance(value, dict):
            return None
        record = _flatten_track_call(value)
        if _SURROGATE_ESCAPE.search(text):
            # A lone UTF-16 surrogate (\ud800) decodes to a str that is not valid text.
            json.dumps(record, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        return None
    return record


def _flatten_track_call(record: dict[str, Any]) -> dict[str, Any]:
    """Segment, Mixpanel and Amplitude exports -> flat columns, properties as JSON text."""
    props = record.get("properties")
    if props is None:
        props = record.get("event_properties")
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key in ("properties", "event_properties") or key in IGNORED_JSON_KEYS:
            continue
        out[key] = value if not isinstance(value, dict | list) else json.dumps(value, sort_keys=True)
    if isinstance(props, dict):
        props = dict(props)
        # Mixpanel keeps the user and the time inside properties.
        for key in ("distinct_id", "time"):
            if key in props and key not in out:
                out[key] = props.pop(key)
        for key in ("revenue", "cost"):
            if key in props and key not in out:
                out[key] = props[key]
        out["properties"] = json.dumps(props, sort_keys=True, default=str) if props else None
    elif props is not None:
        out["properties"] = props if isinstance(props, str) else json.dumps(props)
    return out


def read_table(path: Path, options: ImportOptions) -> tuple[pd.DataFrame, Problems, str]:
    check_file(path, options)
    fmt = detect_format(path, options.format)
    reader = {"csv": _read_csv, "parquet": _read_parquet, "jsonl": _read_jsonl}[fmt]
    frame, problems = reader(path)
    if len(frame) == 0:
        if problems.counts:
            worst = max(problems.counts, key=lambda c: problems.counts[c])
            raise ImportRejected("no_valid_rows",
                                 f"no row of the file could be read; the problem: {worst}",
                                 _first_sample_where(problems))
        raise ImportRejected("empty_file", "the file has a header but no rows", path.name)
    return frame, problems, fmt


def _first_sample_where(problems: Problems) -> str:
    for samples in problems.samples.values():
        if samples and samples[0].get("line") is not None:
            return f"line {samples[0]['line']}"
    return ""


def resolve_columns(
    available: list[str],
    aliases: Mapping[str, tuple[str, ...]],
    mapping: Mapping[str, str],
    required: tuple[str, ...],
) -> dict[str, str]:
    """canonical name -> source column, from the explicit mapping first, then known aliases."""
    resolved: dict[str, str] = {}
    lowered: dict[str, str] = {}
    for c in available:  # "user_id" beats "USER_ID" when a file has both
        if c.lower() not in lowered or c == c.lower():
            lowered[c.lower()] = c
    for canonical, source in mapping.items():
        if canonical not in aliases:
            raise ImportRejected("bad_mapping", f"unknown target column {canonical!r} in the mapping",
                                 f"known: {', '.join(aliases)}")
        if source not in available:
            raise ImportRejected("missing_column", f"mapped column {source!r} is not in the file",
                                 f"columns: {', '.join(available[:20])}")
        resolved[canonical] = source
    for canonical, names in aliases.items():
        if canonical in resolved:
            continue
        for name in names:
            if name.lower() in lowered and lowered[name.lower()] not in resolved.values():
                resolved[canonical] = lowered[name.lower()]
                break
    missing = [c for c in required if c not in resolved]
    if missing and len(available) == 1:
        separator = next((sep for sep in (";", "\t", "|") if sep in available[0]), None)
        if separator is not None:
            raise ImportRejected(
                "missing_column",
                f"the header is one column; the file seems separated by {separator!r}, "
                "not by commas",
                f"line 1: {available[0][:100]}",
            )
    if missing:
        raise ImportRejected(
            "missing_column",
            f"required column {', '.join(missing)} not found",
            f"columns: {', '.join(available[:20]) or '(none)'}; accepted names for "
            + "; ".join(f"{m}: {', '.join(aliases[m])}" for m in missing),
        )
    return resolved


# ----- validation ----------------------------------------------------------------------------
def parse_timestamps(
    raw: pd.Series, timezone: str | None
) -> tuple[pd.Series, np.ndarray, np.ndarray, np.ndarray]:
    """-> (UTC timestamps, unparseable mask, naive mask, ambiguous mask)."""
    n = len(raw)
    if pd.api.types.is_bool_dtype(raw):
        return (pd.Series(pd.NaT, index=raw.index, dtype="datetime64[us, UTC]"), np.ones(n, bool),
                np.zeros(n, bool), np.zeros(n, bool))
    if pd.api.types.is_datetime64_any_dtype(raw):
        ts = raw
        missing = ts.isna().to_numpy(dtype=bool)  # a null time is as unusable as a wrong one
        if getattr(ts.dt, "tz", None) is None:
            if timezone:
                localized, _, _, amb = _localize(ts, timezone, np.zeros(n, bool))
                return localized, missing, np.zeros(n, bool), amb
            return (ts.dt.tz_localize("UTC").astype("datetime64[us, UTC]"), missing, ~missing,
                    np.zeros(n, bool))
        return ts.dt.tz_convert("UTC").astype("datetime64[us, UTC]"), missing, \
            np.zeros(n, bool), np.zeros(n, bool)
    if pd.api.types.is_numeric_dtype(raw):
        numbers = pd.to_numeric(raw, errors="coerce").astype("float64")
        return _from_epoch(numbers)
    text = _strip(raw)
    missing = raw.isna().to_numpy() | (text == "").to_numpy()
    micros, done = _aware_iso_fast(_arrow_text(text), missing)
    if not done.any():
        return _parse_text_timestamps(raw, text, missing, timezone)
    unparseable = missing.copy()
    naive = np.zeros(n, bool)
    ambiguous = np.zeros(n, bool)
    slow = ~done
    if slow.any():  # chunks the fast path could not take: the general parser, for them only
        parsed, bad, local, amb = _parse_text_timestamps(raw[slow], text[slow], missing[slow],
                                                         timezone)
        micros[slow] = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[us]").view("int64")
        unparseable[slow] = bad
        naive[slow] = local
        ambiguous[slow] = amb
    result = pd.Series(micros.view("datetime64[us]"), index=raw.index).dt.tz_localize("UTC")
    return result, unparseable, naive, ambiguous


def _aware_iso_fast(arrow: pa.Array | pa.ChunkedArray,
                    missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ISO 8601 text with a UTC offset ("2025-06-22T17:07:58Z", "...+02:00"), parsed by Arrow.

    Works in chunks of rows: a chunk is taken only when every present value has the
    "YYYY-MM-DD[T ]HH:MM" layout and Arrow's strict parser accepts all of them (it refuses
    naive times, offsets out of range and anything else unusual); other chunks are left to
    the general parser. Returns (microseconds since the epoch, NaT for missing values; mask
    of the rows done)."""
    n = len(missing)
    micros = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    done = np.zeros(n, bool)
    null = pa.scalar(None, pa.string())
    for lo in range(0, n, TS_CHUNK):
        size = min(TS_CHUNK, n - lo)
        part = arrow.slice(lo, size)
        gaps = missing[lo:lo + size]
        if gaps.all():
            continue
        if gaps.any():  # empty text is missing, like null
            part = pc.if_else(pa.array(gaps), null, part)
        if not _iso_layout(part):
            continue
        try:
            stamps = pc.cast(part, pa.timestamp("us", tz="UTC"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError, OverflowError):
            continue
        values = pc.cast(stamps, pa.int64()).fill_null(np.iinfo(np.int64).min)
        micros[lo:lo + size] = np.asarray(values.to_numpy(), dtype=np.int64)
        done[lo:lo + size] = True
    return micros, done


def _iso_layout(values: pa.Array | pa.ChunkedArray) -> bool:
    """Every present value is at least "YYYY-MM-DDTHH:MMZ" long, with "T" or " " after the
    date and ":" after the hour (Arrow also takes an hour without minutes; we do not)."""
    for chunk in _chunks(values):
        offsets, data = _string_buffers(chunk)
        starts = offsets[:-1]
        lengths = offsets[1:] - starts
        if chunk.null_count:
            valid = np.asarray(chunk.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            starts, lengths = starts[valid], lengths[valid]
        if len(starts) == 0:
            continue
        if lengths.min() < 17 or not (data[starts + 13] == 58).all():
            return False
        sep = data[starts + 10]
        if not ((sep == 84) | (sep == 32)).all():
            return False
    return True


def _parse_text_timestamps(
    raw: pd.Series, text: pd.Series, missing: np.ndarray, timezone: str | None
) -> tuple[pd.Series, np.ndarray, np.ndarray, np.ndarray]:
    """The general text parser: offsets, "UTC" and "z" spellings, epoch numbers, local times."""
    n = len(raw)
    arrow = _arrow_text(text)
    epoch = _where(pc.match_substring_regex(arrow, _EPOCH))
    aware = _where(pc.match_substring_regex(arrow, _TZ_SUFFIX))
    result = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[us, UTC]")
    unparseable = missing.copy()
    naive = np.zeros(n, bool)
    ambiguous = np.zeros(n, bool)
    if aware.any():
        offsets = text[aware].to_numpy(dtype=object)
        # "... UTC" and a lower-case "z" mean +00:00 but are not ISO 8601 to the parser.
        spelled = aware & _where(pc.match_substring_regex(arrow, r"(?:UTC|z|\sZ)$"))
        if spelled.any():
            offsets[spelled[aware]] = text[spelled].str.replace(
                _UTC_SUFFIX, "+00:00", regex=True).to_numpy(dtype=object)
        parsed = pd.to_datetime(pd.Series(offsets, index=text.index[aware]), format="ISO8601",
                                utc=True, errors="coerce")
        result[aware] = parsed.astype("datetime64[us, UTC]")
        unparseable[np.flatnonzero(aware)[parsed.isna().to_numpy()]] = True
    if epoch.any():
        numbers = pd.to_numeric(text[epoch], errors="coerce").astype("float64")
        parsed, bad, _, _ = _from_epoch(numbers)
        result[epoch] = parsed
        unparseable[np.flatnonzero(epoch)[bad]] = True
    rest = ~(aware | epoch | missing)
    if rest.any():
        local = pd.to_datetime(text[rest], format="ISO8601", errors="coerce")
        if getattr(local.dt, "tz", None) is not None:  # pragma: no cover - regex catches offsets
            local = local.dt.tz_convert("UTC").dt.tz_localize(None)
        bad = local.isna().to_numpy()
        unparseable[np.flatnonzero(rest)[bad]] = True
        ok_idx = np.flatnonzero(rest)[~bad]
        if timezone:
            converted, _, _, amb = _localize(local[~bad], timezone, np.zeros(len(ok_idx), bool))
            result.iloc[ok_idx] = converted.to_numpy()
            ambiguous[ok_idx[amb]] = True
        else:
            naive[ok_idx] = True
    return result, unparseable, naive, ambiguous


def _localize(
    ts: pd.Series, timezone: str, _unused: np.ndarray
) -> tuple[pd.Series, np.ndarray, np.ndarray, np.ndarray]:
    localized = ts.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    amb = (localized.isna() & ts.notna()).to_numpy()
    n = len(ts)
    return localized.dt.tz_convert("UTC").astype("datetime64[us, UTC]"), np.zeros(n, bool), \
        np.zeros(n, bool), amb


def _from_epoch(numbers: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray, np.ndarray]:
    values = numbers.to_numpy(dtype="float64", na_value=np.nan)
    n = len(values)
    finite = np.isfinite(values)
    # Seconds until 5138 AD are below 1e11; larger magnitudes are milliseconds.
    millis = finite & (np.abs(values) >= 1e11)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow -> inf -> unparseable
        micros = np.where(millis, values * 1_000, values * 1_000_000)
    micros = np.where(finite & (np.abs(micros) < 9e18), micros, np.nan)
    bad = ~np.isfinite(micros)
    out = pd.Series(pd.to_datetime(np.where(bad, 0, micros).astype("int64"), unit="us", utc=True),
                    index=numbers.index).astype("datetime64[us, UTC]")
    out[bad] = pd.NaT
    return out, bad, np.zeros(n, bool), np.zeros(n, bool)


def parse_amounts(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """-> (float values, NaN where empty; mask of present but non-numeric/non-finite values)."""
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        values = raw.astype("float64")
        return values, ~np.isfinite(values.to_numpy(na_value=0.0))
    text = _strip(raw)
    present = raw.notna().to_numpy() & (text != "").fillna(False).to_numpy(dtype=bool)
    if present.all():
        values = pd.to_numeric(text.where(present), errors="coerce").astype("float64")
    else:
        # Only the present values and one missing one (to_numeric infers the same result
        # type as for the whole column) go through the element-wise parser.
        rows = np.flatnonzero(present)
        rows = np.insert(rows, np.searchsorted(rows, int(np.argmin(present))),
                         int(np.argmin(present)))
        some = pd.to_numeric(text.iloc[rows].where(present[rows]), errors="coerce")
        some = some.astype("float64")
        arr = np.full(len(raw), np.nan)
        arr[rows] = some.to_numpy(dtype="float64", na_value=np.nan)
        values = pd.Series(arr, index=raw.index, name=text.name)
    arr = values.to_numpy(na_value=np.nan)
    bad = present & ~np.isfinite(arr)
    return values.where(~pd.Series(bad, index=raw.index)), bad


def anomalous_days(timestamps: pd.Series, threshold: float = 5.0, min_days: int = 14) -> pd.DataFrame:
    """Days whose event count is far from the typical day (robust z-score on log counts)."""
    if timestamps.empty:
        return pd.DataFrame(columns=["day", "events", "expected", "score"])
    days = timestamps.dt.floor("D")
    counts = days.value_counts().sort_index()
    full = pd.date_range(counts.index.min(), counts.index.max(), freq="D")
    counts = counts.reindex(full, fill_value=0)
    if len(counts) < min_days:
        return pd.DataFrame(columns=["day", "events", "expected", "score"])
    logs = np.log1p(counts.to_numpy(dtype=float))
    median = np.median(logs)
    mad = np.median(np.abs(logs - median)) * 1.4826
    mad = max(mad, 0.05)  # very regular volume: do not flag 1% wiggles
    score = (logs - median) / mad
    flagged = np.abs(score) > threshold
    return pd.DataFrame(
        {
            "day": counts.index[flagged].strftime("%Y-%m-%d"),
            "events": counts.to_numpy()[flagged],
            "expected": np.round(np.expm1(median), 1),
            "score": np.round(score[flagged], 1),
        }
    )


def parse_events(path: Path, options: ImportOptions) -> ParsedEvents:
    """Read and validate an events file; rows with problems are counted and left out."""
    if options.timezone:
        try:
            ZoneInfo(options.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ImportRejected("bad_timezone", f"unknown time zone {options.timezone!r}",
                                 "use an IANA name such as Europe/Berlin") from None
    frame, problems, fmt = read_table(path, options)
    rows_read = len(frame) + sum(problems.counts.values())
    available = [c for c in frame.columns if c != "__line"]
    columns = resolve_columns(available, EVENT_ALIASES, options.mapping, REQUIRED_EVENT_COLUMNS)
    unknown = [c for c in available if c not in columns.values()]
    if unknown:
        problems.add_raw(
            "unknown_columns", len(unknown),
            [{"line": 1, "values": {"column": c}} for c in unknown],
            "columns that are not user, event, timestamp, revenue, cost or properties; ignored",
        )
    show = list(columns.values())
    # Canonical names by selection, not renaming: a file may also hold an unused column
    # that is called like a canonical one ("user_id" beside a mapped "customer").
    work = pd.DataFrame({canonical: frame[source] for canonical, source in columns.items()})
    sample_frame = frame  # samples show the file's own column names and raw values

    user = work["user_id"]
    user_text = _strip(user)
    user_arrow = _arrow_text(user_text)
    missing_user = _missing_ids(user, user_arrow)
    problems.add("missing_user_id", missing_user, sample_frame, show)
    event_text = _strip(work["event"])
    missing_event = (work["event"].isna() | (event_text == "")).to_numpy(dtype=bool) & ~missing_user
    problems.add("missing_event", missing_event, sample_frame, show)
    bad = missing_user | missing_event
    oversized = _oversized(user_arrow) | _oversized(event_text)
    if "properties" in work:
        oversized |= _oversized(work["properties"])
    problems.add("field_too_large", oversized & ~bad, sample_frame, show)
    if oversized.any():
        problems.notes["field_too_large"] = (f"a user id, event name or properties value over "
                                             f"{MAX_FIELD_BYTES:,} bytes; left out")
    bad |= oversized

    ts, unparseable, naive, ambiguous = parse_timestamps(work["timestamp"], options.timezone)
    for code, mask in (("bad_timestamp", unparseable), ("naive_timestamp", naive),
                       ("ambiguous_timestamp", ambiguous)):
        problems.add(code, mask & ~bad, sample_frame, show)
        bad |= mask
    if naive.any():
        problems.notes["naive_timestamp"] = ("timestamps without a UTC offset; name the import's "
                                              "time zone to accept them")
    if ambiguous.any():
        problems.notes["ambiguous_timestamp"] = ("local times that happen twice or never in the "
                                                  "import's time zone (a daylight saving change)")
    now = np.datetime64(pd.Timestamp(options.now).tz_convert("UTC").tz_localize(None)
                        + FUTURE_TOLERANCE, "us")
    floor = np.datetime64(MIN_TIMESTAMP.replace(tzinfo=None), "us")
    plain = ts.dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    valid_ts = ~np.isnat(plain)
    future = valid_ts & (plain > now) & ~bad
    problems.add("future_timestamp", future, sample_frame, show)
    too_old = valid_ts & (plain < floor) & ~bad
    problems.add("timestamp_before_2000", too_old, sample_frame, show)
    bad |= future | too_old

    amounts: dict[str, pd.Series] = {}
    nan_masks: dict[str, np.ndarray] = frame.attrs.get("nan_masks", {})
    for name in ("revenue", "cost"):
        if name in work:
            values, wrong = parse_amounts(work[name])
            if columns[name] in nan_masks:  # NaN stored as a value (Parquet), not as missing
                wrong = wrong | nan_masks[columns[name]]
            problems.add(f"bad_{name}", wrong & ~bad, sample_frame, show)
            bad |= wrong
            amounts[name] = values
        else:
            amounts[name] = pd.Series(np.nan, index=work.index, dtype="float64")

    if "properties" in work:
        props = work["properties"]
        props = props.where(props.notna(), None)
        props_text, wrong = _normalize_properties(props)
        problems.add("bad_properties", wrong & ~bad, sample_frame, show)
        bad |= wrong
    else:
        props_text = pd.Series(None, index=work.index, dtype="str")

    keep = ~bad
    everything = bool(keep.all())

    def kept(values: pd.Series) -> pd.Series:
        return values if everything else values[keep]

    clean = pd.DataFrame(
        {
            "user_id": kept(user_text).astype("str"),
            "event": kept(event_text).astype("str"),
            "timestamp": kept(ts),
            "revenue": kept(amounts["revenue"]),
            "cost": kept(amounts["cost"]),
            "properties": kept(props_text).astype("str"),
            "__line": kept(frame["__line"]),
        }
    ).reset_index(drop=True)
    if len(clean) == 0:
        worst = max(problems.counts, key=lambda c: problems.counts[c]) if problems.counts else "none"
        raise ImportRejected(
            "no_valid_rows",
            f"none of the {rows_read:,} rows is valid; most common problem: {worst}",
            _first_sample_where(problems),
        )
    return ParsedEvents(frame=clean, rows_read=rows_read, problems=problems, columns=columns,
                        format=fmt)


def _arrow_text(values: pd.Series) -> pa.Array:
    """Text values as an Arrow string array (missing -> null) for vectorized string kernels."""
    try:
        return pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):  # mixed objects (JSON): as text
        return pa.array(values.astype("str"), type=pa.string(), from_pandas=True)


def _chunks(values: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return list(values.chunks) if isinstance(values, pa.ChunkedArray) else [values]


def _string_buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets into the data, int64, one more than values; data bytes) of a string array."""
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = values.cast(pa.large_string())
    n = len(values)
    buffers = values.buffers()
    if n == 0 or buffers[1] is None:
        return np.zeros(n + 1, np.int64), np.zeros(0, np.uint8)
    width = np.dtype(np.int32 if pa.types.is_string(values.type) else np.int64)
    offsets = np.frombuffer(buffers[1], dtype=width, count=n + 1,
                            offset=values.offset * width.itemsize).astype(np.int64)
    data = (np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None
            else np.zeros(0, np.uint8))
    return offsets, data


# Bytes that can begin or end a value str.strip() changes: ASCII whitespace (Arrow's
# utf8_trim_whitespace also trims the separators 0x1c-0x1f) and any non-ASCII byte.
_EDGE_BYTES = np.zeros(256, dtype=bool)
_EDGE_BYTES[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True
_EDGE_BYTES[128:] = True


def _strip(values: pd.Series) -> pd.Series:
    """``values.astype("str").str.strip()``, without the copy when no value needs trimming."""
    text = values.astype("str")
    try:
        arrow = pa.array(text.array)
    except (pa.ArrowException, TypeError, ValueError):
        return text.str.strip()
    if not (pa.types.is_string(arrow.type) or pa.types.is_large_string(arrow.type)):
        return text.str.strip()
    for chunk in _chunks(arrow):
        offsets, data = _string_buffers(chunk)
        starts, ends = offsets[:-1], offsets[1:]
        filled = ends > starts
        if filled.any() and (_EDGE_BYTES[data[starts[filled]]].any()
                             or _EDGE_BYTES[data[ends[filled] - 1]].any()):
            return text.str.strip()
    return text


def _where(flags: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(flags.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _missing_ids(raw: pd.Series, text: pa.Array) -> np.ndarray:
    """Empty user ids, and the ones an exporter wrote for "no user" ("null", "undefined")."""
    # Lower-casing keeps the number of characters: only values as long as a null spelling
    # can be one.
    lengths = pc.utf8_length(text)
    spelled = pa.array(sorted({len(word) for word in NULL_USER_IDS}), lengths.type)
    candidates = np.flatnonzero(_where(pc.is_in(lengths, value_set=spelled)))
    nullish = np.zeros(len(text), bool)
    if len(candidates):
        nullish[candidates] = _where(pc.is_in(pc.utf8_lower(text.take(candidates)),
                                              value_set=pa.array(NULL_USER_IDS)))
    empty = _where(pc.equal(text, "")) | ~_where(pc.is_valid(text))
    return raw.isna().to_numpy(dtype=bool) | empty | nullish


def _oversized(values: pd.Series | pa.Array) -> np.ndarray:
    """Text values longer than MAX_FIELD_BYTES in UTF-8."""
    if isinstance(values, pd.Series):
        if not (values.dtype == object or pd.api.types.is_string_dtype(values)):
            return np.zeros(len(values), bool)
        values = _arrow_text(values)
    return _where(pc.greater(pc.binary_length(values), MAX_FIELD_BYTES))


def _normalize_properties(props: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Properties as canonical JSON object text (sorted keys); mask of invalid values."""
    out: list[str | None] = []
    wrong = np.zeros(len(props), bool)
    for i, value in enumerate(props.tolist()):
        if value is None or (isinstance(value, float) and math.isnan(value)) or (
                isinstance(value, str) and not value.strip()):
            out.append(None)
            continue
        try:
            parsed = json.loads(value) if isinstance(value, str) else value
            if not isinstance(parsed, dict):
                raise ValueError("not an object")
            out.append(json.dumps(parsed, sort_keys=True, separators=(",", ":"), default=str)
                       if parsed else None)
        except (ValueError, TypeError, RecursionError):
            wrong[i] = True
            out.append(None)
    return pd.Series(out, index=props.index, dtype="str"), wrong


def parse_users(path: Path, options: ImportOptions) -> ParsedUsers:
    """Read and validate a users file: one row per user, attributes as columns."""
    frame, problems, fmt = read_table(path, options)
    rows_read = len(frame) + sum(problems.counts.values())
    available = [c for c in frame.columns if c != "__line"]
    columns = resolve_columns(available, USER_ALIASES, options.mapping, ("user_id",))
    show = available
    user_text = _strip(frame[columns["user_id"]])
    missing = _missing_ids(frame[columns["user_id"]], _arrow_text(user_text))
    problems.add("missing_user_id", missing, frame, show)
    bad = missing.copy()
    oversized = np.zeros(len(frame), bool)
    for col in available:
        oversized |= _oversized(frame[col])
    problems.add("field_too_large", oversized & ~bad, frame, show)
    bad |= oversized
    out = pd.DataFrame({"user_id": user_text.astype("str")})
    if "signup_time" in columns:
        ts, unparseable, naive, ambiguous = parse_timestamps(frame[columns["signup_time"]],
                                                             options.timezone)
        present = frame[columns["signup_time"]].notna().to_numpy()
        for code, mask in (("bad_signup_time", unparseable & present),
                           ("naive_signup_time", naive), ("ambiguous_signup_time", ambiguous)):
            problems.add(code, mask & ~bad, frame, show)
            bad |= mask
        out["signup_time"] = ts
    shadowed = [c for c in available if c not in columns.values() and c in USER_ALIASES]
    if shadowed:  # e.g. a raw "signup_time" beside the column mapped to signup_time
        problems.add_raw("unknown_columns", len(shadowed),
                         [{"line": 1, "values": {"column": c}} for c in shadowed],
                         "columns named like a mapped column; ignored")
    for col in available:
        if col in columns.values() or col in shadowed:
            continue
        series = frame[col]
        if series.dtype == object or pd.api.types.is_string_dtype(series):
            numeric = pd.to_numeric(series, errors="coerce")
            if series.notna().any() and numeric.notna().sum() == series.notna().sum():
                series = numeric
            else:
                series = _strip(series)
        out[col] = series
    out["__line"] = frame["__line"].to_numpy()
    out = out[~bad]
    dupes = out["user_id"].duplicated(keep="last").to_numpy()
    problems.add("duplicate_user", dupes, out.rename(columns={"user_id": columns["user_id"]}),
                 [columns["user_id"]])
    if dupes.any():
        problems.notes["duplicate_user"] = "the same user twice; the last row wins"
    out = out[~dupes].reset_index(drop=True)
    if len(out) == 0:
        raise ImportRejected("no_valid_rows", f"none of the {rows_read:,} user rows is valid",
                             _first_sample_where(problems))
    return ParsedUsers(frame=out, rows_read=rows_read, problems=problems, format=fmt,
                       user_column=columns["user_id"])


# ----- merging into the store ----------------------------------------------------------------
@dataclass
class MergeResult:
    version: int
    rows_added: int
    duplicates_in_file: int
    duplicates_of_stored: int
    users_added: int
    users_updated: int
    total_events: int
    total_users: int
    already_applied: bool = False


DEDUP_KEY = ["user_id", "event", "timestamp", "properties"]


def merge_into_store(
    store: EventStore,
    key: str,
    *,
    import_id: str,
    events: ParsedEvents | None,
    users: ParsedUsers | None,
    report: dict[str, Any],
) -> MergeResult:
    """Append validated rows to the dataset as one new version; exactly once per ``import_id``.

    Duplicates (same user, event, timestamp and properties) inside the file and against what
    is already stored are removed. Each partition is rewritten sorted by (user, time).
    """
    current = store.current(key)
    manifest = dict(current.manifest) if current else {}
    applied = dict(manifest.get("imports", {}))
    if import_id in applied:
        # A redelivered job: the version with this import is already published.
        return MergeResult(**{**applied[import_id]["result"], "already_applied": True})

    new_parts: dict[int, pa.Table] = {}
    user_counts: dict[int, int] = {}
    dup_in_file = dup_stored = added = 0
    if events is not None:
        merged = _merge_events(store, key, events.frame)
        new_parts, user_counts = merged.parts, merged.users
        dup_in_file, dup_stored, added = merged.in_file, merged.stored, merged.added
        if dup_in_file:
            events.problems.counts["duplicate"] = dup_in_file
    users_added = users_updated = 0
    users_table = None
    if users is not None:
        old = store.read_users(key)
        incoming = users.frame.drop(columns="__line")
        known = set(old["user_id"]) if len(old) else set()
        flags = incoming["user_id"].isin(known).to_numpy()
        users_updated = int(flags.sum())
        users_added = int((~flags).sum())
        if len(old):
            merged = pd.concat([old[~old["user_id"].isin(set(incoming["user_id"]))], incoming],
                               ignore_index=True)
            for col in merged.columns:
                if merged[col].dtype == object:  # an attribute whose type differs between files
                    merged[col] = merged[col].astype("str")
        else:
            merged = incoming
        merged = merged.sort_values("user_id", kind="stable").reset_index(drop=True)
        users_table = pa.Table.from_pandas(merged, preserve_index=False)
    total_events = int(manifest.get("total_events", 0)) + added
    total_users = _count_users(store, key, new_parts, users_table, user_counts)
    result = MergeResult(
        version=(current.number + 1) if current else 1,
        rows_added=added,
        duplicates_in_file=dup_in_file,
        duplicates_of_stored=dup_stored,
        users_added=users_added,
        users_updated=users_updated,
        total_events=total_events,
        total_users=total_users,
    )
    if not new_parts and users_table is None:
        # Nothing new (e.g. a file of rows already stored): no new version to publish.
        result.version = current.number if current else 0
        return result
    applied[import_id] = {"result": {k: v for k, v in result.__dict__.items()
                                     if k != "already_applied"}, "report": report}
    store.publish(
        key,
        new_parts,
        users_table,
        {**manifest, "imports": applied, "total_events": total_events, "total_users": total_users},
    )
    return result


# The events as stored, with the event name as plain text while merging.
_MERGE_SCHEMA = pa.schema([f if f.name != "event" else pa.field("event", pa.string())
                           for f in EVENT_SCHEMA])
# Text keys up to this many 8-byte words are compared as integers; longer ones by Arrow.
MAX_KEY_WORDS = 8
# From this many new rows on, partitions are sorted on two threads (numpy and Arrow release
# the GIL); small imports stay on one.
PARALLEL_ROWS = 1_000_000
# From this many values on, factorizing goes bucket by bucket (hash tables that fit in cache).
FACTORIZE_BUCKETS_FROM = 1 << 20


@dataclass
class _MergedEvents:
    parts: dict[int, pa.Table]
    users: dict[int, int]  # distinct users of each new partition table
    in_file: int = 0
    stored: int = 0
    added: int = 0


@dataclass(frozen=True)
class _TextCodes:
    """Text values as integers: ``codes`` (one per value, equal codes for equal text),
    ``reps`` (a value of each code) and ``ranks`` (each code's place among the sorted
    distinct values, so sorting by rank is sorting the text as Arrow does, by bytes)."""

    codes: np.ndarray
    reps: np.ndarray
    ranks: np.ndarray


def _merge_events(store: EventStore, key: str, frame: pd.DataFrame) -> _MergedEvents:
    """De-duplicate the new rows against each other and the stored ones; sort each partition.

    A user lives in one partition, so duplicates (same user, event, timestamp, properties)
    are found partition by partition: sorting by (user, timestamp, event, position) puts
    equal rows next to each other, stored rows before new ones and new ones in file order,
    so the first of each group is the one kept (what the file-wide
    ``drop_duplicates(keep="first")`` followed by the same against the stored rows did)."""
    new = pa.Table.from_pandas(frame[list(EVENT_SCHEMA.names)], preserve_index=False)
    new = new.cast(_MERGE_SCHEMA).combine_chunks()
    n = new.num_rows
    merged = _MergedEvents(parts={}, users={})
    if n == 0:
        return merged
    user_text = new.column("user_id").chunk(0)
    event_text = new.column("event").chunk(0)
    users = _text_codes(user_text)
    events = _text_codes(event_text)
    distinct_users = user_text.take(pa.array(users.reps))
    part_of_user = partition_of(distinct_users.to_numpy(zero_copy_only=False), store.partitions)
    del distinct_users
    small = np.uint8 if store.partitions <= 256 else np.int32  # uint8 sorts by radix
    part_of_user = part_of_user.astype(small)
    # Each user's rank among the users of its partition (fewer bits to sort by than the
    # rank among all users).
    by_text = np.empty(len(users.ranks), np.int64)
    by_text[users.ranks] = np.arange(len(users.ranks))
    grouped = by_text[np.argsort(part_of_user[by_text], kind="stable")]
    per_part = np.bincount(part_of_user, minlength=store.partitions)
    local_rank = np.empty(len(grouped), np.int64)
    local_rank[grouped] = np.arange(len(grouped)) - np.repeat(np.cumsum(per_part) - per_part,
                                                              per_part)
    del by_text, grouped
    part = part_of_user[users.codes]
    order = np.argsort(part, kind="stable")  # rows of each partition together, in file order
    bounds = np.searchsorted(part[order], np.arange(store.partitions + 1))
    del part, part_of_user
    user_rank = local_rank[users.codes]
    event_rank = events.ranks[events.codes]
    stamps = _micros(new.column("timestamp"))
    by_rank = np.empty(len(events.ranks), np.int64)
    by_rank[events.ranks] = np.arange(len(events.ranks))
    events_by_rank = event_text.take(pa.array(events.reps[by_rank]))  # event names, sorted
    plan = _sort_keys(user_rank, stamps, event_rank, int(np.diff(bounds).max()))

    def one(p: int) -> tuple[int, pa.Table | None, int, int, int, int]:
        rows = order[bounds[p]:bounds[p + 1]]
        existing = store.read_partition_table(key, p)
        n_existing = existing.num_rows
        if n_existing == 0:
            part_plan = plan.subset(rows)
            keep, ordered, in_file, stored = _sorted_unique(part_plan, 0,
                                                            new.column("properties"), rows)
            if ordered is not None:  # user, time and event from the sort key itself
                u, t, e = plan.decode(ordered)
                if e is None:
                    e = part_plan.tie[keep]
            else:  # via the partition's rows: the reads stay in cache
                u, t, e = user_rank[rows][keep], stamps[rows][keep], event_rank[rows][keep]
            del part_plan, ordered
            table = _sorted_table(new, rows, keep, u, t, e, users.codes, user_text, users.reps,
                                  events_by_rank)
        else:
            source = pa.concat_tables([existing.cast(_MERGE_SCHEMA),
                                       new.take(pa.array(rows))]).combine_chunks()
            del existing
            su = _text_codes(source.column("user_id").chunk(0))
            se = _text_codes(source.column("event").chunk(0))
            local = _sort_keys(su.ranks[su.codes], _micros(source.column("timestamp")),
                               se.ranks[se.codes], source.num_rows)
            keep, _, in_file, stored = _sorted_unique(local, n_existing,
                                                      source.column("properties"), None)
            del local
            u = su.ranks[su.codes[keep]]
            table = None
            if len(keep) != n_existing:
                table = source.take(pa.array(keep))
                table = table.set_column(1, "event", pc.dictionary_encode(table.column("event")))
        distinct = int(np.count_nonzero(u[1:] != u[:-1])) + 1 if len(keep) else 0
        return p, table, in_file, stored, len(keep) - n_existing, distinct

    todo = [p for p in range(store.partitions) if bounds[p + 1] > bounds[p]]
    if n >= PARALLEL_ROWS and len(todo) > 1:
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(one, todo))
    else:
        results = [one(p) for p in todo]
    for p, table, in_file, stored, added, distinct in results:
        merged.in_file += in_file
        merged.stored += stored
        merged.added += added
        if table is not None and added:
            merged.parts[p] = table
            merged.users[p] = distinct
    return merged


def _sorted_table(new: pa.Table, rows: np.ndarray, keep: np.ndarray, user_rank: np.ndarray,
                  stamps: np.ndarray, event_rank: np.ndarray, user_codes: np.ndarray,
                  user_text: pa.Array, user_reps: np.ndarray, events_by_rank: pa.Array,
                  ) -> pa.Table:
    """``new.take(rows[keep])`` as stored, from the sorted keys (``user_rank``, ``stamps``
    and ``event_rank`` of ``rows[keep]``) with few random reads.

    Users: each distinct user's text once, repeated (rows of a user are adjacent). Events:
    dictionary-encoded in order of first appearance, as ``pc.dictionary_encode`` does."""
    m = len(keep)
    starts = np.ones(m, bool)
    starts[1:] = user_rank[1:] != user_rank[:-1]
    names = user_text.take(pa.array(user_reps[user_codes[rows[keep[starts]]]]))
    users = names.take(pa.array(np.cumsum(starts) - 1))
    seen = pd.unique(event_rank)
    renumber = np.zeros(len(events_by_rank), np.int32)
    renumber[seen] = np.arange(len(seen), dtype=np.int32)
    events = pa.DictionaryArray.from_arrays(pa.array(renumber[event_rank]),
                                            events_by_rank.take(pa.array(seen)))
    here, picked = pa.array(rows), pa.array(keep)
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        "user_id": users,
        "event": events,
        "timestamp": pa.array(stamps, pa.int64()).view(pa.timestamp("us", tz="UTC")),
    }
    for name in ("revenue", "cost", "properties"):
        column = new.column(name)
        columns[name] = (pa.nulls(m, column.type) if column.null_count == len(column)
                         else column.take(here).take(picked))
    return pa.table(columns, schema=EVENT_SCHEMA)


@dataclass(frozen=True)
class _SortPlan:
    """Integer sort keys equivalent to (user, timestamp, event).

    ``keys``: unsigned, most significant first. One key packs
    ``user << (t_bits + e_bits) | (timestamp - origin) // step << e_bits | event`` (without
    the event when ``tie`` is given). ``tie``: when not None, the event's rank, left out of
    the key to keep it short and ordered within runs of equal keys. ``index_bits``: when not
    0, ``keys[0] << index_bits | position`` fits 64 bits and is sorted as plain values
    (much faster than an argsort)."""

    keys: list[np.ndarray]
    tie: np.ndarray | None
    index_bits: int
    origin: int = 0
    step: int = 1
    t_bits: int = 0
    e_bits: int = 0

    def subset(self, rows: np.ndarray) -> _SortPlan:
        return replace(self, keys=[k[rows] for k in self.keys],
                       tie=None if self.tie is None else self.tie[rows])

    def decode(self, key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(user rank, timestamp, event rank or None when in ``tie``) of one packed key."""
        user = key >> np.uint64(self.t_bits + self.e_bits)
        span = (key >> np.uint64(self.e_bits)) & np.uint64((1 << self.t_bits) - 1)
        stamps = span.astype(np.int64)
        if self.step != 1:
            stamps *= self.step
        stamps += self.origin
        event = None if self.tie is not None else key & np.uint64((1 << self.e_bits) - 1)
        return user, stamps, event


def _sort_keys(u: np.ndarray, t: np.ndarray, e: np.ndarray, most: int) -> _SortPlan:
    """The sort plan for ranks ``u`` and ``e`` (non-negative) and timestamps ``t``, for
    sorting at most ``most`` rows at a time. Timestamps count from the earliest, in whole
    seconds or milliseconds when they all are."""
    if len(u) == 0:
        return _SortPlan([np.zeros(0, np.uint64)], None, 0)
    origin = int(t.min())
    span = t.astype(np.uint64)
    span -= np.uint64(origin % (1 << 64))  # exact: every difference is below 2**64
    for step in (1_000_000, 1_000, 1):
        if step == 1 or not (span % np.uint64(step)).any():
            break
    if step > 1:
        span //= np.uint64(step)
    u_bits = int(u.max()).bit_length()
    t_bits = int(span.max()).bit_length()
    e_bits = int(e.max()).bit_length()
    i_bits = max(1, int(most - 1).bit_length())
    if u_bits + t_bits + i_bits <= 64 < u_bits + t_bits + e_bits + i_bits:
        packed = u.astype(np.uint64) << np.uint64(t_bits)
        packed |= span
        return _SortPlan([packed], e, i_bits, origin, step, t_bits)
    if u_bits + t_bits + e_bits <= 64:
        packed = u.astype(np.uint64) << np.uint64(t_bits + e_bits)
        packed |= span << np.uint64(e_bits)
        packed |= e.astype(np.uint64)
        fits = u_bits + t_bits + e_bits + i_bits <= 64
        return _SortPlan([packed], None, i_bits if fits else 0, origin, step, t_bits, e_bits)
    if t_bits + e_bits <= 64:
        return _SortPlan([u.astype(np.uint64), (span << np.uint64(e_bits))
                          | e.astype(np.uint64)], None, 0)
    return _SortPlan([u.astype(np.uint64), span, e.astype(np.uint64)], None, 0)


def _sorted_unique(
    plan: _SortPlan, n_existing: int, properties: pa.ChunkedArray, rows: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray | None, int, int]:
    """Positions of the rows to keep, sorted by (user, timestamp, event) and then position;
    their (single) sort key, or None when the plan has several; the number of new rows that
    repeat a new row / a stored row.

    The rows are the stored ones (the first ``n_existing``) followed by the new ones;
    ``properties[rows]`` (or ``properties`` when ``rows`` is None) are their properties."""
    keys = plan.keys
    m = len(keys[0])
    ordered = None
    if m == 0:
        return np.zeros(0, np.int64), keys[0][:0] if len(keys) == 1 else None, 0, 0
    if plan.index_bits and len(keys) == 1:
        shift = np.uint64(plan.index_bits)
        ordered = keys[0] << shift
        ordered |= np.arange(m, dtype=np.uint64)
        ordered.sort()  # keys and positions are unique together: no need for a stable sort
        order = (ordered & np.uint64((1 << plan.index_bits) - 1)).astype(np.int64)
        ordered >>= shift
        same = ordered[1:] == ordered[:-1]
    elif len(keys) == 1:
        order = np.argsort(keys[0])  # not stable: ties are put in order below
        ordered = keys[0][order]
        same = ordered[1:] == ordered[:-1]
    else:
        order = np.lexsort(keys[::-1])
        same = np.ones(m - 1, bool)
        for values in keys:
            in_order = values[order]
            same &= in_order[1:] == in_order[:-1]
    if not same.any():
        return order, ordered, 0, 0
    # Runs of equal keys: put in order of (tie, position); the rows whose (tie, properties)
    # equal an earlier row's of the same run are duplicates. (A run's key is the same on
    # each of its places, so ``ordered`` stays right.)
    starts = np.ones(m, bool)
    starts[1:] = ~same
    run = np.cumsum(starts) - 1
    member = np.zeros(m, bool)
    member[1:] |= same
    member[:-1] |= same
    slots = np.flatnonzero(member)  # places in the sorted order, each run's together
    position = order[slots]
    runs = run[slots]
    ties = plan.tie[position] if plan.tie is not None else np.zeros(len(slots), np.int64)
    order[slots] = position[np.lexsort((position, ties, runs))]
    picked = pa.array(position if rows is None else rows[position])
    codes = pc.dictionary_encode(properties.take(picked), null_encoding="encode")
    props = np.asarray(pc.cast(codes.combine_chunks().indices, pa.int64()).to_numpy(),
                       dtype=np.int64)
    regroup = np.lexsort((position, props, ties, runs))
    runs, ties, props, position = runs[regroup], ties[regroup], props[regroup], position[regroup]
    repeat = np.zeros(len(slots), bool)
    repeat[1:] = (runs[1:] == runs[:-1]) & (ties[1:] == ties[:-1]) & (props[1:] == props[:-1])
    previous = np.empty_like(position)
    previous[1:] = position[:-1]
    new_repeat = repeat & (position >= n_existing)
    stored = int(np.count_nonzero(new_repeat & (previous < n_existing)))
    in_file = int(np.count_nonzero(new_repeat)) - stored
    drop = np.zeros(m, bool)
    drop[position[repeat]] = True
    kept = ~drop[order]
    return order[kept], None if ordered is None else ordered[kept], in_file, stored


def _micros(stamps: pa.ChunkedArray) -> np.ndarray:
    values = pc.cast(stamps, pa.timestamp("us", tz="UTC")).cast(pa.int64())
    return np.asarray(values.fill_null(0).to_numpy(), dtype=np.int64)


def _text_codes(values: pa.Array) -> _TextCodes:
    """Integer codes and sort ranks of text values (one chunk, no nulls expected).

    Few distinct values (event names): Arrow's dictionary encoding. Many (user ids) of up to
    MAX_KEY_WORDS * 8 bytes: the bytes, zero-padded, as big-endian 64-bit words, so that
    comparing words compares text by bytes as Arrow's sort does (the byte length breaks ties
    when text holds NUL bytes); equal keys are found with a hash table. Anything else, and
    the unlikely case of two different texts hashing alike, goes to Arrow's dictionary."""
    n = len(values)
    if n == 0 or values.null_count:
        return _text_codes_arrow(values)
    sample = values.take(pa.array(np.linspace(0, n - 1, min(n, 4096)).astype(np.int64)))
    if pc.count_distinct(sample).as_py() * 8 <= len(sample):
        return _text_codes_arrow(values)
    offsets, data = _string_buffers(values)
    lengths = np.diff(offsets)
    width = int(lengths.max())
    words = max(1, (width + 7) // 8)
    if words > MAX_KEY_WORDS:
        return _text_codes_arrow(values)
    keys = _big_endian_words(offsets, data, lengths, width, words)
    with_nul = bool((data[offsets[0]:offsets[-1]] == 0).any())
    exact = words == 1 and not with_nul
    if exact:
        hashed = keys[:, 0]
    else:
        hashed = lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        for j in range(words):
            hashed = (hashed ^ keys[:, j]) * np.uint64(0xBF58476D1CE4E5B9)
            hashed ^= hashed >> np.uint64(31)
    codes, reps = _factorize_u64(hashed)
    count = len(reps)
    if not exact and not (np.array_equal(keys[reps][codes], keys)  # hashed: equal text?
                          and np.array_equal(lengths[reps][codes], lengths)):
        return _text_codes_arrow(values)
    sort_keys = [keys[reps, j] for j in range(words - 1, -1, -1)]
    if with_nul:
        sort_keys.insert(0, lengths[reps])
    by_text = np.lexsort(sort_keys) if len(sort_keys) > 1 else np.argsort(sort_keys[0])
    ranks = np.empty(count, np.int64)
    ranks[by_text] = np.arange(count)
    return _TextCodes(codes, reps, ranks)


def _big_endian_words(offsets: np.ndarray, data: np.ndarray, lengths: np.ndarray,
                      width: int, words: int) -> np.ndarray:
    """(values, words) uint64: each value's bytes zero-padded to 8 * words, read big-endian."""
    n = len(lengths)
    start, stop = int(offsets[0]), int(offsets[-1])
    if (lengths == width).all():
        block = data[start:stop].reshape(n, width)
        if width != 8 * words:
            padded = np.zeros((n, 8 * words), np.uint8)
            padded[:, :width] = block
            block = padded
        return block.view(">u8").astype(np.uint64)
    keys = np.zeros((n, words), np.uint64)
    last = max(len(data) - 1, 0)
    for j in range(width):  # byte j of every value (0 past its end)
        byte = data[np.minimum(offsets[:-1] + j, last)].astype(np.uint64)
        byte[lengths <= j] = 0
        keys[:, j // 8] |= byte << np.uint64(8 * (7 - j % 8))
    return keys


def _factorize_u64(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes (equal keys, equal codes) and the first position of each code. Large inputs
    are first split by a hash into buckets whose hash tables stay in cache."""
    n = len(keys)
    if n < FACTORIZE_BUCKETS_FROM:
        codes, _ = pd.factorize(keys)
        codes = codes.astype(np.int64, copy=False)
        return codes, _first_of_each(codes)
    bucket = ((keys * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(56)).astype(np.uint8)
    order = np.argsort(bucket, kind="stable")  # radix sort; each bucket in file order
    bounds = np.zeros(257, np.int64)
    np.cumsum(np.bincount(bucket, minlength=256), out=bounds[1:])
    del bucket
    grouped = keys[order]
    codes = np.empty(n, np.int64)
    reps: list[np.ndarray] = []
    count = 0
    for b in range(256):
        lo, hi = bounds[b], bounds[b + 1]
        if hi > lo:
            local, _ = pd.factorize(grouped[lo:hi])
            firsts = _first_of_each(local)
            codes[order[lo:hi]] = local + count
            reps.append(order[lo + firsts])
            count += len(firsts)
    return codes, np.concatenate(reps)


def _first_of_each(codes: np.ndarray) -> np.ndarray:
    """Where each code first occurs, for codes numbered in order of first appearance
    (0, 1, 2, ...): where the running maximum grows."""
    if len(codes) == 0:
        return np.zeros(0, np.int64)
    top = np.maximum.accumulate(codes)
    grows = np.empty(len(codes), bool)
    grows[0] = True
    grows[1:] = top[1:] > top[:-1]
    return np.flatnonzero(grows)


def _text_codes_arrow(values: pa.Array) -> _TextCodes:
    encoded = pc.dictionary_encode(values, null_encoding="encode")
    codes = np.asarray(pc.cast(encoded.indices, pa.int64()).to_numpy(), dtype=np.int64)
    count = len(encoded.dictionary)
    reps = np.empty(count, np.int64)
    reps[codes] = np.arange(len(codes))
    by_text = np.asarray(pc.sort_indices(encoded.dictionary).to_numpy(), dtype=np.int64)
    ranks = np.empty(count, np.int64)
    ranks[by_text] = np.arange(count)
    return _TextCodes(codes, reps, ranks)


def _count_users(store: EventStore, key: str, new_parts: dict[int, pa.Table],
                 users_table: pa.Table | None, known: dict[int, int] | None = None) -> int:
    """Distinct users with events (a user lives in one partition, so per-partition counts add)."""
    total = 0
    for part in range(store.partitions):
        if known is not None and part in known and part in new_parts:
            total += known[part]
            continue
        table = new_parts.get(part)
        if table is None:
            table = store.read_partition_table(key, part, columns=["user_id"])
        total += pa.compute.count_distinct(table["user_id"]).as_py() if table.num_rows else 0
    return total


def _jsonable(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str) and len(value) > 200:
        return value[:200] + "…"
    return value if isinstance(value, int | float | str | bool) else str(value)


def summarize_text(data: bytes) -> str:
    """First line of a byte string, for error messages."""
    return io.BytesIO(data).readline()[:120].decode("utf-8", "replace")
