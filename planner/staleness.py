"""Is a run stale? Compare the inputs a run recorded with the inputs as they are now (pure).

Both sides have the shape of ``OptimizationRun.inputs``: the scenario's fields at the top
level, ``items`` (the optimizer's per-item figures: value, interval, cost, effort, roadmap,
dependencies...) and ``basis`` (per item, what the figures rest on: status, evidence level,
the segment snapshots, hypotheses and experiments behind the value, with ids and times).
Fields are compared generically, so a field the optimizer's items gain later is compared too.
A run recorded before ``basis`` existed cannot be compared: ``compare`` returns None.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

BASIS_VERSION = 1
# Statuses the optimizer leaves out (planner.services.scenario_problem): an item moving into
# or out of them leaves or joins the plan. Other status moves (a decision approving an item of
# this very run) do not change what the optimizer was given.
OUT_OF_PLAN = frozenset({"rejected", "done"})
# Run-level keys that are not scenario fields (items, their basis) or follow from item fields
# (exclusion groups are compared per item; ``information``, what the value of information reads,
# follows from the items' hypotheses and experiments, compared per item through the basis).
NOT_SCENARIO = frozenset({"items", "basis", "exclusions", "information"})
# Per-item keys shown first, in this order; any other key follows alphabetically.
ITEM_ORDER = ("status", "value", "value_low", "value_high", "cost", "effort", "roadmap",
              "evidence", "snapshots", "hypotheses", "experiments", "duration", "depends_on",
              "segments", "exclusion_group", "must_do", "must_not")
NOT_COMPARED = frozenset({"id", "title", "kept_approved"})
# "keep_approved" (a scenario option) makes every item approved on the current roadmap a must-do
# of later runs: a council approval of a run's own items is not a change of what that run was
# given, so must-do is compared only where neither side was kept by an approval.
KEPT = "kept_approved"


@dataclass(frozen=True)
class Change:
    """One difference: ``kind`` is item | added | deleted | scenario."""

    kind: str
    field: str
    then: Any
    now: Any
    item_id: str | None = None
    title: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def then_text(self) -> str:
        return describe(self.then)

    @property
    def now_text(self) -> str:
        return describe(self.now)


def same(a: Any, b: Any) -> bool:
    """Equal as recorded inputs: numbers within a relative 1e-9 (a JSON round trip, a value
    recomputed from the same sources), mappings and lists element by element."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b and type(a) is type(b)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def describe(value: Any) -> str:
    """A short text of a recorded value for the banner: 22,933.4; none; a snapshot's id."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.4g}"
    if isinstance(value, Mapping):
        if "snapshot" in value:
            return f"snapshot #{value['snapshot']} of segment #{value.get('segment')} " \
                   f"({str(value.get('computed_at', ''))[:16]})"
        if "hypothesis" in value:
            return f"hypothesis #{value['hypothesis']} {value.get('status', '')} " \
                   f"(edited {str(value.get('updated_at', ''))[:16]})"
        if "experiment" in value:
            analyzed = str(value.get("analyzed_at") or "not analyzed")[:16]
            return f"experiment #{value['experiment']} {value.get('status', '')} ({analyzed})"
        return ", ".join(f"{k}: {describe(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        return "; ".join(describe(v) for v in value) or "none"
    return str(value)


def _items(inputs: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per item id: its optimizer figures merged with its basis."""
    basis = (inputs.get("basis") or {}).get("items") or {}
    merged: dict[str, dict[str, Any]] = {}
    for item in inputs.get("items") or []:
        merged[str(item["id"])] = {**item, **(basis.get(str(item["id"])) or {})}
    for key, extra in basis.items():  # out-of-plan items recorded with their basis only
        merged.setdefault(str(key), dict(extra))
    return merged


def _field_order(keys: set[str]) -> list[str]:
    known = [k for k in ITEM_ORDER if k in keys]
    return known + sorted(keys - set(ITEM_ORDER) - NOT_COMPARED)


def recorded(inputs: Mapping[str, Any]) -> bool:
    """Whether a run's inputs carry the record staleness needs."""
    return (inputs.get("basis") or {}).get("version") == BASIS_VERSION


def compare(then: Mapping[str, Any], now: Mapping[str, Any]) -> list[Change] | None:
    """Every change from ``then`` (a run's inputs) to ``now`` (the same shape, built from the
    database today): scenario fields, then items in id order (added, deleted, or field by field);
    None when ``then`` was recorded without its basis (cannot tell)."""
    if not recorded(then):
        return None
    changes: list[Change] = []
    for key in sorted((set(then) | set(now)) - NOT_SCENARIO):
        if not same(then.get(key), now.get(key)):
            changes.append(Change("scenario", key, then.get(key), now.get(key)))
    old, new = _items(then), _items(now)
    for key in sorted(set(old) | set(new), key=lambda k: (len(k), k)):
        before, after = old.get(key), new.get(key)
        if before is None:
            if after is not None and after.get("status") not in OUT_OF_PLAN:
                changes.append(Change("added", "item", None, after.get("value"), key,
                                      str(after.get("title", ""))))
            continue
        title = str(before.get("title", ""))
        if after is None:
            changes.append(Change("deleted", "item", before.get("value"), None, key, title))
            continue
        was_out = before.get("status") in OUT_OF_PLAN
        is_out = after.get("status") in OUT_OF_PLAN
        if was_out and is_out:
            continue  # left out then and now: nothing the optimizer saw
        if was_out != is_out:
            changes.append(Change("item", "status", before.get("status"), after.get("status"),
                                  key, title))
            continue  # joined or left the plan: its other figures were not (or are no longer) used
        for field in _field_order(set(before) | set(after)):
            if field == "status":
                continue  # within the plan either way (see OUT_OF_PLAN)
            if field == "must_do" and (before.get(KEPT) or after.get(KEPT)):
                continue  # forced in by the council's approval (see KEPT)
            if not same(before.get(field), after.get(field)):
                changes.append(Change("item", field, before.get(field), after.get(field), key,
                                      title))
    return changes
