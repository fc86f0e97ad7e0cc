"""Compare two plans (a roadmap version, or a run against the current version): what was added,
dropped, moved to another quarter or changed value, each with its reasons. Pure: plain
dataclasses in, plain dataclasses out (no Django).

Reasons are derived from the two plans and their contexts, never guessed:

* **evidence**: the value moved and whether the evidence level behind it changed;
* **budget**: the budget differs between the two plans;
* **what binds**, per item, in the plan it is missing from or forced into:
  - the budget binds a left-out item when its cost is more than the budget left over;
  - a roadmap's share ceiling binds when adding the item would take that roadmap's share of
    spend over its maximum;
  - a team's capacity binds when the item needs that team and the team is at capacity (in any
    quarter, when the plan is scheduled);
  - a roadmap's share floor forced an item in when, without it, that roadmap's share of spend
    would fall under its minimum;
* **council**: the item's state in the earlier plan (approved items dropped, rejected ones).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# A value moves when it differs by more than this share of the larger magnitude (or 0.5 units).
VALUE_TOLERANCE = 0.005
_TOL = 1e-9
KINDS = ("added", "dropped", "moved", "value_changed")
_EVIDENCE = re.compile(r"evidence level '([a-z_]+)'")


@dataclass(frozen=True)
class PlanItem:
    """One chosen item of a plan."""

    id: str
    title: str
    roadmap: str
    value: float
    cost: float
    start_quarter: str = ""
    teams: tuple[str, ...] = ()
    evidence: str = ""
    state: str = ""


@dataclass(frozen=True)
class PlanContext:
    """What the plan was made under: budget, spend by roadmap, share bounds and capacity use
    (``capacity`` maps "team" or "team|quarter" to (used, capacity))."""

    label: str
    budget: float | None = None
    roadmap_spend: Mapping[str, float] = field(default_factory=dict)
    shares: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    capacity: Mapping[str, tuple[float, float | None]] = field(default_factory=dict)

    @property
    def spend(self) -> float:
        return math.fsum(self.roadmap_spend.values())


@dataclass(frozen=True)
class Change:
    """One difference: ``kind`` is added | dropped | moved | value_changed."""

    id: str
    title: str
    kind: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"investment": self.id, "title": self.title, "kind": self.kind,
                "before": self.before, "after": self.after, "reasons": list(self.reasons)}


def evidence_level(value_sources: Mapping[str, Any] | None) -> str:
    """The evidence level behind an investment's value, read from its value sources:
    assumption | observational | experiment | replicated, or "" when none is recorded."""
    if not isinstance(value_sources, Mapping):
        return ""
    figure = value_sources.get("probability_of_success")
    source = str(figure.get("source", "")) if isinstance(figure, Mapping) else ""
    match = _EVIDENCE.search(source)
    if match:
        return match[1]
    return "assumption" if "assumption" in source else ""


def _money(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f}"


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def _summary(item: PlanItem) -> dict[str, Any]:
    return {"roadmap": item.roadmap, "value": item.value, "cost": item.cost,
            "start_quarter": item.start_quarter, "evidence": item.evidence,
            "state": item.state}


def _value_moved(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) > max(0.5, tolerance * max(abs(a), abs(b)))


def _budget_reason(base: PlanContext, new: PlanContext) -> list[str]:
    if base.budget is None or new.budget is None or abs(base.budget - new.budget) <= _TOL:
        return []
    return [f"budget changed: {_money(base.budget)} → {_money(new.budget)}"]


def _evidence_reasons(old: PlanItem, new: PlanItem) -> list[str]:
    reasons = []
    if old.evidence != new.evidence and (old.evidence or new.evidence):
        reasons.append(f"evidence changed: {old.evidence or 'none'} → {new.evidence or 'none'}")
    return reasons


def _binds_out(item: PlanItem, ctx: PlanContext) -> list[str]:
    """What keeps ``item`` out of the plan ``ctx`` describes."""
    reasons = []
    spend = ctx.spend
    if ctx.budget is not None:
        left = ctx.budget - spend
        if item.cost > left + _TOL:
            reasons.append(f"the budget binds: it costs {_money(item.cost)} and "
                           f"{_money(max(left, 0.0))} of {_money(ctx.budget)} is left")
    if item.roadmap in ctx.shares:
        hi = ctx.shares[item.roadmap][1]
        road = ctx.roadmap_spend.get(item.roadmap, 0.0)
        share = (road + item.cost) / (spend + item.cost) if spend + item.cost > 0 else 0.0
        if share > hi + _TOL:
            reasons.append(f"the {item.roadmap} share ceiling {_pct(hi)} binds: with it, "
                           f"{item.roadmap} would be {_pct(share)} of spend")
    for team in item.teams:
        full = sorted(key for key, (used, cap) in ctx.capacity.items()
                      if key.split("|")[0] == team and cap is not None and used >= cap - 1e-6)
        if full:
            reasons.append(f"team {team}'s capacity binds ({', '.join(full)} at capacity)")
    return reasons


def _binds_in(item: PlanItem, ctx: PlanContext) -> list[str]:
    """A share floor that forced ``item`` into the plan ``ctx`` describes."""
    if item.roadmap not in ctx.shares:
        return []
    lo = ctx.shares[item.roadmap][0]
    spend = ctx.spend - item.cost
    road = ctx.roadmap_spend.get(item.roadmap, 0.0) - item.cost
    if spend <= _TOL:
        return []  # without it nothing is spent: no floor applies to an empty plan
    share = road / spend
    if lo > _TOL and share < lo - _TOL:
        return [f"the {item.roadmap} share floor {_pct(lo)} binds: without it, {item.roadmap} "
                f"would be {_pct(share)} of spend"]
    return []


def diff_plans(base: Iterable[PlanItem], new: Iterable[PlanItem], base_ctx: PlanContext,
               new_ctx: PlanContext, *, tolerance: float = VALUE_TOLERANCE) -> list[Change]:
    """Every change from ``base`` to ``new``: added, dropped, moved (start quarter), value
    changed, each with its reasons; ordered by kind, then title, then id."""
    before = {i.id: i for i in base}
    after = {i.id: i for i in new}
    budget = _budget_reason(base_ctx, new_ctx)
    changes: list[Change] = []
    for item_id in after.keys() - before.keys():
        item = after[item_id]
        reasons = [*budget, *_binds_in(item, new_ctx)]
        if not reasons:
            reasons.append(f"new in {new_ctx.label}: chosen for its value "
                           f"{_money(item.value)} at cost {_money(item.cost)}")
        changes.append(Change(item_id, item.title, "added", None, _summary(item),
                              tuple(reasons)))
    for item_id in before.keys() - after.keys():
        item = before[item_id]
        reasons = [*budget, *_binds_out(item, new_ctx)]
        if item.state in ("reject", "defer"):
            reasons.append(f"the council's state in {base_ctx.label}: {item.state}")
        elif item.state == "approve":
            reasons.append(f"it was approved in {base_ctx.label}: revoked, or approved items "
                           "were not kept")
        if not reasons:
            reasons.append(f"left out of {new_ctx.label}: other items give more value within "
                           "the same constraints")
        changes.append(Change(item_id, item.title, "dropped", _summary(item), None,
                              tuple(reasons)))
    for item_id in before.keys() & after.keys():
        old, cur = before[item_id], after[item_id]
        if old.start_quarter != cur.start_quarter:
            reasons = [f"start moved: {old.start_quarter or 'unscheduled'} → "
                       f"{cur.start_quarter or 'unscheduled'}"]
            full = [r for r in _binds_out(PlanItem(cur.id, cur.title, cur.roadmap, cur.value,
                                                   0.0, teams=cur.teams), new_ctx)
                    if "capacity" in r]
            reasons += full
            changes.append(Change(item_id, cur.title, "moved", _summary(old), _summary(cur),
                                  tuple(reasons)))
        if _value_moved(old.value, cur.value, tolerance):
            reasons = [f"value changed: {_money(old.value)} → {_money(cur.value)}",
                       *_evidence_reasons(old, cur)]
            if len(reasons) == 1:
                reasons.append("re-estimated from new data (same evidence level)")
            changes.append(Change(item_id, cur.title, "value_changed", _summary(old),
                                  _summary(cur), tuple(reasons)))
    changes.sort(key=lambda c: (KINDS.index(c.kind), c.title, c.id))
    return changes
