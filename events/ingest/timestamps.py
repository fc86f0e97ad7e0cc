"""Timestamps from whatever a file holds: datetimes, epoch numbers, ISO 8601 text with or
without an offset, local times in a named time zone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_text import _arrow_text, _chunks, _string_buffers, _strip, _where

# Rows per piece of the fast timestamp parser; a piece it cannot take goes the general way.
TS_CHUNK = 1 << 20

_TZ_SUFFIX = r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|z|UTC|[+-]\d{2}(?::?\d{2})?)$"
_EPOCH = r"^\s*-?\d{9,13}(?:\.\d+)?\s*$"
_UTC_SUFFIX = r"\s*(?:UTC|[Zz])$"


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
            valid = _where(chunk.is_valid())
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
