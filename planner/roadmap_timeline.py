"""Lay a roadmap out as a timeline: quarters by team swimlanes, and now / next / later. Pure:
plain items in, plain layout out (no Django).

Each item sits in the lane of every team that has effort on it (items without effort in a
"no team" lane), from its start quarter over its duration; items without a quarter sit in an
"unscheduled" column at the end. Cards that overlap in a lane go on separate rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

QUARTER = re.compile(r"^(\d{4})Q([1-4])$")
NO_TEAM = "no team"
UNSCHEDULED = "unscheduled"


@dataclass(frozen=True)
class TimelineItem:
    id: int
    title: str
    roadmap: str
    state: str
    start_quarter: str = ""
    duration: int = 1
    teams: tuple[str, ...] = ()
    value: float = 0.0
    cost: float = 0.0
    evidence: str = ""
    depends_on: tuple[str, ...] = ()  # titles of the items it depends on
    change: str = ""  # added | moved | value_changed since the version before
    state_label: str = ""  # how pages name the state ("approved"); the state when empty
    extra: dict[str, Any] = field(default_factory=dict)


def quarter_index(label: str) -> int | None:
    match = QUARTER.match(label or "")
    return int(match[1]) * 4 + int(match[2]) - 1 if match else None


def quarter_label(index: int) -> str:
    return f"{index // 4}Q{index % 4 + 1}"


def quarter_of(day: date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def layout(items: Iterable[TimelineItem]) -> dict[str, Any]:
    """Columns (quarters, then "unscheduled" if needed) and lanes of placed cards: each card
    has ``col`` (1-based among the columns), ``span`` and ``row`` (1-based within its lane)."""
    items = list(items)
    starts = [quarter_index(i.start_quarter) for i in items]
    scheduled = [(s, i) for s, i in zip(starts, items, strict=True) if s is not None]
    columns: list[str] = []
    first = 0
    if scheduled:
        first = min(s for s, _ in scheduled)
        last = max(s + max(i.duration, 1) - 1 for s, i in scheduled)
        columns = [quarter_label(k) for k in range(first, last + 1)]
    if len(scheduled) < len(items):
        columns.append(UNSCHEDULED)
    lanes: dict[str, list[dict[str, Any]]] = {}
    for start, item in zip(starts, items, strict=True):
        if start is None:
            col, span = len(columns), 1
        else:
            col, span = start - first + 1, max(item.duration, 1)
        for team in item.teams or (NO_TEAM,):
            lanes.setdefault(team, []).append({"item": item, "col": col, "span": span})
    out = []
    for team in sorted(lanes, key=lambda t: (t == NO_TEAM, t)):
        rows: list[list[tuple[int, int]]] = []
        cards = sorted(lanes[team], key=lambda c: (c["col"], -c["span"], c["item"].title))
        for card in cards:
            end = card["col"] + card["span"]
            for n, taken in enumerate(rows):
                if all(end <= a or card["col"] >= b for a, b in taken):
                    taken.append((card["col"], end))
                    card["row"] = n + 1
                    break
            else:
                rows.append([(card["col"], end)])
                card["row"] = len(rows)
        out.append({"team": team, "rows": len(rows), "cards": cards})
    return {"columns": columns, "lanes": out}


def horizons(items: Iterable[TimelineItem], today: date) -> dict[str, Any]:
    """Now / next / later from an anchor quarter: today's quarter, or the plan's first
    quarter when the plan starts later. Now: running in the anchor quarter; next: starting
    in the quarter after; later: starting after that, or unscheduled; earlier: ended before."""
    items = list(items)
    starts = [quarter_index(i.start_quarter) for i in items]
    known = [s for s in starts if s is not None]
    today_index = quarter_index(quarter_of(today))
    assert today_index is not None
    anchor = max(today_index, min(known)) if known else today_index
    buckets: dict[str, list[TimelineItem]] = {"now": [], "next": [], "later": [],
                                              "earlier": []}
    for start, item in zip(starts, items, strict=True):
        if start is None or start > anchor + 1:
            buckets["later"].append(item)
        elif start == anchor + 1:
            buckets["next"].append(item)
        elif start + max(item.duration, 1) - 1 >= anchor:
            buckets["now"].append(item)
        else:
            buckets["earlier"].append(item)
    for bucket in buckets.values():
        bucket.sort(key=lambda i: (quarter_index(i.start_quarter) or 10**9, i.title))
    return {"anchor": quarter_label(anchor), "next": quarter_label(anchor + 1), **{
        f"{k}_items": v for k, v in buckets.items()}}
