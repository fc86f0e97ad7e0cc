"""Segment rules: a JSON rule tree over user attributes and behaviour, evaluated vectorized. Pure.

A rule is a tree of JSON objects. Every node has exactly one *kind key*:

Combinators
    ``{"all": [node, ...]}``  every child matches (``all`` of ``[]`` = everyone)
    ``{"any": [node, ...]}``  some child matches (``any`` of ``[]`` = no one)
    ``{"not": node}``         the child does not match

Attribute (a column of ``UserEvents.attributes``)
    ``{"attribute": "plan", "op": OP, "value": ...}`` with OP one of
    ``eq ne in not_in gt gte lt lte between is_null not_null contains``.
    ``in``/``not_in`` take a list; ``between`` takes ``[lo, hi]`` (inclusive); ``is_null`` and
    ``not_null`` take no value; ``contains`` takes text (substring of a text attribute).
    A missing value never matches, except for ``is_null`` (``ne``/``not_in`` included). The
    ordering ops and ``between`` need a numeric column (compared with numbers) or a datetime
    column (compared with ISO 8601 text); a text column whose values are all ISO 8601 dates
    counts as a datetime column for them (equality on a text column stays textual). An
    attribute the data does not have counts as missing for every user.

Behaviour (count of events)
    ``{"event": "report_created", "min_count": 2, "max_count": null, "window": WINDOW,
    "where": [PROPFILTER, ...]}``: the number of the user's events whose name matches
    ``event`` (an ``fnmatch`` glob, case-sensitive: ``"feature_*"``; a plain name matches
    itself), that fall in the window and pass every property filter, lies in
    ``[min_count, max_count]`` (``min_count`` defaults to 1; no ``max_count`` = no cap).

Distinct
    ``{"distinct": {"event": "feature_used", "property": "feature"}, "min": 3, "max": null,
    "window": WINDOW, "where": [...]}``: the number of distinct values of that event property
    among the user's matching events is in ``[min, max]`` (``min`` defaults to 1). Without
    ``"property"`` it counts distinct event *names* matching the pattern. Values are distinct
    by JSON type and value (``"1"`` and ``1`` differ; ``1`` and ``1.0`` do not); events
    without the property (or with null) are not counted.

Revenue
    ``{"revenue": {"op": OP, "value": V}, "window": WINDOW}``: the sum of the user's revenue
    in the window, OP one of ``gt gte lt lte eq between`` (``between`` takes ``[lo, hi]``,
    inclusive). Users without events have revenue 0.

First / last seen
    ``{"first_seen": {"op": OP, "value": ...}}`` (and ``"last_seen"``), over the user's
    events before ``as_of``: ``before`` ISO (time < value), ``after`` ISO (time >= value),
    ``between`` [ISO, ISO] (half-open), ``within_days`` N (time >= as_of - N days). Users
    with no event before ``as_of`` never match.

WINDOW (optional; absent = all time before ``as_of``), one key:
    ``{"from_signup_days": [a, b]}`` = [signup + a days, signup + b days), whole days, b > a;
    ``{"between": [ISO, ISO]}`` = absolute and half-open;
    ``{"last_days": N}`` = [as_of - N days, as_of).
    ISO texts without an offset are read as UTC.

PROPFILTER on the event's JSON properties (top-level keys only):
    ``{"property": "feature", "op": OP, "value": ...}`` with OP one of
    ``eq ne in contains gt gte lt lte exists``. Comparisons are typed: text equals text,
    numbers equal numbers (booleans are not numbers), booleans equal booleans. ``contains``
    is a substring test on text values; ``gt``/``gte``/``lt``/``lte`` take a number and
    match numeric values. A property that is absent or null never matches, except
    ``{"op": "exists", "value": false}`` (``exists`` alone means ``value: true``).

Every evaluation takes ``as_of`` (µs since the epoch, or a timezone-aware datetime); events
at or after ``as_of`` are ignored everywhere.

Errors carry a path to the offending node: ``all[1].any[0].window.from_signup_days``; the
root node's path is ``""`` (shown as ``(root)``). The same syntax addresses nodes for
sweeps (see ``refine``).
"""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd

from events.frame import US_PER_DAY, UserEvents

COMBINATORS = ("all", "any", "not")
LEAVES = ("attribute", "event", "distinct", "revenue", "first_seen", "last_seen")
KINDS = COMBINATORS + LEAVES
ATTRIBUTE_OPS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "is_null",
                 "not_null", "contains")
