"""The in-memory shape every analysis works on: events as dense integer columns. Pure.

Users get dense integer codes 0..n_users-1 in user-id order; events are sorted by
(user code, time), so each user's events are one contiguous slice ``starts[u]:starts[u+1]``
and per-user reductions are ``np.add.reduceat`` / ``np.bincount`` with no hashing or sorting
at query time. Built once per refresh and shared by all segments and analyses.

Two builders make the same ``UserEvents``: ``build_user_events_coded`` from a layout-2 store
version (integer user codes and the user dictionary: no string work, no sort) and
``build_user_events`` from frames with string user ids (a layout-1 version, one fan-out
partition, tests).

Query-independent derived arrays (events by name, time since signup, positions of revenue,
properties as dictionary codes) are made on first use and kept with the dataset, read-only: the
arrays of a ``UserEvents`` must not be changed once an analysis has run on it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .threads import analytic_threads, map_in_threads

US_PER_DAY = 86_400_000_000
_LOCKS_LOCK = threading.Lock()  # hands out the per-value locks of UserEvents._derived


@dataclass(frozen=True)
class UserEvents:
    """Events of one dataset as arrays; see the module docstring for the invariants."""

    user_ids: np.ndarray  # (n_users,) object/str, sorted; index = user code
    user: np.ndarray  # (n_events,) int32 user code, non-decreasing
    time: np.ndarray  # (n_events,) int64 microseconds since epoch (UTC), sorted within user
    event: np.ndarray  # (n_events,) int32 code into event_names
    event_names: tuple[str, ...]
    revenue: np.ndarray  # (n_events,) float64, 0 where none
    cost: np.ndarray  # (n_events,) float64, 0 where none
    signup: np.ndarray  # (n_users,) int64 µs: signup_time attribute, else first event
    attributes: pd.DataFrame  # (n_users rows, index = user code), user attributes
    # (n_events,) JSON text per event, loaded on request: an Arrow dictionary array (as
    # ``build_user_events`` makes it: codes into the distinct texts) or an object array.
    properties: pa.DictionaryArray | np.ndarray | None = None
    has_cost: bool = False
    starts: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    # Reads ``properties`` on first use when the frame was built without them (a store
    # version: see ``build_user_events_coded``); None when there is nothing to read later.
    properties_loader: Callable[[], Any] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.starts is None:
            bounds = np.searchsorted(self.user, np.arange(self.n_users + 1), side="left")
            object.__setattr__(self, "starts", bounds.astype(np.int64))

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_events(self) -> int:
        return len(self.user)

    def event_code(self, name: str) -> int:
        """Code of an event name, -1 when the dataset never saw it."""
        try:
            return self.event_names.index(name)
        except ValueError:
            return -1

    def _derived(self, key: str, make: Any) -> Any:
        """A value computed from the (never mutated) arrays once per dataset and kept."""
        cache = self.__dict__.setdefault("_derived_cache", {})
        if key in cache:
            return cache[key]
        # Analyses may share the frame across threads: each value is made once, under a lock
        # of its own (a thread needing another value is not held up; one value may be made
        # from another).
        locks = self.__dict__.setdefault("_derived_locks", {})
        with _LOCKS_LOCK:
            lock = locks.setdefault(key, threading.Lock())
        with lock:
            if key not in cache:
                cache[key] = make()
        return cache[key]

    def time_max(self) -> int | None:
        """Latest event time (None without events)."""
        return self._derived("time_max", lambda: int(self.time.max()) if self.n_events else None)

    def events_by_name(self) -> tuple[np.ndarray, np.ndarray]:
        """(positions, bounds): ``positions[bounds[c]:bounds[c + 1]]`` are the events with name
        code ``c``, ascending. A stable sort by code, made once per dataset."""
        def make() -> tuple[np.ndarray, np.ndarray]:
            names = len(self.event_names)
            # Shifted by one so that a missing name (code -1) sorts first, out of every slice.
            keys = self.event.astype(np.int32, copy=False) + 1
            # Arrow's stable sort counts small integer ranges (several times numpy's radix).
            order = pc.array_sort_indices(pa.array(keys))
            positions = order.to_numpy().view(np.int64)
            bounds = np.zeros(names + 2, dtype=np.int64)
            np.cumsum(np.bincount(keys, minlength=names + 1), out=bounds[1:])
            return _frozen(positions), _frozen(bounds[1:])
        return self._derived("events_by_name", make)

    def events_named(self, codes: np.ndarray) -> np.ndarray:
        """Ascending positions of the events whose name code is one of ``codes``."""
        positions, bounds = self.events_by_name()
        parts = [positions[bounds[c]:bounds[c + 1]] for c in np.unique(codes) if c >= 0]
        if not parts:
            return np.zeros(0, dtype=np.int64)
        if len(parts) == 1:
            return parts[0]
        return np.sort(np.concatenate(parts))

    def since_signup(self) -> np.ndarray:
        """Per event: µs from the user's signup to the event."""
        # Events are grouped by user: each signup repeated over its user's events (no gather).
        return self._derived("since_signup", lambda: _frozen(
            self.time - np.repeat(self.signup, np.diff(self.starts))))

    def revenue_events(self) -> np.ndarray:
        """Ascending positions of the events with nonzero revenue."""
        return self._derived("revenue_events", lambda: _frozen(np.flatnonzero(self.revenue != 0)))

    def cost_events(self) -> np.ndarray:
        """Ascending positions of the events with nonzero cost."""
        return self._derived("cost_events", lambda: _frozen(np.flatnonzero(self.cost != 0)))

    def property_is_text(self) -> np.ndarray:
        """Per entry of ``property_table()[1]``: whether it is a text (else: no properties)."""
        def make() -> np.ndarray:
            texts = self.property_table()[1]
            return _frozen(np.fromiter((isinstance(t, str) for t in texts), dtype=bool,
                                       count=len(texts)))
        return self._derived("property_is_text", make)

    def property_table(self) -> tuple[np.ndarray, np.ndarray]:
        """(codes, texts): per event a code into ``texts``, the distinct properties values;
        entries of ``texts`` that are not text (null) stand for "no properties". Made once per
        dataset; only when properties are loaded."""
        def make() -> tuple[np.ndarray, np.ndarray]:
            props = self.properties
            if isinstance(props, pa.ChunkedArray):
                props = props.combine_chunks()
            if isinstance(props, pa.Array) and not isinstance(props, pa.DictionaryArray):
                props = pc.dictionary_encode(props, null_encoding="encode")
            if isinstance(props, pa.DictionaryArray):
                codes = props.indices.fill_null(-1).to_numpy() if props.null_count \
                    else props.indices.to_numpy()
                texts = props.dictionary.to_numpy(zero_copy_only=False)
            else:
                codes, texts = pd.factorize(np.asarray(props, dtype=object),
                                            use_na_sentinel=True)
                texts = np.asarray(texts, dtype=object)
            if (codes < 0).any():  # missing as one more entry, so every code indexes texts
                codes = np.where(codes < 0, len(texts), codes)
                texts = np.append(texts, np.array([None], dtype=object))
            return _frozen(codes), _frozen(np.asarray(texts, dtype=object))
        return self._derived("property_table", make)

    def user_ranges(self, pieces: int, min_events: int = 0) -> list[tuple[int, int]]:
        """``pieces`` contiguous ranges of user codes with about as many events each (one
        range when the frame has fewer than ``min_events`` events or ``pieces`` < 2)."""
        if pieces < 2 or self.n_events < max(min_events, 1) or self.n_users < pieces:
            return [(0, self.n_users)]
        cuts = np.searchsorted(self.starts, np.arange(1, pieces) * (self.n_events / pieces))
        bounds = np.unique(np.clip(np.r_[0, cuts, self.n_users], 0, self.n_users))
        return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def over_user_ranges(self, fn: Callable[[UserEvents, np.ndarray | None], Any],
                         users: np.ndarray | None = None, min_events: int = 0) -> list[Any]:
        """``fn(frame, scope)`` on contiguous ranges of users (``user_ranges``, as many as
        ``analytic_threads``), two at a time, in order; ``scope`` is the range's part of the
        boolean mask ``users``. With one range, ``fn(self, users)`` on the whole frame."""
        ranges = self.user_ranges(analytic_threads(), min_events)
        if len(ranges) == 1:
            return [fn(self, users)]
        return map_in_threads(lambda r: fn(self.user_slice(*r), None if users is None
                                           else users[r[0]:r[1]]), ranges)

    def user_slice(self, lo: int, hi: int) -> UserEvents:
        """The users ``lo..hi-1`` (codes renumbered from 0) as a frame of views on this one's
        arrays (only the user codes are copied). Users are independent in every per-user
        analysis, so its per-user results are rows ``lo..hi-1`` of the whole's."""
        a, b = int(self.starts[lo]), int(self.starts[hi])

        def properties() -> Any:
            props = self.properties
            return None if props is None else props[a:b]
        return UserEvents(
            user_ids=self.user_ids[lo:hi], user=self.user[a:b] - np.int32(lo),
            time=self.time[a:b], event=self.event[a:b], event_names=self.event_names,
            revenue=self.revenue[a:b], cost=self.cost[a:b], signup=self.signup[lo:hi],
            attributes=self.attributes.iloc[lo:hi].reset_index(drop=True),
            has_cost=self.has_cost, starts=self.starts[lo:hi + 1] - a,
            properties_loader=properties)

    def first_event_time(self) -> np.ndarray:
        out = np.full(self.n_users, np.iinfo(np.int64).max, dtype=np.int64)
        has = self.starts[1:] > self.starts[:-1]
        out[has] = self.time[self.starts[:-1][has]]
        return out

    def last_event_time(self) -> np.ndarray:
        out = np.full(self.n_users, np.iinfo(np.int64).min, dtype=np.int64)
        has = self.starts[1:] > self.starts[:-1]
        out[has] = self.time[self.starts[1:][has] - 1]
        return out


