"""Rule evaluation: vectorized over the per-user event frame."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from events.frame import US_PER_DAY, UserEvents

from .common import (
    _BOOL,
    _MISSING,
    _NUMBER,
    _OTHER,
    _TEXT,
    SEEN_MATRIX_CELLS,
    RuleError,
    _is_number,
    _join,
    _node_key,
    as_of_micros,
    node_kind,
    parse_iso,
)
from .validate import validate_rule

# --------------------------------------------------------------------------------------------
# Evaluation


def evaluate_rule(rule: Any, data: UserEvents, as_of: int | datetime) -> np.ndarray:
    """Boolean mask over users (length ``data.n_users``) of who matches the rule at ``as_of``."""
    validate_rule(rule)
    return RuleEvaluator(data, as_of).mask(rule).copy()


class RuleEvaluator:
    """Evaluates validated rule nodes on one ``UserEvents`` at one ``as_of``, caching leaves.

    Leaf masks and per-user statistics are cached by node content, so re-evaluating a tree
    with one node's mask overridden (what a sweep does) only recombines booleans.
    """

    def __init__(self, data: UserEvents, as_of: int | datetime) -> None:
        self.data = data
        self.as_of = as_of_micros(as_of)
        self._before: np.ndarray | None = None
        self._n_before: np.ndarray | None = None
        self._masks: dict[str, np.ndarray] = {}
        self._stats: dict[str, np.ndarray] = {}
        self._parsed: dict[str, Any] = {}
        self._columns: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}

    # Trees --------------------------------------------------------------------------------

    def mask(self, node: Mapping[str, Any], path: str = "",
             overrides: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Mask of a (validated) node; ``overrides`` replaces the masks of nodes by path."""
        if overrides and path in overrides:
            return overrides[path]
        n = self.data.n_users
        kind = node_kind(node, path)
        if kind == "all":
            out = np.ones(n, dtype=bool)
            for i, child in enumerate(node["all"]):
                out &= self.mask(child, _join(path, f"all[{i}]"), overrides)
            return out
        if kind == "any":
            out = np.zeros(n, dtype=bool)
            for i, child in enumerate(node["any"]):
                out |= self.mask(child, _join(path, f"any[{i}]"), overrides)
            return out
        if kind == "not":
            return ~self.mask(node["not"], _join(path, "not"), overrides)
        key = _node_key(node)
        cached = self._masks.get(key)
        if cached is None:
            cached = self._leaf(kind, node, path)
            self._masks[key] = cached
        return cached

    def _leaf(self, kind: str, node: Mapping[str, Any], path: str) -> np.ndarray:
        if kind == "attribute":
            return self._attribute(node, path)
        if kind in ("event", "distinct", "revenue"):
            return self.stat_mask(node, self.stat(node, path))
        return self._seen(node[kind], kind == "first_seen")

    # Behaviour ----------------------------------------------------------------------------

    @property
    def before(self) -> np.ndarray:
        """Per event: whether it happened before ``as_of``."""
        if self._before is None:
            self._before = self.data.time < self.as_of
        return self._before

    def stat(self, node: Mapping[str, Any], path: str = "") -> np.ndarray:
        """Per-user statistic of an event (count), distinct (count) or revenue (sum) node."""
        key = _node_key(node)
        cached = self._stats.get(key)
        if cached is not None:
            return cached
        kind = node_kind(node, path)
        idx = self.matching_events(node, path)
        if kind == "revenue":
            out = self.per_user(idx, weights=self.data.revenue[idx])
        elif kind == "event":
            out = self.per_user(idx)
        elif kind == "distinct":
            codes = self.distinct_codes(node, path, idx)
            out = self.distinct_per_user(idx, codes)
        else:
            raise RuleError(path, f"a {kind} node has no per-user statistic")
        self._stats[key] = out
        return out

    def stat_mask(self, node: Mapping[str, Any], stat: np.ndarray) -> np.ndarray:
        """Apply an event, distinct or revenue node's thresholds to its per-user statistic."""
        if "revenue" in node:
            spec = node["revenue"]
            return compare(stat, spec["op"], spec["value"])
        lo_key, hi_key = ("min_count", "max_count") if "event" in node else ("min", "max")
        out = stat >= node.get(lo_key, 1)
        if node.get(hi_key) is not None:
            out &= stat <= node[hi_key]
        return out

    def per_user(self, idx: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Per-user count (or weighted sum) of the events ``idx``."""
        return np.bincount(self.data.user[idx], weights=weights, minlength=self.data.n_users)

    def distinct_per_user(self, idx: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Per-user number of distinct non-negative ``codes`` among the events ``idx``."""
        return distinct_per_user(self.data.user[idx], codes, self.data.n_users)

    def matching_events(self, node: Mapping[str, Any], path: str = "",
                        window: Any = ...) -> np.ndarray:
        """Indices of events before ``as_of`` that a behavioural node counts.

        Name pattern, window and property filters apply; ``window`` overrides the node's
        own window when given (``None`` = all time).
        """
        data = self.data
        kind = node_kind(node, path)
        if kind == "revenue":
            # Only events with revenue: the others add exactly nothing to any sum.
            idx = self._before_only(data.revenue_events())
        elif kind in ("event", "distinct"):
            pattern = node["event"] if kind == "event" else node["distinct"]["event"]
            idx = self._before_only(data.events_named(np.flatnonzero(self.name_table(pattern))))
        else:
            raise RuleError(path, f"a {kind} node does not select events")
        win = node.get("window") if window is ... else window
        if win is not None:
            idx = idx[self._in_window(win, idx)]
        where = node.get("where") or []
        if where and len(idx):
            idx = self._filter(where, idx, _join(path, "where"))
        return idx

    def _before_only(self, idx: np.ndarray) -> np.ndarray:
        """The events of ``idx`` (ascending positions) that happened before ``as_of``."""
        latest = self.data.time_max()
        if latest is None or latest < self.as_of:  # the usual refresh: all of them
            return idx
        return idx[self.data.time[idx] < self.as_of]

    def name_table(self, pattern: str) -> np.ndarray:
        """Per event code: whether its name matches the glob ``pattern``."""
        names = self.data.event_names
        return np.fromiter((fnmatch.fnmatchcase(n, pattern) for n in names), dtype=bool,
                           count=len(names))

    def _in_window(self, window: Mapping[str, Any], idx: np.ndarray) -> np.ndarray:
        (kind, value), = window.items()
        if kind == "from_signup_days":
            offset = self.data.since_signup()[idx]
            return (offset >= value[0] * US_PER_DAY) & (offset < value[1] * US_PER_DAY)
        time = self.data.time[idx]
        if kind == "between":
            return (time >= parse_iso(value[0], "")) & (time < parse_iso(value[1], ""))
        return time >= self.as_of - value * US_PER_DAY

    # Properties ---------------------------------------------------------------------------

    def _properties(self, path: str) -> np.ndarray:
        props = self.data.properties
        if props is None:
            raise RuleError(path, "event properties are not loaded for this data "
                            "(build it with with_properties=True)")
        return props

    def _texts(self, idx: np.ndarray, path: str) -> tuple[np.ndarray, np.ndarray]:
        """Codes (``-1`` = no properties) and distinct property texts of the events ``idx``."""
        self._properties(path)
        all_codes, all_texts = self.data.property_table()
        codes = all_codes[idx]
        # Only the texts these events use (each is parsed once), numbered 0..k-1.
        used = np.zeros(len(all_texts), dtype=bool)
        used[codes] = True
        used &= self.data.property_is_text()
        renumber = np.full(len(all_texts), -1, dtype=np.int64)
        renumber[used] = np.arange(int(used.sum()))
        return renumber[codes], all_texts[used]

    def _extract(self, texts: np.ndarray, key: str) -> _Values:
        """One property of each distinct properties text (parsed once per evaluator)."""
        values = _Values(len(texts))
        parsed = self._parsed
        for j, text in enumerate(texts):  # per distinct text, not per event
            obj = parsed.get(text, ...)
            if obj is ...:
                try:
                    obj = json.loads(text) if isinstance(text, str) else None
                except ValueError:
                    obj = None
                parsed[text] = obj
            values.set(j, obj.get(key) if isinstance(obj, dict) else None)
        return values

    def _filter(self, filters: list[Mapping[str, Any]], idx: np.ndarray,
                path: str) -> np.ndarray:
        codes, texts = self._texts(idx, path)
        ok = np.ones(len(texts), dtype=bool)
        missing_ok = True
        for f in filters:
            values = self._extract(texts, f["property"])
            hit, if_missing = values.match(f["op"], f.get("value"))
            ok &= hit
            missing_ok = missing_ok and if_missing
        keep = np.full(len(idx), missing_ok)
        known = codes >= 0
        keep[known] = ok[codes[known]]
        return idx[keep]

    def distinct_codes(self, node: Mapping[str, Any], path: str, idx: np.ndarray) -> np.ndarray:
        """Per event in ``idx``: code of what a distinct node counts (``-1`` = nothing)."""
        spec = node["distinct"]
        if "property" not in spec:
            return self.data.event[idx].astype(np.int64)
        if not len(idx):
            return np.zeros(0, dtype=np.int64)
        codes, texts = self._texts(idx, _join(path, "distinct.property"))
        identity = self._extract(texts, spec["property"]).identity
        value_codes, _ = pd.factorize(pd.Series(identity, dtype=object), use_na_sentinel=True)
        out = np.full(len(idx), -1, dtype=np.int64)
        known = codes >= 0
        out[known] = value_codes[codes[known]]
        return out

    # First / last seen --------------------------------------------------------------------

    def _seen(self, spec: Mapping[str, Any], first: bool) -> np.ndarray:
        data = self.data
        if self._n_before is None:
            latest = data.time_max()
            if latest is None or latest < self.as_of:  # every event is before as_of
                self._n_before = np.diff(data.starts)
            else:
                self._n_before = np.bincount(data.user[self.before], minlength=data.n_users)
        n_before = self._n_before
        has = n_before > 0
        times = np.zeros(data.n_users, dtype=np.int64)
        if has.any():
            pos = data.starts[:-1][has] + (0 if first else n_before[has] - 1)
            times[has] = data.time[pos]
        op, value = spec["op"], spec["value"]
        if op == "before":
            hit = times < parse_iso(value, "")
        elif op == "after":
            hit = times >= parse_iso(value, "")
        elif op == "between":
            hit = (times >= parse_iso(value[0], "")) & (times < parse_iso(value[1], ""))
        else:
            hit = times >= self.as_of - value * US_PER_DAY
        return hit & has

    # Attributes ---------------------------------------------------------------------------

    def _attribute(self, node: Mapping[str, Any], path: str) -> np.ndarray:
        name, op, value = node["attribute"], node["op"], node.get("value")
        n = self.data.n_users
        attrs = self.data.attributes
        if name not in attrs.columns:
            return np.full(n, op == "is_null")
        col = attrs[name]
        if isinstance(col, pd.DataFrame):  # duplicated column name: the last one wins
            col = col.iloc[:, -1]
        col = col.reset_index(drop=True)
        kind = _column_kind(col)
        value_path = _join(path, "value")
        if kind == "text" and op in ("eq", "ne", "in", "not_in"):
            # Text: compare the column's distinct values once, then look each user's up.
            codes, uniques = self.data._derived(("attribute_codes", name),
                                                lambda: _factorized(col))
            values = list(value) if op in ("in", "not_in") else [value]
            table = np.append(np.asarray(uniques.isin(values), dtype=bool), False)
            hit = table[codes]  # code -1 (missing) reads the final False
            if op in ("ne", "not_in"):
                hit = ~hit & (codes >= 0)
            return hit
        present = col.notna().to_numpy(dtype=bool)
        if op == "is_null":
            return ~present
        if op == "not_null":
            return present
        if op in ("eq", "ne", "in", "not_in"):
            values = list(value) if op in ("in", "not_in") else [value]
            hit = _equal_any(col, kind, values, value_path)
            if op in ("ne", "not_in"):
                hit = ~hit
            return hit & present
        if op == "contains":
            if kind != "text":
                raise RuleError(_join(path, "op"), f"contains needs a text attribute; "
                                f"{name!r} is {kind}")
            text = col.astype("str")
            return text.str.contains(value, regex=False, na=False).to_numpy(dtype=bool) & present
        bounds = value if op == "between" else [value]
        texts = all(isinstance(b, str) for b in bounds)
        if kind == "number":
            numbers = col.to_numpy(dtype="float64", na_value=np.nan)
            if not all(_is_number(b) for b in bounds):
                raise RuleError(value_path, f"{name!r} is numeric; compare it with numbers")
        elif kind == "datetime" and not texts:
            raise RuleError(value_path, f"{name!r} is a datetime; compare it with ISO 8601 dates")
        else:
            stamps = self._stamps(name, col) if texts and kind in ("datetime", "text") else None
            if stamps is None:
                raise RuleError(_join(path, "op"), f"{op} needs a numeric or datetime "
                                f"attribute; {name!r} is {kind}")
            numbers, present = stamps
            value = ([parse_iso(b, f"{value_path}[{i}]") for i, b in enumerate(bounds)]
                     if op == "between" else parse_iso(value, value_path))
        return compare(numbers, op, value) & present

    def _stamps(self, name: str, col: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
        if name not in self._columns:
            self._columns[name] = _datetime_micros(col, text=_column_kind(col) == "text")
        return self._columns[name]


def distinct_per_user(users: np.ndarray, codes: np.ndarray, n_users: int) -> np.ndarray:
    """Per user (``0..n_users-1``): the number of distinct non-negative ``codes`` over the
    (user, code) pairs ``zip(users, codes)``."""
    keep = codes >= 0
    users = users[keep].astype(np.int64)
    codes = codes[keep].astype(np.int64)
    if not len(codes):
        return np.zeros(n_users, dtype=np.int64)
    width = int(codes.max()) + 1
    if n_users * width <= SEEN_MATRIX_CELLS:
        # A users x values table of seen flags: no sort, one byte per cell.
        seen = np.zeros(n_users * width, dtype=bool)
        seen[users * width + codes] = True
        return np.bincount(np.flatnonzero(seen) // width, minlength=n_users)
    pairs = np.unique(users * width + codes)
    return np.bincount(pairs // width, minlength=n_users)


def compare(values: np.ndarray, op: str, value: Any) -> np.ndarray:
    """``values OP value`` for gt/gte/lt/lte/eq and inclusive between ``[lo, hi]``."""
    if op == "gt":
        return values > value
    if op == "gte":
        return values >= value
    if op == "lt":
        return values < value
    if op == "lte":
        return values <= value
    if op == "eq":
        return values == value
    if op == "between":
        return (values >= value[0]) & (values <= value[1])
    raise ValueError(f"unknown comparison {op!r}")


def _factorized(col: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """(codes, distinct values) of a column; code -1 = missing. Codes are read-only (cached)."""
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.int64)
    codes.flags.writeable = False
    return codes, pd.Index(uniques)


def _column_kind(col: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(col.dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(col.dtype):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        return "datetime"
    return "text"


def _datetime_micros(col: pd.Series, text: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
    """µs since the epoch and presence of a datetime column (or of a text column whose values
    are all ISO 8601; ``None`` when some are not). Naive datetimes are UTC."""
    if text:
        stamps = pd.to_datetime(col, utc=True, errors="coerce", format="ISO8601")
        if not stamps.notna().any() or (stamps.notna() != col.notna()).any():
            return None
    else:
        stamps = pd.to_datetime(col, utc=True)
    known = stamps.notna().to_numpy(dtype=bool)
    naive = stamps.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")
    out = naive.to_numpy().astype(np.int64)
    out[~known] = 0
    return out, known


def _equal_any(col: pd.Series, kind: str, values: list[Any], path: str) -> np.ndarray:
    if kind == "number":
        wanted = [float(v) for v in values if _is_number(v)]
        return np.isin(col.to_numpy(dtype="float64", na_value=np.nan), wanted)
    if kind == "boolean":
        wanted_bools = [bool(v) for v in values if isinstance(v, bool)]
        return np.isin(col.to_numpy(dtype=bool, na_value=False), wanted_bools)
    if kind == "datetime":
        wanted_us = [parse_iso(v, path) for v in values if isinstance(v, str)]
        stamps = _datetime_micros(col)
        assert stamps is not None
        return np.isin(stamps[0], wanted_us) & stamps[1]
    return col.isin(values).to_numpy(dtype=bool)


class _Values:
    """One property's value per distinct properties text, split by JSON type."""

    def __init__(self, n: int) -> None:
        self.kind = np.zeros(n, dtype=np.int8)
        self.text = np.full(n, "", dtype=object)
        self.number = np.full(n, np.nan)
        self.identity = np.full(n, None, dtype=object)

    def set(self, j: int, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool):
            self.kind[j], self.number[j], self.identity[j] = _BOOL, float(value), f"b:{value}"
        elif isinstance(value, str):
            self.kind[j], self.text[j], self.identity[j] = _TEXT, value, f"s:{value}"
        elif isinstance(value, int | float):
            number = float(value)
            self.kind[j], self.number[j], self.identity[j] = _NUMBER, number, f"n:{number!r}"
        else:
            self.kind[j] = _OTHER
            self.identity[j] = "o:" + json.dumps(value, sort_keys=True)

    def _equal(self, value: Any) -> np.ndarray:
        if isinstance(value, bool):
            return (self.kind == _BOOL) & (self.number == float(value))
        if isinstance(value, str):
            return (self.kind == _TEXT) & (self.text == value)
        return (self.kind == _NUMBER) & (self.number == float(value))

    def match(self, op: str, value: Any) -> tuple[np.ndarray, bool]:
        """Per distinct text: whether the filter passes; and whether it passes when missing."""
        present = self.kind != _MISSING
        if op == "exists":
            wanted = True if value is None else bool(value)
            return (present if wanted else ~present), not wanted
        if op == "eq":
            return self._equal(value), False
        if op == "ne":
            return present & ~self._equal(value), False
        if op == "in":
            hit = np.zeros(len(self.kind), dtype=bool)
            for v in value:
                hit |= self._equal(v)
            return hit, False
        if op == "contains":
            text = pd.Series(self.text, dtype=object).str.contains(value, regex=False)
            return (self.kind == _TEXT) & text.to_numpy(dtype=bool), False
        return (self.kind == _NUMBER) & compare(self.number, op, float(value)), False
