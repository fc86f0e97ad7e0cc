"""Row checks: each row problem is counted in the quality report and the row left out.

``parse_events`` and ``parse_users`` read a file, find its columns, parse timestamps and
amounts and return the clean rows with the report; a file with no valid row is rejected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_text import _arrow_text, _strip, _where
from .columns import EVENT_ALIASES, REQUIRED_EVENT_COLUMNS, USER_ALIASES, resolve_columns
from .errors import ImportRejected
from .formats import read_table
from .options import ImportOptions
from .report import Problems, _first_sample_where, _most_common
from .timestamps import parse_timestamps

MIN_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
# Clock skew we tolerate before calling a timestamp "in the future".
FUTURE_TOLERANCE = pd.Timedelta(minutes=10)
# A single value (user id, event name, properties) larger than this is a row problem.
MAX_FIELD_BYTES = 1_000_000
# User ids that are an exporter's spelling of "no user" rather than a user.
NULL_USER_IDS = ("null", "none", "nan", "undefined")
# From this many rows on, timestamps are parsed on a second thread while the user, event and
# amount checks run (Arrow's parser and numpy release the GIL); small files stay on one.
PARALLEL_CHECK_ROWS = 1_000_000


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


def _read_columns(
    path: Path, options: ImportOptions, aliases: Mapping[str, tuple[str, ...]],
    required: tuple[str, ...], name: str = "",
) -> tuple[pd.DataFrame, Problems, str, int, list[str], dict[str, str]]:
    """Read a file and find its columns: (frame, row problems, format, rows read, the file's
    columns, canonical name -> source column)."""
    frame, problems, fmt = read_table(path, options, name)
    rows_read = len(frame) + sum(problems.counts.values())
    available = [c for c in frame.columns if c != "__line"]
    columns = resolve_columns(available, aliases, options.mapping, required)
    return frame, problems, fmt, rows_read, available, columns


def _ignored_columns(problems: Problems, names: list[str], note: str) -> None:
    """Columns of the file that are not imported, reported (as of line 1) with ``note``."""
    problems.add_raw("unknown_columns", len(names),
                     [{"line": 1, "values": {"column": c}} for c in names], note)


def _count_first(problems: Problems, code: str, mask: np.ndarray, bad: np.ndarray,
                 frame: pd.DataFrame, show: list[str]) -> None:
    """Count the rows of ``mask`` under ``code`` unless an earlier problem counted them (a
    row is counted once, under its first problem), and mark them all in ``bad``."""
    problems.add(code, mask & ~bad, frame, show)
    bad |= mask


def _holds_text(values: pd.Series) -> bool:
    """Object or string dtype: values that may be text."""
    return values.dtype == object or pd.api.types.is_string_dtype(values)


def parse_events(path: Path, options: ImportOptions, name: str = "") -> ParsedEvents:
    """Read and validate an events file; rows with problems are counted and left out.
    ``name``: the file's name as its user gave it (messages name it), when ``path`` is a
    stored copy."""
    if options.timezone:
        try:
            ZoneInfo(options.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ImportRejected("bad_timezone", f"unknown time zone {options.timezone!r}",
                                 "use an IANA name such as Europe/Berlin") from None
    frame, problems, fmt, rows_read, available, columns = _read_columns(
        path, options, EVENT_ALIASES, REQUIRED_EVENT_COLUMNS, name)
    _ignored_columns(
        problems, [c for c in available if c not in columns.values()],
        "columns that are not user, event, timestamp, revenue, cost or properties; ignored",
    )
    show = list(columns.values())
    # Canonical names by selection, not renaming: a file may also hold an unused column
    # that is called like a canonical one ("user_id" beside a mapped "customer").
    work = pd.DataFrame({canonical: frame[source] for canonical, source in columns.items()})
    sample_frame = frame  # samples show the file's own column names and raw values
    with ThreadPoolExecutor(max_workers=1) as pool:
        stamps: Future | None = None
        if len(work) >= PARALLEL_CHECK_ROWS:
            stamps = pool.submit(parse_timestamps, work["timestamp"], options.timezone)
        return _check_events(frame, work, problems, columns, show, sample_frame, stamps,
                             options, rows_read, fmt)


def _check_events(
    frame: pd.DataFrame, work: pd.DataFrame, problems: Problems, columns: dict[str, str],
    show: list[str], sample_frame: pd.DataFrame, stamps: Future | None,
    options: ImportOptions, rows_read: int, fmt: str,
) -> ParsedEvents:
    """The row checks of ``parse_events``, in order (a row is counted under its first
    problem); ``stamps``: the timestamps being parsed on another thread, if any."""

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
    _count_first(problems, "field_too_large", oversized, bad, sample_frame, show)
    if oversized.any():
        problems.notes["field_too_large"] = (f"a user id, event name or properties value over "
                                             f"{MAX_FIELD_BYTES:,} bytes; left out")

    ts, unparseable, naive, ambiguous = (
        stamps.result() if stamps is not None
        else parse_timestamps(work["timestamp"], options.timezone))
    for code, mask in (("bad_timestamp", unparseable), ("naive_timestamp", naive),
                       ("ambiguous_timestamp", ambiguous)):
        _count_first(problems, code, mask, bad, sample_frame, show)
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
            _count_first(problems, f"bad_{name}", wrong, bad, sample_frame, show)
            amounts[name] = values
        else:
            amounts[name] = pd.Series(np.nan, index=work.index, dtype="float64")

    if "properties" in work:
        props = work["properties"]
        props = props.where(props.notna(), None)
        props_text, wrong = _normalize_properties(props)
        _count_first(problems, "bad_properties", wrong, bad, sample_frame, show)
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
        worst = _most_common(problems) or "none"
        raise ImportRejected(
            "no_valid_rows",
            f"none of the {rows_read:,} rows is valid; most common problem: {worst}",
            _first_sample_where(problems),
        )
    return ParsedEvents(frame=clean, rows_read=rows_read, problems=problems, columns=columns,
                        format=fmt)


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
        if not _holds_text(values):
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
            out.append(json.dumps(parsed, sort_keys=True, separators=(",", ":"),
                                  default=_json_default) if parsed else None)
        except (ValueError, TypeError, RecursionError):
            wrong[i] = True
            out.append(None)
    return pd.Series(out, index=props.index, dtype="str"), wrong


def _json_default(value: object) -> object:
    """Values JSON has no type for, inside properties: arrays as lists (never numpy's text of
    them, ``[1 2]``), times in ISO 8601, bytes as UTF-8 text, anything else as its text."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def parse_users(path: Path, options: ImportOptions, name: str = "") -> ParsedUsers:
    """Read and validate a users file: one row per user, attributes as columns (``name`` as
    in ``parse_events``)."""
    frame, problems, fmt, rows_read, available, columns = _read_columns(
        path, options, USER_ALIASES, ("user_id",), name)
    show = available
    user_text = _strip(frame[columns["user_id"]])
    missing = _missing_ids(frame[columns["user_id"]], _arrow_text(user_text))
    problems.add("missing_user_id", missing, frame, show)
    bad = missing.copy()
    oversized = np.zeros(len(frame), bool)
    for col in available:
        oversized |= _oversized(frame[col])
    _count_first(problems, "field_too_large", oversized, bad, frame, show)
    out = pd.DataFrame({"user_id": user_text.astype("str")})
    if "signup_time" in columns:
        ts, unparseable, naive, ambiguous = parse_timestamps(frame[columns["signup_time"]],
                                                             options.timezone)
        present = frame[columns["signup_time"]].notna().to_numpy()
        for code, mask in (("bad_signup_time", unparseable & present),
                           ("naive_signup_time", naive), ("ambiguous_signup_time", ambiguous)):
            _count_first(problems, code, mask, bad, frame, show)
        out["signup_time"] = ts
    shadowed = [c for c in available if c not in columns.values() and c in USER_ALIASES]
    # e.g. a raw "signup_time" beside the column mapped to signup_time
    _ignored_columns(problems, shadowed, "columns named like a mapped column; ignored")
    for col in available:
        if col in columns.values() or col in shadowed:
            continue
        series = frame[col]
        if _holds_text(series):
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