PROPERTY_OPS = ("eq", "ne", "in", "contains", "gt", "gte", "lt", "lte", "exists")
REVENUE_OPS = ("gt", "gte", "lt", "lte", "between", "eq")
SEEN_OPS = ("before", "after", "between", "within_days")
WINDOW_KINDS = ("from_signup_days", "between", "last_days")
NODE_KEYS: dict[str, tuple[str, ...]] = {
    "all": ("all",),
    "any": ("any",),
    "not": ("not",),
    "attribute": ("attribute", "op", "value"),
    "event": ("event", "min_count", "max_count", "window", "where"),
    "distinct": ("distinct", "min", "max", "window", "where"),
    "revenue": ("revenue", "window"),
    "first_seen": ("first_seen",),
    "last_seen": ("last_seen",),
}
ROOT = "(root)"
MAX_DAYS = 36_600  # a century: windows and day counts beyond it are mistakes
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_GLOB_CHARS = frozenset("*?[")
SEEN_MATRIX_CELLS = 64_000_000  # distinct counts by a users x values table up to this size

# Kinds of an extracted property value.
_MISSING, _TEXT, _NUMBER, _BOOL, _OTHER = 0, 1, 2, 3, 4


class RuleError(ValueError):
    """An invalid rule; ``path`` points at the offending node or key."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path or ROOT}: {message}")


# --------------------------------------------------------------------------------------------
# Small helpers


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, Real):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "list"
    return type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool | np.bool_)


def _is_number(value: Any) -> bool:
    return (isinstance(value, Real) and not isinstance(value, bool | np.bool_)
            and math.isfinite(float(value)))


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | bool) or _is_number(value)


def _is_list(value: Any) -> bool:
    return isinstance(value, list | tuple)


def is_glob(pattern: str) -> bool:
    """Whether an event name is a glob pattern rather than a literal name."""
    return any(c in _GLOB_CHARS for c in pattern)


def to_micros(value: datetime) -> int:
    """Microseconds since the epoch of a timezone-aware datetime."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware")
    return (value - EPOCH) // _ONE_US


def as_of_micros(as_of: int | datetime) -> int:
    """``as_of`` (µs since the epoch or a timezone-aware datetime) as an int of µs."""
    if isinstance(as_of, datetime):
        return int(to_micros(as_of))
    if _is_int(as_of):
        return int(as_of)
    raise TypeError(f"as_of must be µs since the epoch or an aware datetime, got {as_of!r}")


