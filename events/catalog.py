"""The event catalog: what a dataset contains, computed from the store's partitions. Pure."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# Property keys come from a sample: at most this many rows per event name and partition,
# and at most PROPERTY_BUDGET distinct properties texts parsed per catalog (the first rows of
# every name first, so that each name gets some before any gets many).
PROPERTY_SAMPLE = 100
PROPERTY_BUDGET = 200_000
TOP_VALUES = 5
TREND_WEEKS = 12
_US_PER_DAY = 86_400_000_000
_US_PER_WEEK = 7 * _US_PER_DAY
_MONDAY = -3 * _US_PER_DAY  # 1969-12-29, a Monday: weeks start on Mondays


@contextmanager
def _no_collection() -> Iterator[None]:
    """No cyclic garbage collection while a catalog is built: it makes hundreds of thousands
    of small dicts and lists, none in a cycle, and the collector's passes over them took as
    long as the rest of the work."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def event_catalog(partitions: Iterable[pd.DataFrame | pa.Table]) -> list[dict[str, Any]]:
    """Per event name: count, distinct users, first/last seen, weekly counts of the last
    TREND_WEEKS weeks of data (weeks start on Mondays), property keys (sampled), rows carrying
    revenue (``revenue_events``, when there is a revenue column); most frequent
    first, equal counts by name.

    Group-bys over each partition (Arrow tables or the store's frames, with ``user_id``,
    ``event``, ``timestamp`` and optionally ``properties``), then over the partitions' results:
    no loop over event names, so 100,000 names cost about what 100 do. Each partition holds
    whole users, so distinct-user counts of partitions add up."""
    with _no_collection():
        return _event_catalog(partitions)


def _event_catalog(partitions: Iterable[pd.DataFrame | pa.Table]) -> list[dict[str, Any]]:
    names = pa.array([], pa.string())  # every name seen, in order of first appearance
    stats: list[pa.Table] = []
    weekly: list[pa.Table] = []
    sampled: list[tuple[np.ndarray, pa.Array]] = []
    for part in partitions:
        table = part if isinstance(part, pa.Table) else pa.Table.from_pandas(
            part, preserve_index=False)
        if table.num_rows == 0:
            continue
        local, dictionary = _dictionary_codes(table.column("event"))
        dictionary = dictionary.cast(pa.string())
        known = np.asarray(pc.index_in(dictionary, value_set=names).fill_null(-1).to_numpy(),
                           dtype=np.int64)
        new = np.flatnonzero(known < 0)
        known[new] = len(names) + np.arange(len(new))
        names = pa.concat_arrays([names, dictionary.take(pa.array(new))])
        code = known[local]
        stamps = _micros(table.column("timestamp"))
        codes = pa.array(code)
        stats.append(pa.table({"code": codes, "t": stamps, "user": table.column("user_id"),
                               "paid": pa.array(_paid(table))})
                     .group_by("code").aggregate([([], "count_all"), ("t", "min"), ("t", "max"),
                                                  ("user", "count_distinct"), ("paid", "sum")]))
        week = np.floor_divide(stamps - _MONDAY, _US_PER_WEEK)
        weekly.append(pa.table({"code": codes, "week": pa.array(week)})
                      .group_by(["code", "week"]).aggregate([([], "count_all")]))
        if "properties" in table.column_names:
            sampled.append(_property_sample(code, table.column("properties")))
    if not stats:
        return []
    totals = pa.concat_tables(stats).group_by("code").aggregate([
        ("count_all", "sum"), ("t_min", "min"), ("t_max", "max"), ("user_count_distinct", "sum"),
        ("paid_sum", "sum")])
    code = totals.column("code").to_numpy()
    n = len(names)
    count = np.zeros(n, np.int64)
    users = np.zeros(n, np.int64)
    first = np.zeros(n, np.int64)
    last = np.zeros(n, np.int64)
    paid = np.zeros(n, np.int64)
    paid[code] = totals.column("paid_sum_sum").to_numpy()
    count[code] = totals.column("count_all_sum").to_numpy()
    users[code] = totals.column("user_count_distinct_sum").to_numpy()
    first[code] = totals.column("t_min_min").to_numpy()
    last[code] = totals.column("t_max_max").to_numpy()
    weeks = pa.concat_tables(weekly)
    week_of = weeks.column("week").to_numpy()
    newest = int(week_of.max())
    recent = week_of > newest - TREND_WEEKS
    trend = np.zeros((n, TREND_WEEKS), np.int64)
    np.add.at(trend, (weeks.column("code").to_numpy()[recent],
                      week_of[recent] - (newest - TREND_WEEKS + 1)),
              weeks.column("count_all").to_numpy()[recent])
    span = [str(d) for d in (np.arange(newest - TREND_WEEKS + 1, newest + 1) * _US_PER_WEEK
                             + _MONDAY).astype("datetime64[us]").astype("datetime64[D]")]
    keys = _property_keys(sampled)
    text = names.to_numpy(zero_copy_only=False)
    order = np.lexsort((pc.array_sort_indices(names).to_numpy().argsort(), -count))
    return [
        {"event": name, "count": c, "users": u, "first_seen": f, "last_seen": la,
         "weekly": {"weeks": span, "counts": w}, "property_keys": k, "revenue_events": r}
        for name, c, u, f, la, w, k, r in zip(
            text[order].tolist(), count[order].tolist(), users[order].tolist(),
            _iso(first[order]), _iso(last[order]), trend[order].tolist(),
            [keys.get(int(i), []) for i in order], paid[order].tolist(), strict=True)
    ]


