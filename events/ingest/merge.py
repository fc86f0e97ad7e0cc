"""Merging validated rows into the event store: one new version per import, exactly once.

New rows are de-duplicated against each other and the stored ones, partition by partition,
and each partition is rewritten sorted by (user, time, event, properties, revenue, cost).
A repeat is the same whole event: rows that differ in revenue or cost only are distinct events,
kept, and counted in the quality report as ``same_event_other_amount``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..store import EVENT_SCHEMA, STORED_SCHEMA, EventStore, partition_of
from .dedup import _sort_keys, _sorted_unique
from .errors import ImportRejected
from .report import SAMPLE_LIMIT, _jsonable
from .textcodes import _inverse, _text_codes
from .validate import ParsedEvents, ParsedUsers

# The events as stored, with the event name as plain text while merging.
_MERGE_SCHEMA = pa.schema([f if f.name != "event" else pa.field("event", pa.string())
                           for f in EVENT_SCHEMA])

# From this many new rows on, partitions are sorted on two threads (numpy and Arrow release
# the GIL); small imports stay on one.
PARALLEL_ROWS = 1_000_000


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
    same_event_other_amount: int = 0


DEDUP_KEY = ["user_id", "event", "timestamp", "properties", "revenue", "cost"]

OTHER_AMOUNT = "same_event_other_amount"
OTHER_AMOUNT_NOTE = ("the same user, event, time and properties as another row but a different "
                     "revenue or cost: a distinct event, kept")


def merge_into_store(
    store: EventStore,
    key: str,
    *,
    import_id: str,
    events: ParsedEvents | None,
    users: ParsedUsers | None,
    report: dict[str, Any],
    max_event_names: int | None = None,
) -> MergeResult:
    """Append validated rows to the dataset as one new version; exactly once per ``import_id``.

    Repeats of a whole event (same user, event, timestamp, properties, revenue and cost)
    inside the file and against what is already stored are removed; rows that differ from
    another only in revenue or cost are kept and counted under ``same_event_other_amount`` in
    ``events.problems``. Each partition is rewritten sorted by (user, time, event, properties,
    revenue, cost).

    ``max_event_names``: an import that would bring the dataset's distinct event names over
    this is rejected (``ImportRejected("too_many_event_names")``, nothing written); rows of
    names the dataset already holds are always accepted.
    """
    current = store.current(key)
    manifest = dict(current.manifest) if current else {}
    applied = dict(manifest.get("imports", {}))
    if import_id in applied:
        # A redelivered job: the version with this import is already published.
        return MergeResult(**{**applied[import_id]["result"], "already_applied": True})

    if events is not None and max_event_names is not None:
        _check_event_names(store, key, events, max_event_names)
    new_parts: dict[int, pa.Table] = {}
    user_counts: dict[int, int] = {}
    dup_in_file = dup_stored = added = other_amount = 0
    if events is not None:
        merged = _merge_events(store, key, events.frame)
        new_parts, user_counts = merged.parts, merged.users
        dup_in_file, dup_stored, added = merged.in_file, merged.stored, merged.added
        if dup_in_file:
            events.problems.counts["duplicate"] = dup_in_file
        other_amount = len(merged.other_amount)
        events.problems.add_raw(OTHER_AMOUNT, other_amount,
                                _samples(events, merged.other_amount), OTHER_AMOUNT_NOTE)
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
        same_event_other_amount=other_amount,
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


@dataclass
class _MergedEvents:
    parts: dict[int, pa.Table]
    users: dict[int, int]  # distinct users of each new partition table
    in_file: int = 0
    stored: int = 0
    added: int = 0
    # Rows of the frame that differ from another kept row only in revenue or cost.
    other_amount: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def stored_event_names(store: EventStore, key: str) -> pa.Array:
    """The distinct event names of the dataset's current version (from the event column
    alone: its dictionary, the names in use)."""
    found = [pa.array([], pa.string())]
    for part in range(store.partitions):
        column = store.read_partition_table(key, part, columns=["event"]).column("event")
        for chunk in column.chunks:
            if pa.types.is_dictionary(chunk.type):
                found.append(chunk.dictionary.take(pc.unique(chunk.indices)).cast(pa.string()))
            else:
                found.append(pc.unique(chunk).cast(pa.string()))
    return pc.unique(pa.concat_arrays(found))


def _check_event_names(store: EventStore, key: str, events: ParsedEvents, limit: int) -> None:
    """Reject an import that would give the dataset more than ``limit`` distinct event names."""
    incoming = pc.unique(pa.array(events.frame["event"].to_numpy(dtype=object), pa.string()))
    if len(incoming) == 0:
        return
    stored = stored_event_names(store, key)
    added = incoming.filter(pc.invert(pc.is_in(incoming, value_set=stored)))
    total = len(stored) + len(added)
    if len(added) == 0 or total <= limit:
        return
    examples = ", ".join(repr(n) for n in sorted(added.to_pylist())[:5])
    raise ImportRejected(
        "too_many_event_names",
        f"this import would give the dataset {total:,} distinct event names, over the limit of "
        f"{limit:,} (MAX_EVENT_NAMES): it adds {len(added):,} new names ({examples}"
        f"{', ...' if len(added) > 5 else ''}) to the {len(stored):,} stored. A column of ids, "
        "URLs or free text mapped as the event makes a name per row: map the event name column "
        "instead, or raise MAX_EVENT_NAMES",
        f"column {events.columns.get('event', 'event')}")


def _samples(events: ParsedEvents, rows: np.ndarray) -> list[dict[str, Any]]:
    """Up to SAMPLE_LIMIT sample rows (the first lines of the file), with the file's column
    names and the parsed values."""
    frame = events.frame
    lines = frame["__line"].to_numpy()[rows]
    out = []
    for i in rows[np.argsort(lines, kind="stable")][:SAMPLE_LIMIT]:
        record = frame.iloc[int(i)]
        out.append({"line": int(record["__line"]),
                    "values": {events.columns.get(c, c): _jsonable(record[c])
                               for c in ("user_id", "event", "timestamp", "revenue", "cost",
                                         "properties") if c in events.columns}})
    return out


def _merge_events(store: EventStore, key: str, frame: pd.DataFrame) -> _MergedEvents:
    """De-duplicate the new rows against each other and the stored ones; sort each partition.

    A user lives in one partition, so repeats (the same whole event: user, event, timestamp,
    properties, revenue, cost) are found partition by partition: sorting by (user, timestamp,
    event, properties, revenue, cost, position) puts equal rows next to each other, stored
    rows before new ones, so the first of each group is the one kept and the stored order
    does not depend on the file's row order."""
    new = pa.Table.from_pandas(frame[list(EVENT_SCHEMA.names)], preserve_index=False)
    new = new.cast(_MERGE_SCHEMA).combine_chunks()
    for name in ("revenue", "cost"):  # -0.0 is stored as 0.0: one amount, one spelling
        index = new.schema.get_field_index(name)
        if new.column(name).null_count < new.num_rows:  # an absent column stays all null
            new = new.set_column(index, name, pc.add(new.column(name), 0.0))
    n = new.num_rows
    merged = _MergedEvents(parts={}, users={})
    if n == 0:
        return merged
    user_text = new.column("user_id").chunk(0)
    event_text = new.column("event").chunk(0)
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The users' codes (the longest step here) on a second thread while the events'
        # codes and the timestamps are done (numpy, pandas' hash tables and Arrow release
        # the GIL).
        pending = pool.submit(_text_codes, user_text) if n >= PARALLEL_ROWS else None
        events = _text_codes(event_text)
        stamps = _micros(new.column("timestamp"))
        users = pending.result() if pending is not None else _text_codes(user_text)
    # Each distinct user's text once (by code): the sorted tables take their ids from it, so
    # the per-row text columns can be dropped before the partitions are sorted (memory).
    distinct_users = user_text.take(pa.array(users.reps))
    part_of_user = partition_of(distinct_users.to_numpy(zero_copy_only=False), store.partitions)
    small = np.uint8 if store.partitions <= 256 else np.int32  # uint8 sorts by radix
    part_of_user = part_of_user.astype(small)
    # Each user's rank among the users of its partition (fewer bits to sort by than the
    # rank among all users).
    by_text = _inverse(users.ranks)
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
    by_rank = _inverse(events.ranks)
    events_by_rank = event_text.take(pa.array(events.reps[by_rank]))  # event names, sorted
    plan = _sort_keys(user_rank, stamps, event_rank, int(np.diff(bounds).max()))
    # From here on a row's user is ``distinct_users[user_codes[row]]`` and its event
    # ``events_by_rank[event_rank[row]]``: the per-row text and the arrays only the rare
    # fallbacks below need are dropped (less memory while the partitions are sorted).
    user_codes = users.codes
    new = new.drop_columns(["user_id", "event"])
    del user_text, event_text, users, events, user_rank, stamps

    amounts = ("properties", "revenue", "cost")

    def one(p: int) -> tuple[int, pa.Table | None, int, int, int, int, np.ndarray]:
        rows = order[bounds[p]:bounds[p + 1]]
        existing = store.read_partition_table(key, p)
        n_existing = existing.num_rows
        if n_existing == 0:
            part_plan = plan.subset(rows)
            found = _sorted_unique(part_plan, 0, {c: new.column(c) for c in amounts}, rows)
            keep, ordered, in_file, stored = found.keep, found.ordered, found.in_file, found.stored
            other = rows[found.other_amount]
            if ordered is not None:  # user, time and event from the sort key itself
                u, t, e = plan.decode(ordered)
                if e is None:
                    e = part_plan.tie[keep]
            else:  # via the partition's rows: the reads stay in cache
                u = local_rank[user_codes[rows]][keep]
                t = _micros(new.column("timestamp").take(pa.array(rows)))[keep]
                e = event_rank[rows][keep]
            del part_plan, ordered
            table = _sorted_table(new, rows, keep, u, t, e, user_codes, distinct_users,
                                  events_by_rank)
        else:
            source = pa.concat_tables([existing.cast(_MERGE_SCHEMA),
                                       _rows_table(new, rows, user_codes, distinct_users,
                                                   event_rank, events_by_rank)]).combine_chunks()
            del existing
            su = _text_codes(source.column("user_id").chunk(0))
            se = _text_codes(source.column("event").chunk(0))
            local = _sort_keys(su.ranks[su.codes], _micros(source.column("timestamp")),
                               se.ranks[se.codes], source.num_rows)
            found = _sorted_unique(local, n_existing, {c: source.column(c) for c in amounts},
                                   None)
            keep, in_file, stored = found.keep, found.in_file, found.stored
            other = rows[found.other_amount - n_existing]
            del local
            u = su.ranks[su.codes[keep]]
            table = None
            if len(keep) != n_existing:
                table = source.take(pa.array(keep))
                table = table.set_column(1, "event", pc.dictionary_encode(table.column("event")))
        distinct = int(np.count_nonzero(u[1:] != u[:-1])) + 1 if len(keep) else 0
        return p, table, in_file, stored, len(keep) - n_existing, distinct, other

    todo = [p for p in range(store.partitions) if bounds[p + 1] > bounds[p]]
    if n >= PARALLEL_ROWS and len(todo) > 1:
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(one, todo))
    else:
        results = [one(p) for p in todo]
    for p, table, in_file, stored, added, distinct, other in results:
        merged.in_file += in_file
        merged.stored += stored
        merged.added += added
        merged.other_amount = np.concatenate([merged.other_amount, other])
        if table is not None and added:
            merged.parts[p] = table
            merged.users[p] = distinct
    return merged


