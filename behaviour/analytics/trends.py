"""Trends on ``UserEvents``: measures of events per calendar bucket. Pure, vectorized.

Semantics:

* **Series**: an event name (or ``None``: any event) and a measure: ``count`` (events),
  ``unique_users`` (distinct users with such an event in the bucket) or ``sum_revenue`` (the
  events' revenue). Series are lettered A, B, C... in order.
* **Buckets** in UTC: days, ISO weeks (Monday 00:00) or calendar months. The range is
  ``[from_us, to_us)``; every bucket that meets it is shown (the first and last may be partial:
  only events inside the range count). A bucket without events is 0, never missing.
* **Breakdown**: a label per event (a user attribute through the event's user, or an event
  property) or per-user masks (segments, which may overlap). Groups are ranked by series A's
  total over the range (for unique users: distinct users over the whole range), ties by label;
  the top ``top`` are kept and every other event is in ``other`` (for segments: events of users
  in none of the shown segments). Uniques in ``other`` are counted directly, never summed.
* **Formula** over the series letters (``+ - * /``, parentheses, numbers), per bucket; a
  division by zero gives ``None`` and a note naming the buckets.
* **Previous period**: the window of the same length just before, ``[from - L, from)`` with
  ``L = to - from``; each of its events is shifted forward by ``L`` and bucketed as the
  current period, so bucket ``b`` of the previous period covers bucket ``b``'s span minus
  ``L`` (clipped to the previous window).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from events.frame import US_PER_DAY, UserEvents

from .cohorts import period_index, period_start

MEASURES = ("count", "unique_users", "sum_revenue")
INTERVALS = ("day", "week", "month")
LETTERS = "ABCDEFGH"
NONE_LABEL = "(none)"
OTHER_LABEL = "other"


@dataclass(frozen=True)
class Series:
    event: str | None  # None: any event
    measure: str


def bucket_index(time_us: np.ndarray, interval: str) -> np.ndarray:
    """Absolute bucket number of each time: days, ISO weeks (Monday) or months since 1970."""
    if interval == "day":
        return np.floor_divide(np.asarray(time_us, dtype=np.int64), US_PER_DAY)
    if interval in ("week", "month"):  # the retention cohorts' calendar periods
        return period_index(time_us, interval)
    raise ValueError("interval must be day, week or month")


def bucket_start(index: np.ndarray, interval: str) -> np.ndarray:
    """First µs of each absolute bucket number (inverse of ``bucket_index``)."""
    if interval == "day":
        return np.asarray(index, dtype=np.int64) * US_PER_DAY
    return period_start(index, interval)


# ----- formulas -----------------------------------------------------------------------------------
class FormulaError(ValueError):
    """A formula that is not arithmetic over the series letters."""


_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div)


def parse_formula(text: str, letters: Sequence[str]) -> ast.Expression:
    """The formula's syntax tree, checked: + - * / parentheses, numbers and series letters."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise FormulaError("not a valid expression") from None
    for node in ast.walk(tree):
        if isinstance(node, (ast.Expression, ast.Load, ast.UAdd, ast.USub, *_OPS)):
            continue
        if isinstance(node, ast.BinOp) and isinstance(node.op, _OPS):
            continue
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
            continue
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            continue
        if isinstance(node, ast.Name):
            if node.id not in letters:
                raise FormulaError(f"'{node.id}' is not a series (use {', '.join(letters)})")
            continue
        raise FormulaError("only + - * / parentheses, numbers and series letters are allowed")
    return tree


def evaluate_formula(tree: ast.Expression, values: dict[str, np.ndarray]) -> tuple[np.ndarray, bool]:
    """(values, divided_by_zero): the formula per element; NaN where a division by zero
    (or an operand that was one) makes it undefined."""
    zero = False

    def ev(node: ast.AST) -> np.ndarray:
        nonlocal zero
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            return np.float64(node.value)
        if isinstance(node, ast.Name):
            return values[node.id].astype(np.float64)
        if isinstance(node, ast.UnaryOp):
            inner = ev(node.operand)
            return -inner if isinstance(node.op, ast.USub) else inner
        assert isinstance(node, ast.BinOp)
        left, right = ev(node.left), ev(node.right)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        right = np.asarray(right, dtype=np.float64)
        bad = right == 0
        if np.any(bad):
            zero = True
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(bad, np.nan, left / np.where(bad, 1.0, right))

    out = np.asarray(ev(tree), dtype=np.float64)
    return out, zero


def _listed(values: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in values]


# ----- the measures -------------------------------------------------------------------------------
def _measure(kind: str, bucket: np.ndarray, user: np.ndarray, revenue: np.ndarray,
             group: np.ndarray, n_groups: int, n_buckets: int) -> np.ndarray:
    """(n_groups, n_buckets) measure of the given events (bucket and group codes in range)."""
    flat = group.astype(np.int64) * n_buckets + bucket
    size = n_groups * n_buckets
    if kind == "count":
        out = np.bincount(flat, minlength=size).astype(np.float64)
    elif kind == "sum_revenue":
        out = np.bincount(flat, weights=revenue, minlength=size)
    elif not len(user):
        out = np.zeros(size)
    else:  # distinct (cell, user) pairs, counted per cell
        base = int(user.max()) + 1
        cells = np.unique(flat * base + user) // base
        out = np.bincount(cells, minlength=size).astype(np.float64)
    return out.reshape(n_groups, n_buckets)


