"""Per-step event property filters for funnels. Pure (no Django).

A filter ``{key, op, value}`` keeps the events of a step whose properties (the event's JSON
object) hold ``key`` with a value that passes ``op``:

* ``eq``: equal to ``value``; ``neq``: present and not equal (an event without the property
  never passes, as in segment rules); ``in``: equal to one of ``value`` (a list);
  ``contains``: the value's text holds ``value`` (case-sensitive).
* **Equal** compares texts: a property value and the filter value are equal when their texts
  are (a text as itself, ``true`` / ``false``, a whole number without a decimal point, other
  numbers as Python prints a float, objects and lists as sorted JSON), so ``"3"`` from a form
  matches the number 3 and ``"true"`` the boolean.

Each distinct properties text is parsed once per filter, not once per event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from events.frame import UserEvents

OPS = ("eq", "neq", "in", "contains")


def as_text(value: Any) -> str | None:
    """The text a property value is compared by (None for a missing value or JSON null)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class StepFilter:
    """One property condition on a step's events."""

    key: str
    op: str
    value: Any

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"filter op must be one of {', '.join(OPS)}")
        if self.op == "in" and not isinstance(self.value, list | tuple):
            raise ValueError("an 'in' filter needs a list of values")

    @classmethod
    def of(cls, spec: Mapping[str, Any]) -> StepFilter:
        value = spec.get("value")
        return cls(str(spec["key"]), str(spec["op"]),
                   tuple(value) if isinstance(value, list) else value)

    def to_dict(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"key": self.key, "op": self.op, "value": value}

    @property
    def display(self) -> str:
        shown = {"eq": "=", "neq": "≠", "in": "in", "contains": "contains"}[self.op]
        value = ", ".join(str(as_text(v)) for v in self.value) if self.op == "in" \
            else as_text(self.value)
        return f"{self.key} {shown} {value}"

    def passes(self, properties: Any) -> bool:
        """Whether one event's properties (a parsed JSON value, or None) pass."""
        if not isinstance(properties, dict) or self.key not in properties:
            return False
        text = as_text(properties[self.key])
        if text is None:
            return False
        if self.op == "eq":
            return text == as_text(self.value)
        if self.op == "neq":
            return text != as_text(self.value)
        if self.op == "in":
            return text in {as_text(v) for v in self.value}
        return str(self.value) in text


def _parse(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def filter_positions(ue: UserEvents, pos: np.ndarray, step_filter: StepFilter) -> np.ndarray:
    """The positions of ``pos`` whose event properties pass ``step_filter``."""
    if len(pos) == 0:
        return pos
    if ue.properties is None:
        raise ValueError("event properties are not loaded: a step filter needs them")
    codes, texts = ue.property_table()
    used = np.unique(codes[pos])
    ok = np.zeros(len(texts), dtype=bool)
    for c in used.tolist():  # once per distinct properties text
        ok[c] = step_filter.passes(_parse(texts[c]))
    return pos[ok[codes[pos]]]
