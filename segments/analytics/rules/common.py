"""Rule vocabulary, the error type and small helpers shared by validation, evaluation and description."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from numbers import Integral, Real
from typing import Any

import numpy as np

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