def _range_total(kind: str, user: np.ndarray, revenue: np.ndarray, group: np.ndarray,
                 n_groups: int) -> np.ndarray:
    """Per group: the measure over the whole range (ranks the breakdown)."""
    if kind == "count":
        return np.bincount(group, minlength=n_groups).astype(np.float64)
    if kind == "sum_revenue":
        return np.bincount(group, weights=revenue, minlength=n_groups)
    if not len(user):
        return np.zeros(n_groups)
    base = int(user.max()) + 1
    key = np.unique(group.astype(np.int64) * base + user)
    return np.bincount(key // base, minlength=n_groups).astype(np.float64)


def property_values(ue: UserEvents, key: str) -> np.ndarray:
    """Per event: the text of property ``key`` (``NONE_LABEL`` when absent). Each distinct
    properties text is parsed once."""
    if ue.properties is None:
        return np.full(ue.n_events, NONE_LABEL, dtype=object)
    codes, texts = ue.property_table()
    labels = np.empty(len(texts), dtype=object)
    for i, text in enumerate(texts):
        value = None
        if isinstance(text, str):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                value = parsed.get(key)
        if value is None:
            labels[i] = NONE_LABEL
        elif isinstance(value, bool):
            labels[i] = "true" if value else "false"
        elif isinstance(value, str):
            labels[i] = value
        else:
            labels[i] = json.dumps(value)
    return labels[codes]


@dataclass(frozen=True)
class Breakdown:
    """Either ``labels`` per event (attribute or property) or per-user ``masks`` (segments)."""

    by: str  # "attribute" | "property" | "segments"
    key: str = ""
    labels: np.ndarray | None = None  # attribute: (n_users,); property: (n_events,) object
    masks: tuple[tuple[str, np.ndarray], ...] = ()  # (name, (n_users,) bool)
    top: int = 5


def trends(ue: UserEvents, series: Sequence[Series], *, interval: str, from_us: int, to_us: int,
           users: np.ndarray | None = None, breakdown: Breakdown | None = None,
           formula: str = "", compare: bool = False) -> dict[str, Any]:
    """Trend series per bucket over ``[from_us, to_us)`` (see the module docstring)."""
    if interval not in INTERVALS:
        raise ValueError("interval must be day, week or month")
    if to_us <= from_us:
        raise ValueError("the range is empty")
    if not 1 <= len(series) <= len(LETTERS):
        raise ValueError(f"give 1 to {len(LETTERS)} series")
    letters = list(LETTERS[:len(series)])
    first, last = (int(x) for x in bucket_index(np.array([from_us, to_us - 1]), interval))
    n_buckets = last - first + 1
    starts = bucket_start(np.arange(first, last + 1), interval)
    length = to_us - from_us

    keep = np.ones(ue.n_events, dtype=bool)
    if users is not None:
        keep &= np.asarray(users, dtype=bool)[ue.user]

    # Breakdown groups per event: codes into ``names``; segments are one pass per segment.
    group_names: list[str] = []
    event_group: np.ndarray | None = None
    if breakdown is not None and breakdown.by in ("attribute", "property"):
        assert breakdown.labels is not None
        group_names, codes = _factorize(breakdown.labels)
        # Attribute labels are per user: each event takes its user's group.
        event_group = codes[ue.user] if breakdown.by == "attribute" else codes

    def selected(ser: Series, lo: int, hi: int) -> np.ndarray:
        mask = keep & (ue.time >= lo) & (ue.time < hi)
        if ser.event is not None:
            mask &= ue.event == ue.event_code(ser.event)
        return np.flatnonzero(mask)

    def per_bucket(ser: Series, pos: np.ndarray, shift: int, group: np.ndarray | None,
                   n_groups: int) -> np.ndarray:
        b = bucket_index(ue.time[pos] + shift, interval) - first
        g = np.zeros(len(pos), dtype=np.int64) if group is None else group
        return _measure(ser.measure, b, ue.user[pos], ue.revenue[pos], g, n_groups, n_buckets)

    # Rank the breakdown by series A's total over the range.
    shown: list[str] = []
    has_other = False
    if breakdown is not None:
        pos_a = selected(series[0], from_us, to_us)
        if breakdown.by == "segments":
            names = [n for n, _ in breakdown.masks]
            totals = np.array([_range_total(series[0].measure, ue.user[pos_a][m],
                                            ue.revenue[pos_a][m], np.zeros(int(m.sum()), np.int64),
                                            1)[0]
                               for _, mask in breakdown.masks
                               for m in [np.asarray(mask, bool)[ue.user[pos_a]]]]) \
                if names else np.zeros(0)
        else:
            assert event_group is not None
            names = group_names
            totals = _range_total(series[0].measure, ue.user[pos_a], ue.revenue[pos_a],
                                  event_group[pos_a], len(names))
        order = sorted(range(len(names)), key=lambda i: (-totals[i], names[i]))
        top_idx = order[:breakdown.top]
        shown = [names[i] for i in top_idx]
        has_other = len(order) > breakdown.top or breakdown.by == "segments"

    def series_values(ser: Series, lo: int, hi: int, shift: int) -> dict[str, Any]:
        pos = selected(ser, lo, hi)
        total = per_bucket(ser, pos, shift, None, 1)[0]
        groups: list[np.ndarray] = []
        if breakdown is not None and breakdown.by == "segments":
            name_to_mask = dict(breakdown.masks)
            in_any = np.zeros(len(pos), dtype=bool)
            for name in shown:
                m = np.asarray(name_to_mask[name], dtype=bool)[ue.user[pos]]
                in_any |= m
                groups.append(per_bucket(ser, pos[m], shift, None, 1)[0])
            if has_other:
                groups.append(per_bucket(ser, pos[~in_any], shift, None, 1)[0])
        elif breakdown is not None:
            assert event_group is not None
            code_of = {group_names.index(n): k for k, n in enumerate(shown)}
            remap = np.full(len(group_names), len(shown), dtype=np.int64)
            for src, dst in code_of.items():
                remap[src] = dst
            g = remap[event_group[pos]]
            matrix = per_bucket(ser, pos, shift, g, len(shown) + 1)
            groups = list(matrix[:len(shown)])
            if has_other:
                groups.append(matrix[len(shown)])
        return {"total": total, "groups": groups}

    current = [series_values(s, from_us, to_us, 0) for s in series]
    previous = [series_values(s, from_us - length, from_us, length) for s in series] \
        if compare else None
    labels = [str(d) for d in starts.astype("datetime64[us]").astype("datetime64[D]")]
    group_labels = shown + ([OTHER_LABEL] if has_other else [])

    notes: list[str] = []
    out_series = []
    for letter, ser, cur, k in zip(letters, series, current, range(len(series)), strict=True):
        out_series.append({
            "letter": letter, "event": ser.event or "any", "measure": ser.measure,
            "label": f"{letter}: {_measure_label(ser)}",
            "values": _listed(cur["total"]), "sum": float(cur["total"].sum())
            if ser.measure != "unique_users" else None,
            "breakdown": [{"label": lab, "values": _listed(v)}
                          for lab, v in zip(group_labels, cur["groups"], strict=True)],
            "previous": _listed(previous[k]["total"]) if previous else None,
        })
    out_formula = None
    if formula.strip():
        tree = parse_formula(formula, letters)
        values, zero = evaluate_formula(tree, {ltr: c["total"] for ltr, c in
                                               zip(letters, current, strict=True)})
        values = np.broadcast_to(values, (n_buckets,))
        zero_buckets = [labels[i] for i in np.flatnonzero(~np.isfinite(values))]
        by_group = []
        for j, lab in enumerate(group_labels):
            gv, _ = evaluate_formula(tree, {ltr: c["groups"][j] for ltr, c in
                                            zip(letters, current, strict=True)})
            by_group.append({"label": lab, "values": _listed(np.broadcast_to(gv, (n_buckets,)))})
        prev_values = None
        if previous:
            pv, _ = evaluate_formula(tree, {ltr: c["total"] for ltr, c in
                                            zip(letters, previous, strict=True)})
            prev_values = _listed(np.broadcast_to(pv, (n_buckets,)))
        if zero:
            notes.append("formula: division by zero gives no value (null) in "
                         + (", ".join(zero_buckets) if zero_buckets else "some breakdown groups"))
        out_formula = {"expression": formula.strip(), "values": _listed(values),
                       "breakdown": by_group, "previous": prev_values}
    return {
        "interval": interval,
        "from": _day(from_us), "to": _day(to_us - 1),
        "from_us": int(from_us), "to_us": int(to_us),
        "buckets": labels, "bucket_starts_us": [int(s) for s in starts],
        "series": out_series, "formula": out_formula,
        "breakdown": None if breakdown is None else {
            "by": breakdown.by, "key": breakdown.key, "top": breakdown.top,
            "groups": group_labels, "other": has_other},
        "previous": {"from": _day(from_us - length), "to": _day(from_us - 1),
                     "shift_days": length / US_PER_DAY} if compare else None,
        "notes": notes,
    }


def _measure_label(ser: Series) -> str:
    what = ser.event or "any event"
    if ser.measure == "count":
        return f"{what} events"
    if ser.measure == "unique_users":
        return f"users with {what}"
    return f"revenue of {what}"


def _day(us: int) -> str:
    return str(np.datetime64(int(us), "us").astype("datetime64[D]"))


def _factorize(labels: np.ndarray) -> tuple[list[str], np.ndarray]:
    text = np.array([NONE_LABEL if v is None or (isinstance(v, float) and v != v) else str(v)
                     for v in labels], dtype=object) if len(labels) else np.zeros(0, object)
    uniques, codes = np.unique(text.astype(str), return_inverse=True) if len(text) \
        else (np.zeros(0, dtype=str), np.zeros(0, dtype=np.int64))
    return [str(u) for u in uniques], codes.astype(np.int64)