class _LazyProperties:
    """``UserEvents.properties``: the stored value, or (when it is None and the frame has a
    ``properties_loader``) the properties read on first access and kept. Every reader sees
    the same value, loaded once (a lock: analyses may share a frame across threads)."""

    _lock = threading.Lock()

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return None  # the dataclass field's default
        value = obj.__dict__.get("properties")
        if value is None and obj.__dict__.get("properties_loader") is not None:
            with self._lock:
                value = obj.__dict__.get("properties")
                if value is None:
                    value = obj.__dict__["properties_loader"]()
                    obj.__dict__["properties"] = value
                    obj.__dict__["properties_loader"] = None
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__["properties"] = value  # the dataclass __init__ (frozen: nothing else)


UserEvents.properties = _LazyProperties()  # type: ignore[assignment,misc]


def _frozen(values: np.ndarray) -> np.ndarray:
    """Read-only: shared, cached arrays (slices of them are handed out) must not be changed."""
    values.flags.writeable = False
    return values


def event_order(user: np.ndarray, time: np.ndarray) -> np.ndarray | None:
    """The permutation that sorts events by (user, time), stably; None when already sorted.

    The same as ``np.lexsort((time, user))``. Store partitions each come sorted by user then
    time, so a stable sort by user alone (a merge of sorted runs) or nothing at all is enough
    when times are then in order within every user; lexsort only otherwise.
    """
    if len(user) < 2:
        return None
    order = None if bool((user[1:] >= user[:-1]).all()) else np.argsort(user, kind="stable")
    u, t = (user, time) if order is None else (user[order], time[order])
    if bool(((u[1:] == u[:-1]) & (t[1:] < t[:-1])).any()):
        return np.lexsort((time, user))
    return order


