"""Reading raw files: size and format checks, encodings, CSV, Parquet and JSON Lines.

Every reader returns the file as a data frame (its own column names, text kept as text, the
line or row number of each record in ``__line``) and the row problems it met; a file that
cannot be read at all raises ``ImportRejected``.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from .errors import ImportRejected
from .options import ImportOptions
from .report import SAMPLE_LIMIT, Problems, _first_sample_where, _most_common

CSV_BLOCK_SIZE = 8 << 20
SCAN_CHUNK = 16 << 20

# Keys analytics tools put beside the track call that carry no behaviour of their own.
IGNORED_JSON_KEYS = {"type", "messageId", "anonymousId", "context", "receivedAt", "sentAt",
                     "originalTimestamp", "integrations", "insert_id", "$insert_id", "uuid"}

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


def shown_name(path: Path, name: str = "") -> str:
    """The file as its user knows it: the name it was uploaded under (``name``), else the
    stored file's own name. Messages use it, never the server's path of the stored copy."""
    return name or path.name


def in_users_words(text: str, path: Path, name: str = "") -> str:
    """A library's message about the stored copy (pyarrow names the path it opened) with the
    server's path and the stored name replaced by the user's name for the file."""
    shown = shown_name(path, name)
    for spelling in sorted({str(path), path.as_posix(), str(path.absolute())}, key=len,
                           reverse=True):
        text = text.replace(spelling, shown)
    return text.replace(path.name, shown) if path.name != shown else text


def detect_format(path: Path, declared: str = "auto", name: str = "") -> str:
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if declared != "auto":
        if declared not in {"csv", "parquet", "jsonl"}:
            raise ImportRejected("unknown_format", f"unsupported format {declared!r}",
                                 "expected csv, parquet or jsonl")
        if declared != "parquet" and head[:4] == b"PAR1":
            raise ImportRejected("wrong_format", f"this is a Parquet file, not {declared}",
                                 f"{shown_name(path, name)}: set the format to parquet or auto")
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


def check_file(path: Path, options: ImportOptions, name: str = "") -> int:
    """Size, emptiness and known non-tabular formats; returns the size in bytes."""
    name = shown_name(path, name)
    size = path.stat().st_size
    if size == 0:
        raise ImportRejected("empty_file", "the file is empty", name)
    if options.max_bytes is not None and size > options.max_bytes:
        raise ImportRejected(
            "too_large",
            f"the file has {size:,} bytes, over the limit of {options.max_bytes:,}",
            name,
        )
    with open(path, "rb") as handle:
        head = handle.read(64)
    for magic, what in BINARY_SIGNATURES:
        if head.startswith(magic):
            raise ImportRejected(
                "wrong_format", f"the file is {what}, not CSV, Parquet or JSON Lines",
                f"{name}, byte 0",
            )
    return size


@dataclass(frozen=True)
class TextShape:
    """What the encoding check learned on its way through a text file."""

    newlines: int
    ends_with_newline: bool
    # Whether any double quote occurs: without one no value can hold a line break, so the
    # CSV reader may split blocks at any newline (its faster, parallel chunker).
    has_quotes: bool = True


def _check_text(path: Path) -> TextShape:
    """Reject text that is not UTF-8 or contains NUL bytes, naming the line."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    offset = 0
    last = 0
    quotes = False
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
            line += chunk.count(b"\n")  # memchr-based: no temporary array per chunk
            quotes = quotes or chunk.find(b'"') >= 0
            offset += size
            last = chunk[size - 1]
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ImportRejected("bad_encoding", "the file ends inside a UTF-8 character",
                                 f"line {line}, byte {offset}") from None
    return TextShape(newlines=line - 1, ends_with_newline=last == 10, has_quotes=quotes)


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


