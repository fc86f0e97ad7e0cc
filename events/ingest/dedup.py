"""Sorting rows by (user, timestamp, event) with packed integer keys, and finding the rows
that repeat an earlier one: the same whole event (user, event, timestamp, properties, revenue
and cost)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .textcodes import _text_codes_arrow


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


@dataclass(frozen=True)
class _Unique:
    """What ``_sorted_unique`` found: ``keep``, the positions of the rows to keep in stored
    order; ``ordered``, their (single) sort key, or None when the plan has several; the new
    rows that repeat a new row (``in_file``) or a stored row (``stored``); ``other_amount``,
    the positions of the kept new rows that share user, event, time and properties with
    another kept row but not its revenue and cost."""

    keep: np.ndarray
    ordered: np.ndarray | None
    in_file: int = 0
    stored: int = 0
    other_amount: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def _amount_key(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Amounts as floats for sorting and comparing: NaN where missing, -0.0 as 0.0."""
    out = np.asarray(pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False),
                     dtype=np.float64)
    return out + 0.0  # -0.0 + 0.0 == +0.0


def _same_amount(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a == b) | (np.isnan(a) & np.isnan(b))


def _sorted_unique(
    plan: _SortPlan, n_existing: int, columns: dict[str, pa.ChunkedArray],
    rows: np.ndarray | None,
) -> _Unique:
    """The rows to keep, sorted by (user, timestamp, event, properties, revenue, cost) and
    then position; a row equal to an earlier one in all six is a repeat and left out.

    The rows are the stored ones (the first ``n_existing``) followed by the new ones;
    ``columns`` holds their ``properties``, ``revenue`` and ``cost`` (taken at ``rows`` when
    ``rows`` is not None). Within a run of equal (user, timestamp[, event]) keys the order is
    that of the event's name, its properties text (by bytes, missing last) and its amounts
    (numeric, missing last): never the file's row order, so the same rows give the same
    stored partition whatever their order and however they were split across imports."""
    keys = plan.keys
    m = len(keys[0])
    ordered = None
    if m == 0:
        return _Unique(np.zeros(0, np.int64), keys[0][:0] if len(keys) == 1 else None)
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
        return _Unique(order, ordered)
    # Runs of equal keys: put in order of (tie, properties, revenue, cost, position); the
    # rows equal to the previous row in all of these but position are repeats. (A run's key
    # is the same on each of its places, so ``ordered`` stays right.)
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
    picked = pa.array(position if rows is None else rows[position])
    texts = _text_codes_arrow(columns["properties"].take(picked).combine_chunks())
    props = texts.ranks[texts.codes]  # by text, not by first appearance
    revenue = _amount_key(columns["revenue"].take(picked))
    cost = _amount_key(columns["cost"].take(picked))
    regroup = np.lexsort((position, cost, revenue, props, ties, runs))
    runs, ties, props, position = runs[regroup], ties[regroup], props[regroup], position[regroup]
    revenue, cost = revenue[regroup], cost[regroup]
    order[slots] = position
    event = np.zeros(len(slots), bool)  # same user, time, event and properties as the previous
    event[1:] = (runs[1:] == runs[:-1]) & (ties[1:] == ties[:-1]) & (props[1:] == props[:-1])
    amount = np.zeros(len(slots), bool)
    amount[1:] = _same_amount(revenue[1:], revenue[:-1]) & _same_amount(cost[1:], cost[:-1])
    repeat = event & amount
    previous = np.empty_like(position)
    previous[1:] = position[:-1]
    new_repeat = repeat & (position >= n_existing)
    stored = int(np.count_nonzero(new_repeat & (previous < n_existing)))
    in_file = int(np.count_nonzero(new_repeat)) - stored
    # Events told apart by their amount only: in each group of equal (user, time, event,
    # properties) with more than one amount, every kept new row but the group's first when
    # the group holds no stored row (its first row is the event the others differ from).
    group = np.cumsum(~event) - 1
    several = np.bincount(group, weights=event & ~amount) > 0
    has_stored = np.bincount(group, weights=position < n_existing) > 0
    flagged = ~repeat & (position >= n_existing) & several[group]
    flagged &= event | has_stored[group]
    drop = np.zeros(m, bool)
    drop[position[repeat]] = True
    kept = ~drop[order]
    return _Unique(order[kept], None if ordered is None else ordered[kept], in_file, stored,
                   np.sort(position[flagged]))