def encode_properties(column: pd.Series, order: np.ndarray | None) -> pa.DictionaryArray | np.ndarray:
    """Properties texts as an Arrow dictionary array in ``order`` (a null is a dictionary entry,
    so the codes have no nulls): a few bytes per event instead of a Python string each.
    Values that are not all text stay an object array, as they came."""
    try:
        if isinstance(column.dtype, pd.CategoricalDtype):
            column = column.astype(object)
        to_arrow = getattr(column.array, "__arrow_array__", None)
        values = to_arrow() if to_arrow is not None else pa.array(
            column.to_numpy(dtype=object), from_pandas=True)
        if isinstance(values, pa.Array):
            values = pa.chunked_array([values])
        if pa.types.is_null(values.type):
            values = values.cast(pa.string())
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            raise TypeError("properties are not text")
    except (pa.ArrowException, TypeError, ValueError):
        values = column.to_numpy(dtype=object)
        return values if order is None else values[order]
    encoded = pc.dictionary_encode(values, null_encoding="encode")
    if encoded.num_chunks:
        # One memo table encodes every chunk: each chunk's dictionary is a prefix of the last's.
        dictionary = encoded.chunk(encoded.num_chunks - 1).dictionary
        if not all(c.dictionary.equals(dictionary.slice(0, len(c.dictionary)))
                   for c in encoded.chunks):
            encoded = pa.chunked_array([pc.dictionary_encode(values.combine_chunks(),
                                                             null_encoding="encode")])
            dictionary = encoded.chunk(0).dictionary
        codes = np.concatenate([chunk.indices.to_numpy() for chunk in encoded.chunks])
    else:
        codes, dictionary = np.zeros(0, dtype=np.int32), pa.array([], type=values.type)
    if order is not None:
        codes = codes[order]
    return pa.DictionaryArray.from_arrays(pa.array(codes), dictionary)