def _rows_table(new: pa.Table, rows: np.ndarray, user_codes: np.ndarray,
               distinct_users: pa.Array, event_rank: np.ndarray, events_by_rank: pa.Array,
               ) -> pa.Table:
    """The new rows ``rows`` as a table of ``_MERGE_SCHEMA``, their user ids and event names
    rebuilt from the codes (``new`` no longer holds the text columns)."""
    taken = new.take(pa.array(rows))
    columns = {
        "user_id": distinct_users.take(pa.array(user_codes[rows])),
        "event": events_by_rank.take(pa.array(event_rank[rows])),
        **{name: taken.column(name) for name in taken.column_names},
    }
    return pa.table({name: columns[name] for name in _MERGE_SCHEMA.names}, schema=_MERGE_SCHEMA)


def _sorted_table(new: pa.Table, rows: np.ndarray, keep: np.ndarray, user_rank: np.ndarray,
                  stamps: np.ndarray, event_rank: np.ndarray, user_codes: np.ndarray,
                  distinct_users: pa.Array, events_by_rank: pa.Array,
                  ) -> pa.Table:
    """``new.take(rows[keep])`` as stored, from the sorted keys (``user_rank``, ``stamps``
    and ``event_rank`` of ``rows[keep]``) with few random reads.

    Users: each distinct user's text once, repeated (rows of a user are adjacent). Events:
    dictionary-encoded in order of first appearance, as ``pc.dictionary_encode`` does."""
    m = len(keep)
    starts = np.ones(m, bool)
    starts[1:] = user_rank[1:] != user_rank[:-1]
    names = distinct_users.take(pa.array(user_codes[rows[keep[starts]]]))
    local = np.cumsum(starts, dtype=np.int32) - 1  # each row's user code in the partition
    users = names.take(pa.array(local))
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
    columns["user"] = pa.array(local, pa.int32())  # the store keeps it (layout 2)
    return pa.table(columns, schema=STORED_SCHEMA)


def _micros(stamps: pa.ChunkedArray) -> np.ndarray:
    values = pc.cast(stamps, pa.timestamp("us", tz="UTC")).cast(pa.int64())
    return np.asarray(values.fill_null(0).to_numpy(), dtype=np.int64)


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