def parse_iso(value: Any, path: str) -> int:
    """An ISO 8601 date or datetime text as µs since the epoch (no offset = UTC)."""
    if not isinstance(value, str):
        raise RuleError(path, f"expected an ISO 8601 date or datetime text, got {_type_name(value)}")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise RuleError(path, f"not an ISO 8601 date or datetime: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(to_micros(moment))


def node_kind(node: Any, path: str = "") -> str:
    """The kind key of a rule node (``all``, ``event``, ...); RuleError when there is none."""
    if not isinstance(node, Mapping):
        raise RuleError(path, f"a rule node must be a JSON object, got {_type_name(node)}")
    kinds = [k for k in KINDS if k in node]
    if not kinds:
        raise RuleError(path, "a rule node needs one of: " + ", ".join(KINDS))
    if len(kinds) > 1:
        raise RuleError(path, "a rule node must have exactly one of "
                        + ", ".join(KINDS) + "; this one has " + ", ".join(kinds))
    return kinds[0]


def _node_key(node: Mapping[str, Any]) -> str:
    return json.dumps(node, sort_keys=True, default=str)


# --------------------------------------------------------------------------------------------
# Validation


def validate_rule(
    rule: Any,
    *,
    event_names: Collection[str] | None = None,
    attributes: Collection[str] | None = None,
    max_depth: int = 10,
    max_nodes: int = 200,
) -> None:
    """Check a rule tree's structure; raise RuleError pointing at the first bad node or key."""
    _Validator(event_names, attributes, max_depth, max_nodes).node(rule, "", 1)


class _Validator:
    def __init__(self, event_names: Collection[str] | None, attributes: Collection[str] | None,
                 max_depth: int, max_nodes: int) -> None:
        self.event_names = None if event_names is None else tuple(str(n) for n in event_names)
        self.known_events = None if event_names is None else set(self.event_names)
        self.attributes = None if attributes is None else {str(a) for a in attributes}
        self.max_depth = max_depth
        self.max_nodes = max_nodes
        self.count = 0

    def node(self, node: Any, path: str, depth: int) -> None:
        self.count += 1
        if self.count > self.max_nodes:
            raise RuleError(path, f"the rule has more than {self.max_nodes} nodes")
        if depth > self.max_depth:
            raise RuleError(path, f"the rule is nested deeper than {self.max_depth} levels")
        kind = node_kind(node, path)
        _known_keys(node, path, NODE_KEYS[kind], f" for a {kind} node")
        getattr(self, f"_{kind}")(node, path, depth)

    # Combinators --------------------------------------------------------------------------

    def _children(self, node: Mapping[str, Any], kind: str, path: str, depth: int) -> None:
        children = node[kind]
        if not _is_list(children):
            raise RuleError(_join(path, kind),
                            f"expected a list of rule nodes, got {_type_name(children)}")
        for i, child in enumerate(children):
            self.node(child, _join(path, f"{kind}[{i}]"), depth + 1)

    def _all(self, node: Mapping[str, Any], path: str, depth: int) -> None:
        self._children(node, "all", path, depth)

    def _any(self, node: Mapping[str, Any], path: str, depth: int) -> None:
        self._children(node, "any", path, depth)

    def _not(self, node: Mapping[str, Any], path: str, depth: int) -> None:
        self.node(node["not"], _join(path, "not"), depth + 1)

    # Leaves -------------------------------------------------------------------------------

    def _attribute(self, node: Mapping[str, Any], path: str, depth: int) -> None:
        name = node["attribute"]
        name_path = _join(path, "attribute")
        if not isinstance(name, str) or not name:
            raise RuleError(name_path, f"expected an attribute name, got {_type_name(name)}")
        if self.attributes is not None and name not in self.attributes:
            raise RuleError(name_path, f"unknown attribute {name!r}")
        op = self._op(node, path, ATTRIBUTE_OPS, "an attribute")
        value_path = _join(path, "value")
        value = node.get("value")
        if op in ("is_null", "not_null"):
            if value is not None:
                raise RuleError(value_path, f"{op} takes no value")
        elif "value" not in node:
            raise RuleError(value_path, f"{op} needs a value")
        elif op in ("eq", "ne", "in", "not_in", "contains"):
            _check_equality(op, value, value_path)
        elif op == "between":
            lo, hi = _need_pair(value, value_path)
            a, b = _orderable(lo, f"{value_path}[0]"), _orderable(hi, f"{value_path}[1]")
            if isinstance(lo, str) != isinstance(hi, str):
                raise RuleError(value_path, "between needs two numbers or two ISO dates")
            if a > b:
                raise RuleError(value_path, "the lower bound is greater than the upper bound")
        else:
            _orderable(value, value_path)

    def _event(self, node: Mapping[str, Any], path: str, depth: int) -> None:
        self._event_name(node["event"], _join(path, "event"))
        self._counts(node, path, "min_count", "max_count")
        self._window(node, path)
        self._where(node, path)

    def _distinct(self, node: Mapping[str, Any], path: str, depth: int) -> None:
        spec_path = _join(path, "distinct")
        spec = node["distinct"]
        if not isinstance(spec, Mapping):
            raise RuleError(spec_path, "expected an object like {\"event\": \"feature_*\"}, "
                            f"got {_type_name(spec)}")
        _known_keys(spec, spec_path, ("event", "property"))
        if "event" not in spec:
            raise RuleError(_join(spec_path, "event"), "missing the event name or pattern")
        self._event_name(spec["event"], _join(spec_path, "event"))
        if "property" in spec:
            prop = spec["property"]
            if not isinstance(prop, str) or not prop:
                raise RuleError(_join(spec_path, "property"),
                                f"expected a property name, got {_type_name(prop)}")
        self._counts(node, path, "min", "max")
        self._window(node, path)
        self._where(node, path)

    def _revenue(self, node: Mapping[str, Any], path: str, depth: int) -> None:
        spec = self._op_spec(node, "revenue", path)
        op = self._op(spec, _join(path, "revenue"), REVENUE_OPS, "revenue")
        value_path = _join(path, "revenue.value")
        value = spec.get("value")
        if op == "between":
            lo, hi = _need_pair(value, value_path)
            for i, bound in enumerate((lo, hi)):
                if not _is_number(bound):
                    raise RuleError(f"{value_path}[{i}]",
                                    f"expected a number, got {_type_name(bound)}")
            if lo > hi:
                raise RuleError(value_path, "the lower bound is greater than the upper bound")
        elif not _is_number(value):
            raise RuleError(value_path, f"expected a number, got {_type_name(value)}")
        self._window(node, path)

    def _first_seen(self, node: Mapping[str, Any], path: str, depth: int) -> None:
        self._seen(node, "first_seen", path)

    def _last_seen(self, node: Mapping[str, Any], path: str, depth: int) -> None:
        self._seen(node, "last_seen", path)

    def _seen(self, node: Mapping[str, Any], kind: str, path: str) -> None:
        spec = self._op_spec(node, kind, path)
        spec_path = _join(path, kind)
        op = self._op(spec, spec_path, SEEN_OPS, kind)
        value_path = _join(spec_path, "value")
        value = spec.get("value")
        if op in ("before", "after"):
            parse_iso(value, value_path)
        elif op == "between":
            _need_iso_range(value, value_path, "the end must be after the start")
        else:
            _need_days(value, value_path, "within_days needs")

    # Parts --------------------------------------------------------------------------------

    def _op_spec(self, node: Mapping[str, Any], kind: str, path: str) -> Mapping[str, Any]:
        spec = node[kind]
        spec_path = _join(path, kind)
        if not isinstance(spec, Mapping):
            raise RuleError(spec_path, f"expected an object with op and value, got "
                            f"{_type_name(spec)}")
        _known_keys(spec, spec_path, ("op", "value"))
        if "value" not in spec:
            raise RuleError(_join(spec_path, "value"), "missing value")
        return spec

    def _op(self, spec: Mapping[str, Any], path: str, ops: tuple[str, ...], what: str) -> str:
        op_path = _join(path, "op")
        if "op" not in spec:
            raise RuleError(op_path, "missing op")
        return _need_op(spec["op"], op_path, ops, what)

    def _event_name(self, name: Any, path: str) -> None:
        if not isinstance(name, str) or not name:
            raise RuleError(path, f"expected an event name or pattern, got {_type_name(name)}")
        if self.event_names is None or self.known_events is None:
            return
        if is_glob(name):
            if not any(fnmatch.fnmatchcase(n, name) for n in self.event_names):
                raise RuleError(path, f"the pattern {name!r} matches no event")
        elif name not in self.known_events:
            raise RuleError(path, f"unknown event {name!r}")

    def _counts(self, node: Mapping[str, Any], path: str, lo_key: str, hi_key: str) -> None:
        lo = node.get(lo_key, 1)
        hi = node.get(hi_key)
        if not _is_int(lo) or lo < 0:
            raise RuleError(_join(path, lo_key), f"expected a whole number >= 0, got {lo!r}")
        if hi is not None:
            if not _is_int(hi) or hi < 0:
                raise RuleError(_join(path, hi_key), f"expected a whole number >= 0 or null, "
                                f"got {hi!r}")
            if hi < lo:
                raise RuleError(_join(path, hi_key),
                                f"{hi_key} ({hi}) is less than {lo_key} ({lo})")

    def _window(self, node: Mapping[str, Any], path: str) -> None:
        if node.get("window") is None:
            return
        validate_window(node["window"], _join(path, "window"))

    def _where(self, node: Mapping[str, Any], path: str) -> None:
        where = node.get("where")
        if where is None:
            return
        where_path = _join(path, "where")
        if not _is_list(where):
            raise RuleError(where_path, f"expected a list of property filters, got "
                            f"{_type_name(where)}")
        for i, item in enumerate(where):
            _validate_filter(item, f"{where_path}[{i}]")


def validate_window(window: Any, path: str) -> None:
    """Check one WINDOW object; ``path`` is the window's own path."""
    if not isinstance(window, Mapping) or len(window) != 1:
        raise RuleError(path, "a window is an object with exactly one of: "
                        + ", ".join(WINDOW_KINDS))
    (kind, value), = window.items()
    kind_path = _join(path, str(kind))
    if kind == "from_signup_days":
        start, end = _need_pair(value, kind_path)
        for i, day in enumerate((start, end)):
            if not _is_int(day) or abs(day) > MAX_DAYS:
                raise RuleError(f"{kind_path}[{i}]", f"expected a whole number of days "
                                f"(at most {MAX_DAYS}), got {day!r}")
        if end <= start:
            raise RuleError(kind_path, f"the window end ({end}) must be after its start ({start})")
    elif kind == "between":
        _need_iso_range(value, kind_path, "the window end must be after its start")
    elif kind == "last_days":
        _need_days(value, kind_path, "expected")
    else:
        raise RuleError(kind_path, f"unknown window {str(kind)!r} (one of: "
                        + ", ".join(WINDOW_KINDS) + ")")


def _validate_filter(item: Any, path: str) -> None:
    if not isinstance(item, Mapping):
        raise RuleError(path, f"a property filter is an object, got {_type_name(item)}")
    _known_keys(item, path, ("property", "op", "value"))
    prop = item.get("property")
    if not isinstance(prop, str) or not prop:
        raise RuleError(_join(path, "property"), f"expected a property name, got "
                        f"{_type_name(prop)}")
    op = _need_op(item.get("op"), _join(path, "op"), PROPERTY_OPS, "a property filter")
    value_path = _join(path, "value")
    value = item.get("value")
    if op == "exists":
        if value is not None and not isinstance(value, bool):
            raise RuleError(value_path, f"exists takes true or false, got {value!r}")
    elif op in ("eq", "ne", "in", "contains"):
        _check_equality(op, value, value_path)
    elif not _is_number(value):
        raise RuleError(value_path, f"{op} needs a number, got {_type_name(value)}")


def _known_keys(spec: Mapping[Any, Any], path: str, allowed: tuple[str, ...],
                what: str = "") -> None:
    for key in spec:
        if key not in allowed:
            raise RuleError(_join(path, str(key)), f"unknown key {str(key)!r}{what} "
                            f"(allowed: {', '.join(allowed)})")


def _need_op(op: Any, path: str, ops: tuple[str, ...], what: str) -> str:
    if not isinstance(op, str) or op not in ops:
        raise RuleError(path, f"unknown op {op!r} for {what} (one of: {', '.join(ops)})")
    return op


def _check_equality(op: str, value: Any, path: str) -> None:
    """The value of an eq, ne, in, not_in or contains test (attributes and property filters)."""
    if op in ("eq", "ne"):
        _need_scalar(value, path)
    elif op == "contains":
        if not isinstance(value, str) or not value:
            raise RuleError(path, "contains needs a non-empty text")
    else:
        if not _is_list(value):
            raise RuleError(path, f"{op} needs a list of values, got {_type_name(value)}")
        for i, item in enumerate(value):
            _need_scalar(item, f"{path}[{i}]")


def _need_scalar(value: Any, path: str) -> None:
    if not _is_scalar(value):
        raise RuleError(path, f"expected text, a number or a boolean, got {_type_name(value)}")


def _need_pair(value: Any, path: str) -> tuple[Any, Any]:
    if not _is_list(value) or len(value) != 2:
        raise RuleError(path, f"expected a list of two values [start, end], got {value!r}")
    return value[0], value[1]


def _need_iso_range(value: Any, path: str, reversed_message: str) -> None:
    """``[ISO, ISO]`` with the end after the start."""
    lo, hi = _need_pair(value, path)
    start_us = parse_iso(lo, f"{path}[0]")
    if parse_iso(hi, f"{path}[1]") <= start_us:
        raise RuleError(path, reversed_message)


def _need_days(value: Any, path: str, lead: str) -> None:
    """A whole number of days from 1 to MAX_DAYS; the message starts with ``lead``."""
    if not _is_int(value) or not 0 < value <= MAX_DAYS:
        raise RuleError(path, f"{lead} a whole number of days from 1 to {MAX_DAYS}, "
                        f"got {value!r}")


def _orderable(value: Any, path: str) -> float:
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        return float(parse_iso(value, path))
    raise RuleError(path, f"expected a number or an ISO 8601 date, got {_type_name(value)}")


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


# --------------------------------------------------------------------------------------------
# Description


def describe_rule(rule: Any) -> str:
    """Plain-English text of a rule, e.g. "report_created at least 2 times ... AND plan is pro"."""
    validate_rule(rule)
    return _describe(rule, top=True)


def _describe(node: Mapping[str, Any], top: bool) -> str:
    kind = node_kind(node)
    if kind in ("all", "any"):
        children = node[kind]
        if not children:
            return "everyone" if kind == "all" else "no one"
        parts = [_describe(child, top=False) for child in children]
        if len(parts) == 1:
            return parts[0]
        text = (" AND " if kind == "all" else " OR ").join(parts)
        return text if top else f"({text})"
    if kind == "not":
        return f"NOT ({_describe(node['not'], top=True)})"
    if kind == "attribute":
        return _describe_attribute(node)
    if kind == "event":
        text = (f"{_describe_events(node['event'])} "
                f"{_describe_range(node.get('min_count', 1), node.get('max_count'), 'time')}")
        return text + _describe_where(node.get("where")) + _describe_window(node.get("window"))
    if kind == "distinct":
        spec = node["distinct"]
        amount = _describe_range(node.get("min", 1), node.get("max"), None)
        if "property" in spec:
            text = (f"{amount} distinct values of {spec['property']} on "
                    f"{_describe_events(spec['event'])}")
        elif is_glob(spec["event"]):
            text = f"{amount} distinct events matching {spec['event']}"
        else:
            text = f"{amount} distinct events named {spec['event']}"
        return text + _describe_where(node.get("where")) + _describe_window(node.get("window"))
    if kind == "revenue":
        spec = node["revenue"]
        return f"revenue {_describe_compare(spec['op'], spec['value'])}" + _describe_window(
            node.get("window"))
    spec = node[kind]
    label = "first seen" if kind == "first_seen" else "last seen"
    return f"{label} {_SEEN_TEXT[spec['op']](spec['value'])}"


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _quote(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else _fmt(value)


def _plural(n: Any, word: str) -> str:
    return f"{_fmt(n)} {word}" + ("" if n == 1 else "s")


def _last_days(n: Any) -> str:
    return f"in the last {_plural(n, 'day')}"


def _fmt_all(values: list[Any]) -> str:
    return ", ".join(_fmt(v) for v in values)


_SYMBOLS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "=", "ne": "!="}
# Per op, the text after an attribute's name (its ordering ops and between: _describe_compare)
# and after "first seen" / "last seen".
_ATTRIBUTE_TEXT: dict[str, Callable[[Any], str]] = {
    "eq": lambda value: f"is {_fmt(value)}",
    "ne": lambda value: f"is not {_fmt(value)}",
    "in": lambda values: f"is one of {_fmt_all(values)}",
    "not_in": lambda values: f"is none of {_fmt_all(values)}",
    "is_null": lambda _: "is empty",
    "not_null": lambda _: "is set",
    "contains": lambda value: f"contains {_quote(value)}",
}
_SEEN_TEXT: dict[str, Callable[[Any], str]] = {
    "before": lambda value: f"before {value}",
    "after": lambda value: f"on or after {value}",
    "between": lambda value: f"between {value[0]} and {value[1]}",
    "within_days": _last_days,
}


def _describe_compare(op: str, value: Any) -> str:
    if op == "between":
        return f"between {_fmt(value[0])} and {_fmt(value[1])}"
    return f"{_SYMBOLS[op]} {_fmt(value)}"


def _describe_attribute(node: Mapping[str, Any]) -> str:
    name, op, value = node["attribute"], node["op"], node.get("value")
    text = _ATTRIBUTE_TEXT[op](value) if op in _ATTRIBUTE_TEXT else _describe_compare(op, value)
    return f"{name} {text}"


def _describe_events(pattern: str) -> str:
    return f"any event matching {pattern}" if is_glob(pattern) else pattern


def _describe_range(lo: int, hi: int | None, unit: str | None) -> str:
    def amount(n: int) -> str:
        return _plural(n, unit) if unit else str(n)

    if hi is None:
        return f"at least {amount(lo)}"
    if lo == hi:
        return f"exactly {amount(lo)}"
    if lo == 0:
        return f"at most {amount(hi)}"
    return f"between {lo} and {amount(hi)}"


def _describe_where(filters: list[Mapping[str, Any]] | None) -> str:
    if not filters:
        return ""
    parts = []
    for f in filters:
        prop, op, value = f["property"], f["op"], f.get("value")
        if op == "exists":
            parts.append(f"{prop} set" if value is None or value else f"no {prop}")
        elif op == "in":
            parts.append(f"{prop} in ({', '.join(_quote(v) for v in value)})")
        elif op == "contains":
            parts.append(f"{prop} contains {_quote(value)}")
        else:
            parts.append(f"{prop} {_SYMBOLS[op]} {_quote(value)}")
    return " with " + " and ".join(parts)


def _describe_window(window: Mapping[str, Any] | None) -> str:
    if not window:
        return ""
    (kind, value), = window.items()
    if kind == "from_signup_days":
        start, end = value
        if start == 0:
            return f" in the first {_plural(end, 'day')} after signup"
        return f" from day {start} to day {end} after signup"
    if kind == "between":
        return f" from {value[0]} until {value[1]}"
    return f" {_last_days(value)}"