def build_user_events(
    partitions: Iterable[pd.DataFrame],
    users: pd.DataFrame | None = None,
    with_properties: bool = False,
) -> UserEvents:
    """Concatenate store partitions (each sorted by user then time) into a ``UserEvents``.

    Partitions hold disjoint users, so sorting the concatenation by user id is a merge of
    already-sorted runs; numpy's stable sort is fast on that.
    """
    frames = [f for f in partitions if len(f)]
    # Event names arrive dictionary-encoded: unify the categories across partitions so the
    # concatenation keeps small integer codes instead of ~10M Python strings.
    if frames and all(isinstance(f["event"].dtype, pd.CategoricalDtype) for f in frames):
        names = sorted(set().union(*(f["event"].cat.categories.astype(str) for f in frames)))
        frames = [f.assign(event=f["event"].cat.rename_categories(
            f["event"].cat.categories.astype(str)).cat.set_categories(names))
            if list(f["event"].cat.categories) != names else f for f in frames]
    if frames:
        frame = pd.concat(frames, ignore_index=True)
    else:
        frame = pd.DataFrame({"user_id": pd.Series([], dtype="str"),
                              "event": pd.Series([], dtype="str"),
                              "timestamp": pd.Series([], dtype="datetime64[us, UTC]"),
                              "revenue": pd.Series([], dtype="float64"),
                              "cost": pd.Series([], dtype="float64")})
    del frames  # the concatenation holds the rows now; let the partitions go
    user_codes, user_ids = pd.factorize(frame["user_id"].astype("str"), sort=True)
    frame = frame.drop(columns="user_id")
    if isinstance(frame["event"].dtype, pd.CategoricalDtype):
        cats = frame["event"].cat
        event_codes, event_names = cats.codes.to_numpy(), cats.categories.astype(str)
    else:
        event_codes, event_names = pd.factorize(frame["event"].astype("str"), sort=True)
    time = frame["timestamp"].to_numpy(dtype="datetime64[us]").astype(np.int64) \
        if len(frame) else np.zeros(0, np.int64)
    order = event_order(user_codes, time)

    def arrange(values: np.ndarray) -> np.ndarray:
        return values if order is None else values[order]

    revenue = arrange(frame["revenue"].to_numpy(dtype="float64", na_value=np.nan))
    cost_raw = arrange(frame["cost"].to_numpy(dtype="float64", na_value=np.nan)) \
        if "cost" in frame else np.full(len(time), np.nan)
    has_cost = bool(np.isfinite(cost_raw).any())
    user_codes = arrange(user_codes).astype(np.int32)
    ids = np.asarray(user_ids, dtype=object)

    attributes, signup = _aligned_users(ids, users)
    props = None
    if with_properties and "properties" in frame:
        props = encode_properties(frame["properties"], order)
    data = UserEvents(
        user_ids=ids,
        user=user_codes,
        time=arrange(time),
        event=arrange(event_codes).astype(np.int32),
        event_names=tuple(str(n) for n in event_names),
        revenue=np.nan_to_num(revenue, nan=0.0),
        cost=np.nan_to_num(cost_raw, nan=0.0),
        signup=signup,
        attributes=attributes,
        properties=props,
        has_cost=has_cost,
    )
    _first_event_as_signup(data)
    del frame
    # Hand Arrow's freed read buffers back to the OS: the arrays above are all that is kept.
    pa.default_memory_pool().release_unused()
    return data


