"""Rules in words, for pages and lists."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .common import is_glob, node_kind
from .validate import validate_rule

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
