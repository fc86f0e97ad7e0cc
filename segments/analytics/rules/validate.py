"""Rule validation: every node checked, errors point at the node (``RuleError.path``)."""

from __future__ import annotations

import fnmatch
from collections.abc import Collection, Mapping
from typing import Any

from .common import (
    ATTRIBUTE_OPS,
    MAX_DAYS,
    NODE_KEYS,
    PROPERTY_OPS,
    REVENUE_OPS,
    SEEN_OPS,
    WINDOW_KINDS,
    RuleError,
    _is_int,
    _is_list,
    _is_number,
    _is_scalar,
    _join,
    _type_name,
    is_glob,
    node_kind,
    parse_iso,
)

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