class _Placement:
    """Where each partition's rows go in the per-user frame, from a layout-2 user dictionary
    (``user_id`` in user-id order, ``part``, ``code`` within the partition, ``events``): a
    user's rows are the slice ``starts[u]:starts[u + 1]`` and a partition's rows, in their
    stored order, fill its users' slices one after another."""

    def __init__(self, codes: pa.Table) -> None:
        self.n_users = codes.num_rows
        self.part_of = codes.column("part").to_numpy()
        self.local_of = codes.column("code").to_numpy()
        self.counts = codes.column("events").to_numpy().astype(np.int64)
        self.starts = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(self.counts, out=self.starts[1:])
        self.n = int(self.starts[-1])
        self.by_part = np.argsort(self.part_of, kind="stable")
        self.part_bounds = np.searchsorted(self.part_of[self.by_part],
                                           np.arange(int(self.part_of.max(initial=-1)) + 2))

    def dest(self, part: int, table: pa.Table) -> np.ndarray:
        """Each row's place in the frame: its user's start + its rank within the user (rows of
        a user are adjacent and in time order). Checks the partition against the dictionary
        (its ``user`` column, when the table has one)."""
        if part + 1 >= len(self.part_bounds):
            raise ValueError(f"partition {part} has events but no user in the user dictionary")
        mine = self.by_part[self.part_bounds[part]:self.part_bounds[part + 1]]  # global codes
        global_of_local = np.empty(len(mine), dtype=np.int64)
        global_of_local[self.local_of[mine]] = mine
        run = self.counts[global_of_local]
        local = table.column("user").to_numpy() if "user" in table.column_names else None
        if int(run.sum()) != table.num_rows or (local is not None and len(local) and (
                int(local[-1]) != len(run) - 1 or bool((np.diff(local) < 0).any()))):
            raise ValueError(f"partition {part} does not match the user dictionary")
        dest = np.repeat(self.starts[global_of_local] - (np.cumsum(run) - run), run)
        dest += np.arange(table.num_rows, dtype=np.int64)
        return dest


