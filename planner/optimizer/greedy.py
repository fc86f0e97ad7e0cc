"""The greedy value/cost baseline (the benchmark's anchor and the tests' lower bar).

Must-do items (with their prerequisites) first; then, per roadmap with a minimum share and per
segment with a minimum coverage, the best value/cost items until the minimum is met; then every
other item in value/cost order, each with its missing prerequisites as a bundle, if the bundle
fits the budget, each roadmap's maximum share of the budget, the teams' capacity (earliest
quarters that fit, when scheduling) and the exclusion groups. Finally items are dropped, worst
ratio first, from any roadmap above its maximum share of the actual spend. The result is checked
against every constraint; a plan that breaks one is reported as 'infeasible' with the reasons.
"""

from __future__ import annotations

import math
import time
from collections import ChainMap, defaultdict
from collections.abc import Mapping

from .report import capacity_summary, roadmap_summary, violations
from .types import Item, Plan, Problem

_TOL = 1e-9


class _State:
    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.by_id = problem.by_id
        self.chosen: dict[str, None] = {}  # insertion-ordered set
        self.starts: dict[str, int] = {}
        self.spend = 0.0
        self.roadmap_spend: dict[str, float] = defaultdict(float)
        self.teams = set(problem.teams)
        self.quarters = problem.quarters
        self.cap_left: dict[object, float] = {}
        if problem.schedule:
            for team in problem.teams:
                for q, quarter in enumerate(problem.quarters):
                    self.cap_left[(team, q)] = problem.capacity.get((team, quarter), 0.0)
        else:
            for team in problem.teams:
                self.cap_left[team] = math.fsum(problem.capacity.get((team, q), 0.0)
                                                for q in problem.quarters)
        self.excluded_by: dict[str, list[int]] = defaultdict(list)
        for index, group in enumerate(problem.exclusions):
            for member in group:
                self.excluded_by[member].append(index)
        self.group_used: set[int] = set()

    def bundle(self, item: Item) -> list[Item] | None:
        """The item plus its unchosen prerequisites, prerequisites first (None if blocked)."""
        order: list[Item] = []
        seen: set[str] = set()

        def visit(current: Item) -> bool:
            if current.id in seen or current.id in self.chosen:
                return True
            if current.must_not:
                return False
            seen.add(current.id)
            for prereq in current.depends_on:
                if not visit(self.by_id[prereq]):
                    return False
            order.append(current)
            return True

        return order if visit(item) else None

    def earliest_start(self, item: Item, cap_left: dict[object, float],
                       starts: Mapping[str, int]) -> int | None:
        duration = item.duration
        ready = max((starts[p] + self.by_id[p].duration for p in item.depends_on), default=0)
        for start in range(ready, len(self.quarters) - duration + 1):
            fits = True
            for team in item.effort:
                if team not in self.teams:
                    continue
                if any(cap_left[(team, start + k)] + _TOL < amount
                       for k, amount in enumerate(item.profile[team]) if amount > 0):
                    fits = False
                    break
            if fits:
                return start
        return None

    def try_add(self, items: list[Item], *, force: bool = False) -> bool:
        """Add a bundle if it fits (``force``: must-do items go in regardless of limits)."""
        problem = self.problem
        cost = math.fsum(item.cost for item in items)
        if not force and self.spend + cost > problem.budget + _TOL:
            return False
        extra: dict[str, float] = defaultdict(float)
        for item in items:
            extra[item.roadmap] += item.cost
        if not force:
            for roadmap, amount in extra.items():
                hi = problem.shares.get(roadmap, (0.0, 1.0))[1]
                # Shares are of the final spend, unknown yet: cap each roadmap at its share of
                # the budget, which is what the spend approaches when the budget binds.
                if self.roadmap_spend[roadmap] + amount > hi * problem.budget + _TOL:
                    return False
        groups: set[int] = set()
        for item in items:
            for index in self.excluded_by.get(item.id, ()):
                if (index in self.group_used or index in groups) and not force:
                    return False
                groups.add(index)
        cap_left = dict(self.cap_left)
        # Tentative starts layered over the committed ones (no copy: bundles are small).
        starts: ChainMap[str, int] = ChainMap({}, self.starts)
        for item in items:
            if self.problem.schedule:
                start = self.earliest_start(item, cap_left, starts)
                if start is None:
                    if not force:
                        return False
                    start = max(0, len(self.quarters) - item.duration)
                starts[item.id] = start
                for team in item.effort:
                    if team in self.teams:
                        for k, amount in enumerate(item.profile[team]):
                            cap_left[(team, start + k)] -= amount
            else:
                for team, effort in item.effort.items():
                    if team in self.teams:
                        if cap_left[team] + _TOL < effort and not force:
                            return False
                        cap_left[team] -= effort
        self.cap_left = cap_left
        self.starts.update(starts.maps[0])
        self.group_used |= groups
        for item in items:
            self.chosen[item.id] = None
            self.spend += item.cost
            self.roadmap_spend[item.roadmap] += item.cost
        return True


