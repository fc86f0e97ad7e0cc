"""Turn a chosen set (and schedule) into the numbers a Plan reports, and check feasibility."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from .types import Problem

_TOL = 1e-6


def roadmap_summary(problem: Problem, chosen: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Spend, value, share of chosen spend and chosen items for every roadmap."""
    chosen_set = set(chosen)
    roadmaps = list(dict.fromkeys([item.roadmap for item in problem.items]
                                  + list(problem.shares)))
    spend: dict[str, float] = defaultdict(float)
    value: dict[str, float] = defaultdict(float)
    members: dict[str, list[str]] = defaultdict(list)
    for item in problem.items:
        if item.id in chosen_set:
            spend[item.roadmap] += item.cost
            value[item.roadmap] += item.value
            members[item.roadmap].append(item.id)
    total = math.fsum(spend.values())
    summary = {}
    for roadmap in roadmaps:
        lo, hi = problem.shares.get(roadmap, (0.0, 1.0))
        summary[roadmap] = {
            "spend": round(spend[roadmap], 9),
            "value": round(value[roadmap], 9),
            "share": spend[roadmap] / total if total > 0 else 0.0,
            "share_bounds": [lo, hi],
            "items": members[roadmap],
        }
    return summary


def capacity_summary(problem: Problem, chosen: Iterable[str],
                     starts: Mapping[str, int] | None = None) -> dict[Any, dict[str, Any]]:
    """Effort used against capacity: per team (summed over quarters) or per (team, quarter).

    Without a schedule an item's effort counts against its team's total over all quarters; with
    one, each quarter offset's effort (``Item.profile``) counts against the quarter it falls in.
    Teams without capacity report None.
    """
    by_id = problem.by_id
    constrained = set(problem.teams)
    scheduled = starts is not None and problem.schedule
    use: dict[Any, float] = defaultdict(float)
    for item_id in chosen:
        item = by_id[item_id]
        for team, effort in item.effort.items():
            if scheduled and team in constrained:
                begin = starts[item_id]  # type: ignore[index]
                for k, amount in enumerate(item.profile[team]):
                    if amount > 0:
                        use[(team, problem.quarters[begin + k])] += amount
            else:
                use[team] += effort
    summary: dict[Any, dict[str, Any]] = {}
    if scheduled:
        for team in problem.teams:
            for quarter in problem.quarters:
                cap = problem.capacity.get((team, quarter), 0.0)
                summary[(team, quarter)] = {"used": round(use.get((team, quarter), 0.0), 9),
                                            "capacity": cap}
    else:
        for team in problem.teams:
            cap = math.fsum(problem.capacity.get((team, q), 0.0) for q in problem.quarters)
            summary[team] = {"used": round(use.get(team, 0.0), 9), "capacity": cap}
    for key, used in use.items():
        if key not in summary and not isinstance(key, tuple):
            summary[key] = {"used": round(used, 9), "capacity": None}
    return summary


def violations(problem: Problem, chosen: Iterable[str],
               starts: Mapping[str, int] | None = None) -> list[str]:
    """Every constraint a chosen set (and schedule) breaks, in words; [] when feasible."""
    chosen_set = set(chosen)
    by_id = problem.by_id
    problems: list[str] = []
    spend = math.fsum(by_id[i].cost for i in chosen_set)
    if spend > problem.budget * (1 + _TOL) + _TOL:
        problems.append(f"spend {spend:g} exceeds the budget {problem.budget:g}")
    summary = roadmap_summary(problem, chosen_set)
    for roadmap, (lo, hi) in problem.shares.items():
        own = summary[roadmap]["spend"]
        if own < lo * spend - _TOL * max(1.0, spend):
            problems.append(f"{roadmap} has {own / spend:.1%} of spend, below its minimum "
                            f"{lo:.0%}")
        if own > hi * spend + _TOL * max(1.0, spend):
            problems.append(f"{roadmap} has {own / spend:.1%} of spend, above its maximum "
                            f"{hi:.0%}")
    if problem.schedule:
        if starts is None or set(starts) != chosen_set:
            problems.append("not every chosen item has a start quarter")
            starts = None
        else:
            for item_id, begin in starts.items():
                if begin < 0 or begin + by_id[item_id].duration > len(problem.quarters):
                    problems.append(f"{item_id} does not finish within the horizon")
    for key, row in capacity_summary(problem, chosen_set, starts).items():
        cap = row["capacity"]
        if cap is not None and row["used"] > cap * (1 + _TOL) + _TOL:
            where = "|".join(key) if isinstance(key, tuple) else key
            problems.append(f"capacity {where}: uses {row['used']:g} of {cap:g}")
    for item_id in sorted(chosen_set):
        item = by_id[item_id]
        if item.must_not:
            problems.append(f"{item_id} is must-not but chosen")
        for prereq in item.depends_on:
            if prereq not in chosen_set:
                problems.append(f"{item_id} is chosen without its prerequisite {prereq}")
            elif problem.schedule and starts is not None and \
                    starts[item_id] < starts[prereq] + by_id[prereq].duration:
                problems.append(f"{item_id} starts before its prerequisite {prereq} ends")
    for item in problem.items:
        if item.must_do and item.id not in chosen_set:
            problems.append(f"must-do item {item.id} is not chosen")
    for group in problem.exclusions:
        picked = [i for i in group if i in chosen_set]
        if len(picked) > 1:
            problems.append(f"exclusion group broken: {', '.join(picked)}")
    for segment, count in problem.min_coverage.items():
        have = sum(1 for i in chosen_set if segment in by_id[i].segments)
        if have < count:
            problems.append(f"segment {segment} covered by {have} chosen items, needs {count}")
    return problems