def build_user_events_coded(
    parts: Iterable[tuple[int, pa.Table]],
    codes: pa.Table,
    users: pd.DataFrame | Callable[[], pd.DataFrame | None] | None = None,
    with_properties: bool = False,
    properties_from: Callable[[], Iterable[tuple[int, pa.Table]]] | None = None,
) -> UserEvents:
    """A ``UserEvents`` from a layout-2 store version (``events.store``), equal to
    ``build_user_events`` on the same events, with no string factorizing and no sort.

    ``codes`` is the version's user dictionary (see ``_Placement``): the event counts give
    every user's slice before any event is read. ``parts`` yields (partition, table) with the
    columns ``user`` (code within the partition, rows of a user adjacent, sorted by time),
    ``event``, ``timestamp``, ``revenue``, ``cost`` and, ``with_properties``, ``properties``;
    each partition's rows are placed at once (one scatter per column) and let go.

    ``properties_from`` (instead of ``with_properties``) reads the properties on first use:
    it yields the same partitions with the column ``properties`` (the rows were checked
    against the dictionary when the frame was built). Most refreshes
    never read a property, and placing them costs about a third of the load.

    ``users`` (the users file's rows) may be a function, called once the events are placed:
    the result of a read started beside this one (``events.loading``).
    """
    place = _Placement(codes)
    n_users, n, counts = place.n_users, place.n, place.counts
    ids = codes.column("user_id").to_numpy(zero_copy_only=False).astype(object, copy=False) \
        if n_users else np.zeros(0, dtype=object)

    time = np.empty(n, dtype=np.int64)
    event = np.empty(n, dtype=np.int32)
    amounts = {"revenue": np.zeros(n, dtype=np.float64), "cost": np.zeros(n, dtype=np.float64)}
    any_amount = {"revenue": False, "cost": False}
    kept_properties: dict[int, pa.Table] = {}  # with_properties: placed once all are in
    names: dict[str, int] = {}  # event name -> provisional code (renumbered sorted at the end)
    lock = threading.Lock()  # over ``names`` and ``any_amount``

    def place_one(item: tuple[int, pa.Table]) -> int:
        part, table = item
        if table.num_rows == 0:
            return 0
        dest = place.dest(part, table)
        stamps = table.column("timestamp")
        time[dest] = stamps.to_numpy().view(np.int64) if stamps.null_count == 0 else \
            stamps.cast(pa.int64()).fill_null(0).to_numpy()
        for name, out in amounts.items():
            column = table.column(name)
            if column.null_count == len(column):
                continue  # all missing: stays 0 (most costs, most revenue rows)
            with lock:
                any_amount[name] = True
            if column.null_count == 0:
                out[dest] = column.to_numpy()
            else:  # only the rows with an amount (a few percent): their places, then values
                values = column.combine_chunks()
                valid = np.flatnonzero(values.is_valid().to_numpy(zero_copy_only=False))
                out[dest[valid]] = values.drop_null().to_numpy()
        offset = 0
        for chunk in table.column("event").chunks:
            if not pa.types.is_dictionary(chunk.type):
                chunk = pc.dictionary_encode(chunk)
            with lock:
                lookup = np.array([names.setdefault(str(name), len(names))
                                   for name in chunk.dictionary.to_pylist()], dtype=np.int32)
            event[dest[offset:offset + len(chunk)]] = lookup[_indices(chunk.indices)]
            offset += len(chunk)
        if with_properties:
            kept_properties[part] = table.select(["properties"])
        return table.num_rows

    # Partitions fill disjoint places, and numpy's scatters release the GIL: two at a time
    # (the frame's arrays are written, never read, until every partition is in).
    placed = sum(map_in_threads(place_one, parts))
    if placed != n:
        raise ValueError(f"the user dictionary counts {n} events, the partitions hold {placed}")

    # Event names sorted, as build_user_events numbers them.
    sorted_names = sorted(names)
    renumber = np.zeros(len(names), dtype=np.int32)
    for code_now, name in enumerate(sorted_names):
        renumber[names[name]] = code_now
    event = renumber[event] if n else event
    revenue, cost = amounts["revenue"], amounts["cost"]
    for name, values in amounts.items():  # as nan_to_num does in build_user_events
        if any_amount[name] and not np.isfinite(values).all():
            np.nan_to_num(values, nan=0.0, copy=False)
    has_cost = any_amount["cost"]

    loader = None
    if not with_properties and properties_from is not None:
        def loader() -> pa.DictionaryArray:
            return _read_properties(place, properties_from())
    if callable(users):
        users = users()
    attributes, signup = _aligned_users(ids, users, codes.column("user_id"))
    data = UserEvents(
        user_ids=ids,
        user=np.repeat(np.arange(n_users, dtype=np.int32), counts),
        time=time,
        event=event,
        event_names=tuple(sorted_names),
        revenue=revenue,
        cost=cost,
        signup=signup,
        attributes=attributes,
        properties=_read_properties(place, kept_properties.items()) if with_properties
        else None,
        has_cost=has_cost,
        starts=place.starts,
        properties_loader=loader,
    )
    _first_event_as_signup(data)
    pa.default_memory_pool().release_unused()
    return data