def _paid(table: pa.Table) -> np.ndarray:
    """1 where the row carries revenue (nonzero, not missing), else 0; zeros without a
    revenue column."""
    if "revenue" not in table.column_names:
        return np.zeros(table.num_rows, np.int64)
    values = np.asarray(table.column("revenue").to_numpy(), dtype=np.float64)
    return (np.nan_to_num(values) != 0).astype(np.int64)


def _dictionary_codes(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    """(code per row, distinct values) of a text or dictionary-encoded column."""
    chunked = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
    if pa.types.is_dictionary(chunked.type):
        chunked = chunked.unify_dictionaries()
    else:  # one memo table for every chunk: each chunk's dictionary is a prefix of the last's
        chunked = pc.dictionary_encode(chunked)
    if chunked.num_chunks == 0:
        return np.zeros(0, np.int64), pa.array([], pa.string())
    codes = np.concatenate([np.asarray(c.indices.to_numpy(zero_copy_only=False), np.int64)
                            for c in chunked.chunks])
    return codes, chunked.chunk(chunked.num_chunks - 1).dictionary


def _micros(stamps: pa.ChunkedArray) -> np.ndarray:
    values = pc.cast(stamps, pa.timestamp("us", tz="UTC")).cast(pa.int64())
    return np.asarray(values.to_numpy(), dtype=np.int64)


def _iso(micros: np.ndarray) -> list[str]:
    """ISO 8601 in UTC as ``pd.Timestamp.isoformat`` writes it (fraction only when nonzero)."""
    text = np.datetime_as_string(micros.astype("datetime64[us]"), unit="us")
    text = np.where(micros % 1_000_000 == 0, text.astype("<U19"), text)
    return np.char.add(text, "+00:00").tolist()


def _property_sample(code: np.ndarray, properties: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """(code, properties text) of the first PROPERTY_SAMPLE rows with properties per name."""
    properties = properties.cast(pa.string())
    rows = np.flatnonzero(np.asarray(pc.is_valid(properties).to_numpy(zero_copy_only=False)))
    rank = _rank_within(code[rows])
    rows = rows[rank < PROPERTY_SAMPLE]
    return code[rows], properties.take(pa.array(rows)).combine_chunks()


def _rank_within(groups: np.ndarray) -> np.ndarray:
    """Per value, how many equal values come before it."""
    order = np.argsort(groups, kind="stable")
    ordered = groups[order]
    start = np.r_[True, ordered[1:] != ordered[:-1]] if len(ordered) else np.zeros(0, bool)
    run_start = np.maximum.accumulate(np.where(start, np.arange(len(ordered)), 0))
    rank = np.empty(len(groups), np.int64)
    rank[order] = np.arange(len(ordered)) - run_start
    return rank


def _property_keys(sampled: list[tuple[np.ndarray, pa.Array]]) -> dict[int, list[str]]:
    """Top-level keys of the sampled properties, per name code: distinct (name, text) pairs,
    the first ones of every name first, at most PROPERTY_BUDGET distinct texts parsed."""
    if not sampled:
        return {}
    code = np.concatenate([c for c, _ in sampled])
    texts = pa.chunked_array([t for _, t in sampled], type=pa.string())
    if len(code) == 0:
        return {}
    text_code, distinct = _dictionary_codes(texts)
    pair = code * len(distinct) + text_code
    _, firsts = np.unique(pair, return_index=True)
    firsts.sort()  # in the order they were read
    code, text_code = code[firsts], text_code[firsts]
    by_rank = np.lexsort((np.arange(len(code)), _rank_within(code)))
    code, text_code = code[by_rank], text_code[by_rank]
    first_use = np.zeros(len(text_code), bool)
    first_use[np.unique(text_code, return_index=True)[1]] = True
    within = np.cumsum(first_use) <= PROPERTY_BUDGET
    code, text_code = code[within], text_code[within]
    wanted = np.unique(text_code)
    parsed: dict[int, list[str]] = {}
    for i, value in zip(wanted.tolist(), distinct.take(pa.array(wanted)).to_pylist(), strict=True):
        try:
            keys = json.loads(value)
        except ValueError:
            continue
        if isinstance(keys, dict):
            parsed[i] = list(keys)
    out: dict[int, set[str]] = {}
    for c, t in zip(code.tolist(), text_code.tolist(), strict=True):
        if t in parsed:
            out.setdefault(c, set()).update(parsed[t])
    return {c: sorted(k) for c, k in out.items()}


def attribute_catalog(users: pd.DataFrame) -> list[dict[str, Any]]:
    """Per user attribute: type, cardinality, share missing and top values."""
    out = []
    for column in users.columns:
        if column == "user_id":
            continue
        series = users[column]
        if pd.api.types.is_datetime64_any_dtype(series):
            kind = "datetime"
        elif pd.api.types.is_bool_dtype(series):
            kind = "boolean"
        elif pd.api.types.is_numeric_dtype(series):
            kind = "number"
        else:
            kind = "category"
        present = series.dropna()
        entry: dict[str, Any] = {
            "attribute": str(column),
            "type": kind,
            "cardinality": int(present.nunique()),
            "missing_share": round(float(1 - len(present) / max(len(series), 1)), 4),
        }
        if kind in {"category", "boolean"}:
            top = present.astype("str").value_counts().head(TOP_VALUES)
            entry["top_values"] = [{"value": str(k), "count": int(v)} for k, v in top.items()]
        elif kind == "number" and len(present):
            entry["min"] = float(np.min(present))
            entry["max"] = float(np.max(present))
            entry["mean"] = round(float(np.mean(present)), 4)
        elif kind == "datetime" and len(present):
            entry["min"] = present.min().isoformat()
            entry["max"] = present.max().isoformat()
        out.append(entry)
    return out