def _ratio(item: Item) -> float:
    if item.cost <= 0:
        return math.inf if item.value > 0 else -math.inf
    return item.value / item.cost


def greedy(problem: Problem) -> Plan:
    """The value/cost greedy heuristic as a Plan (status 'feasible' or 'infeasible')."""
    started = time.perf_counter()
    state = _State(problem)
    order = sorted(problem.items, key=lambda item: (-_ratio(item), item.id))
    for item in problem.items:
        if item.must_do:
            bundle = state.bundle(item)
            if bundle:
                state.try_add(bundle, force=True)
    for roadmap, (lo, _) in problem.shares.items():
        if lo <= 0:
            continue
        for item in order:
            if state.roadmap_spend[roadmap] >= lo * problem.budget - _TOL:
                break
            if item.roadmap == roadmap and item.value > 0 and item.id not in state.chosen:
                bundle = state.bundle(item)
                if bundle:
                    state.try_add(bundle)
    for segment, count in problem.min_coverage.items():
        have = sum(1 for i in state.chosen if segment in state.by_id[i].segments)
        for item in order:
            if have >= count:
                break
            if segment in item.segments and item.id not in state.chosen:
                bundle = state.bundle(item)
                if bundle and state.try_add(bundle):
                    have += sum(1 for added in bundle if segment in added.segments)
    for item in order:
        if item.value <= 0 or item.id in state.chosen:
            continue
        bundle = state.bundle(item)
        if bundle and math.fsum(i.value for i in bundle) > 0:
            state.try_add(bundle)
    _trim_shares(state, order)
    chosen = tuple(i for i in (item.id for item in problem.items) if i in state.chosen)
    starts = {i: state.starts[i] for i in chosen} if problem.schedule else None
    broken = violations(problem, chosen, starts)
    value = math.fsum(state.by_id[i].value for i in chosen)
    return Plan(
        status="infeasible" if broken else "feasible",
        proven_optimal=False,
        objective=value,
        best_bound=None,
        gap=None,
        chosen=chosen,
        by_roadmap=roadmap_summary(problem, chosen),
        capacity_use=capacity_summary(problem, chosen, starts),
        schedule={i: problem.quarters[s] for i, s in (starts or {}).items()},
        explanation=broken,
        build_seconds=0.0,
        solve_seconds=time.perf_counter() - started,
        spend=math.fsum(state.by_id[i].cost for i in chosen),
        solver_status="greedy",
        method="greedy",
        notes=["greedy value/cost heuristic: a baseline, not an optimum"],
    )


def _trim_shares(state: _State, order: list[Item]) -> None:
    """Drop worst-ratio items (and their dependants) from roadmaps above their maximum share."""
    problem = state.problem
    dependants: dict[str, list[str]] = defaultdict(list)
    for item in problem.items:
        for prereq in item.depends_on:
            dependants[prereq].append(item.id)
    for roadmap, (_, hi) in problem.shares.items():
        for item in reversed(order):
            if state.spend <= 0 or state.roadmap_spend[roadmap] <= hi * state.spend + _TOL:
                break
            if item.roadmap != roadmap or item.id not in state.chosen or item.must_do:
                continue
            drop = [item.id]
            k = 0
            while k < len(drop):
                drop.extend(d for d in dependants[drop[k]] if d in state.chosen and d not in drop)
                k += 1
            if any(state.by_id[d].must_do for d in drop):
                continue
            for dropped in drop:
                gone = state.by_id[dropped]
                del state.chosen[dropped]
                state.spend -= gone.cost
                state.roadmap_spend[gone.roadmap] -= gone.cost
                state.starts.pop(dropped, None)