def _read_properties(place: _Placement, parts: Iterable[tuple[int, pa.Table]],
                     ) -> pa.DictionaryArray:
    """The properties column of every partition as one frame-ordered dictionary array, for
    ``build_user_events_coded`` (at once ``with_properties``, or on first use). The partitions'
    dictionaries are made one first, in partition order (a lookup per chunk from its own
    dictionary to the distinct texts; a null is the last entry, as ``encode_properties``
    makes it), so each event's final code is scattered once, two partitions at a time."""
    tables = sorted(((part, table) for part, table in parts if table.num_rows),
                    key=lambda item: item[0])
    known = pa.array([], pa.string())
    lookups: list[list[np.ndarray]] = []
    nulls = False
    chunked: list[list[pa.DictionaryArray]] = []
    for _part, table in tables:
        chunks = [c if pa.types.is_dictionary(c.type) else pc.dictionary_encode(c)
                  for c in table.column("properties").chunks]
        chunked.append(chunks)
        mine = []
        for chunk in chunks:
            words = chunk.dictionary.cast(pa.string())
            at = pc.index_in(words, value_set=known)  # null: a text not seen before
            new = at.is_null().to_numpy(zero_copy_only=False)
            lookup = at.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
            if new.any():
                fresh = words.filter(pa.array(new))  # a dictionary's entries are distinct
                lookup[new] = np.arange(len(known), len(known) + len(fresh), dtype=np.int32)
                known = pa.concat_arrays([known, fresh])
            mine.append(lookup)
            nulls = nulls or chunk.indices.null_count > 0
        lookups.append(mine)
    null_code = np.int32(len(known))  # the last entry, when some event has no properties
    codes = np.empty(place.n, dtype=np.int32)

    def scatter(i: int) -> int:
        part, table = tables[i]
        dest = place.dest(part, table)
        offset = 0
        for chunk, lookup in zip(chunked[i], lookups[i], strict=True):
            indices = chunk.indices
            if indices.null_count:
                indices = pc.fill_null(indices, len(lookup))  # one past: the null's code
            codes[dest[offset:offset + len(chunk)]] = np.append(lookup, null_code)[
                _indices(indices)]
            offset += len(chunk)
        return table.num_rows
    map_in_threads(scatter, range(len(tables)))
    dictionary = pa.concat_arrays([known, pa.nulls(1, pa.string())]) if nulls else known
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), dictionary)


def _first_event_as_signup(data: UserEvents) -> None:
    """Users without a signup attribute (``_aligned_users`` leaves int64 max): their first
    event stands in. Fills ``data.signup`` in place, before any analysis reads it."""
    missing = data.signup == np.iinfo(np.int64).max
    if missing.any():
        data.signup[missing] = data.first_event_time()[missing]


def _indices(indices: pa.Array) -> np.ndarray:
    """Dictionary indices as int32 numpy, zero-copy; entries under a null are unspecified."""
    values = np.frombuffer(indices.buffers()[1], dtype=indices.type.to_pandas_dtype(),
                           count=indices.offset + len(indices))[indices.offset:]
    return values.astype(np.int32, copy=False)


def _same_ids(column: pd.Series, ids: np.ndarray, ids_arrow: pa.Array | None) -> bool:
    """Whether the users file's ids are exactly ``ids`` in order (compared in Arrow, without
    a Python string per user, when both sides are Arrow text)."""
    if len(column) != len(ids):
        return False
    if ids_arrow is not None and hasattr(column.array, "__arrow_array__"):
        theirs = pa.chunked_array(column.array.__arrow_array__())
        if theirs.type != ids_arrow.type:
            theirs = theirs.cast(ids_arrow.type)
        return theirs.null_count == 0 and theirs.equals(pa.chunked_array(ids_arrow))
    return bool(np.array_equal(column.to_numpy(dtype=object), ids))


def _aligned_users(ids: np.ndarray, users: pd.DataFrame | None,
                   ids_arrow: pa.Array | pa.ChunkedArray | None = None,
                   ) -> tuple[pd.DataFrame, np.ndarray]:
    """(attributes, signup) of the users ``ids`` as ``build_user_events`` makes them
    (``ids_arrow``: the same ids as Arrow text, for a faster check of the common case)."""
    attributes = pd.DataFrame(index=pd.RangeIndex(len(ids)))
    signup = np.full(len(ids), np.iinfo(np.int64).max, dtype=np.int64)
    if users is None or not len(users):
        return attributes, signup
    column = users["user_id"]
    if _same_ids(column, ids, ids_arrow):
        # The users file holds exactly these users in this order (the store keeps both in
        # user-id order): no hash join.
        attributes = users.drop(columns="user_id").reset_index(drop=True)
    else:
        aligned = users.drop_duplicates("user_id", keep="last").set_index("user_id").reindex(ids)
        attributes = aligned.reset_index(drop=True)
    if "signup_time" in attributes:
        st = pd.to_datetime(attributes["signup_time"], utc=True, format="ISO8601")
        known = st.notna().to_numpy()
        signup[known] = st[known].to_numpy(dtype="datetime64[us]").astype(np.int64)
    return attributes, signup