def _read_csv(path: Path, name: str) -> tuple[pd.DataFrame, Problems]:
    shape = _check_text(path)
    problems = Problems()
    with open(path, encoding="utf-8-sig", newline="") as handle:
        first = handle.readline()
    if not first.strip():
        raise ImportRejected("missing_header", "the first line (the header) is empty", "line 1")
    if not first.endswith(("\n", "\r")):
        raise ImportRejected("empty_file", "the file has a header but no rows",
                             f"{name}, line 1")
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
                                              newlines_in_values=shape.has_quotes),
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
                                 f"a row is larger than {CSV_BLOCK_SIZE >> 20} MB", name) from None
        raise ImportRejected("malformed_csv",
                             f"the CSV cannot be parsed: {in_users_words(text, path, name)[:300]}",
                             name) from None
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


def _read_parquet(path: Path, name: str) -> tuple[pd.DataFrame, Problems]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ImportRejected("malformed_parquet", "the Parquet file cannot be read: "
                             f"{in_users_words(str(exc), path, name)[:300]}", name) from None
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
                                     name) from None
        elif pa.types.is_floating(kind):
            # NaN is a value, not a missing one: keep the difference for revenue and cost.
            nan = pc.is_nan(table.column(i)).fill_null(False)
            if pc.any(nan).as_py():
                nan_masks[column.name] = nan.to_numpy(zero_copy_only=False)
    try:
        # Integers stay integers when some are missing (user id 7, not 7.0).
        nested = [name for name, kind in zip(table.column_names, table.schema.types, strict=True)
                  if pa.types.is_nested(kind)]
        frame = table.drop_columns(nested).to_pandas(types_mapper=_nullable_integers)
        for name in nested:
            frame[name] = pd.Series(_python_values(table.column(name)), dtype=object)
        frame = frame[table.column_names]
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise ImportRejected("malformed_parquet",
                             "the Parquet file's columns cannot be read: "
                             f"{in_users_words(str(exc), path, name)[:300]}", name) from None
    frame.attrs["nan_masks"] = nan_masks
    frame["__line"] = np.arange(1, len(frame) + 1)
    return frame, Problems()


def _python_values(column: pa.ChunkedArray) -> list[Any]:
    """A nested column (struct, list, map) as Python values: lists stay lists, integers stay
    integers at any depth (pandas would give numpy arrays, and floats where a row is null),
    and maps become dicts, so properties keep them as JSON. A row whose map has a key twice
    keeps that map's (key, value) pairs, never a silently dropped value (top-level properties
    that are not an object are then a row problem)."""
    try:
        return column.to_pylist(maps_as_pydicts="strict")
    except (KeyError, ValueError):  # a duplicate map key: find its rows
        values: list[Any] = []
        for i in range(len(column)):
            one = column.slice(i, 1)
            try:
                values.extend(one.to_pylist(maps_as_pydicts="strict"))
            except (KeyError, ValueError):
                values.extend(one.to_pylist())
        return values


def _nullable_integers(kind: pa.DataType) -> Any:
    if pa.types.is_integer(kind):
        return pd.UInt64Dtype() if kind == pa.uint64() else pd.Int64Dtype()
    return None


def _read_jsonl(path: Path, name: str) -> tuple[pd.DataFrame, Problems]:
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


def read_table(path: Path, options: ImportOptions, name: str = ""
               ) -> tuple[pd.DataFrame, Problems, str]:
    """Read a stored file; ``name`` is the user's name for it (messages use it, not the stored
    copy's)."""
    name = shown_name(path, name)
    check_file(path, options, name)
    fmt = detect_format(path, options.format, name)
    reader = {"csv": _read_csv, "parquet": _read_parquet, "jsonl": _read_jsonl}[fmt]
    frame, problems = reader(path, name)
    if len(frame) == 0:
        worst = _most_common(problems)
        if worst is not None:
            raise ImportRejected("no_valid_rows",
                                 f"no row of the file could be read; the problem: {worst}",
                                 _first_sample_where(problems))
        raise ImportRejected("empty_file", "the file has a header but no rows", name)
    return frame, problems, fmt


def summarize_text(data: bytes) -> str:
    """First line of a byte string, for error messages."""
    return io.BytesIO(data).readline()[:120].decode("utf-8", "replace")
