"""Build the portfolio MILP with PuLP (fast idioms: one batch expression per row).

Variables: ``x[i]`` (binary, item i chosen); per roadmap ``spend[r]`` (continuous, = its chosen
cost); with scheduling ``y[i, s]`` (binary, item i starts in quarter s), and item i started in s
uses ``profile[team][q - s]`` of each team in quarter q (its effort by quarter offset).

Every constraint belongs to a *group* (``GroupKey``): the budget, one roadmap's minimum or
maximum share, one capacity, one dependency, one exclusion group, one coverage requirement, one
item's must-do / must-not / fits-the-horizon bound. Groups can be switched off on the solver
model, which is how infeasibility is explained (see ``explain.py``).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pulp

from .types import Problem, rounded_value

# ("budget",) | ("share_min", roadmap) | ("share_max", roadmap) | ("capacity", team)
# | ("capacity", team, quarter) | ("dependency", item, prerequisite) | ("exclusion", index)
# | ("coverage", segment) | ("must_do", item) | ("must_not", item) | ("horizon", item)
GroupKey = tuple[Any, ...]

# Groups that are variable bounds rather than rows.
BOUND_GROUPS = ("must_do", "must_not", "horizon")


@dataclass
class Formulation:
    """The PuLP model plus the maps from items and groups to its variables and rows."""

    problem: Problem
    prob: pulp.LpProblem
    ids: list[str]
    x: dict[str, pulp.LpVariable]
    starts: dict[str, list[tuple[int, pulp.LpVariable]]]
    spend: dict[str, pulp.LpVariable]
    rows: dict[GroupKey, list[pulp.LpConstraint]]
    # item -> (lower, upper) bound of x with every group on; and which bound groups apply
    bounds: dict[str, tuple[float, float]]
    bound_groups: dict[GroupKey, str] = field(default_factory=dict)
    build_seconds: float = 0.0

    @property
    def groups(self) -> list[GroupKey]:
        """Every constraint group of the model (rows and bounds)."""
        return list(self.rows) + list(self.bound_groups)


def _expr(pairs: list[tuple[pulp.LpVariable, float]]) -> pulp.LpAffineExpression:
    # One batch call into PuLP's core instead of adding terms one Python op at a time.
    return pulp.LpAffineExpression.from_list(pairs)


def build(problem: Problem, *, values: dict[str, float] | None = None) -> Formulation:
    """Build the MILP for ``problem`` (objective: total value; ``values`` overrides item values)."""
    started = time.perf_counter()
    items = problem.items
    ids = [item.id for item in items]
    quarters = problem.quarters
    n_quarters = len(quarters)
    prob = pulp.LpProblem("portfolio", pulp.LpMaximize)
    x = prob.add_variable_dict("x", range(len(items)), lowBound=0, upBound=1, cat=pulp.LpBinary)
    xs = {item.id: x[k] for k, item in enumerate(items)}

    # Bounds: must-do forces 1, must-not forces 0, an item longer than the horizon cannot run.
    bounds: dict[str, tuple[float, float]] = {}
    bound_groups: dict[GroupKey, str] = {}
    for item in items:
        lo, hi = 0.0, 1.0
        if item.must_do:
            lo = 1.0
            bound_groups[("must_do", item.id)] = item.id
        if item.must_not:
            hi = 0.0
            bound_groups[("must_not", item.id)] = item.id
        if problem.schedule and item.duration > n_quarters:
            hi = 0.0
            bound_groups[("horizon", item.id)] = item.id
        bounds[item.id] = (lo, hi)
        if (lo, hi) != (0.0, 1.0):
            var = xs[item.id]
            var.lowBound, var.upBound = lo, hi

    rows: dict[GroupKey, list[pulp.LpConstraint]] = defaultdict(list)

    def add(group: GroupKey, constraint: pulp.LpAffineExpression) -> None:
        rows[group].append(prob.addConstraint(constraint))

    # Objective.
    # Values on the model's grid (multiples of value_unit): totals of two plans then differ by
    # 0 or at least one unit, which is what lets an absolute gap below one unit prove the exact
    # optimum (engine.py). ``values`` (robust draws) are used as given.
    unit = problem.value_unit or 0.01
    prob.setObjective(_expr([(xs[item.id], values[item.id] if values and item.id in values
                              else rounded_value(item.value, unit)) for item in items]))

    # Spend per roadmap (definitional rows, never switched off), then budget and shares.
    by_roadmap: dict[str, list[tuple[pulp.LpVariable, float]]] = defaultdict(list)
    for item in items:
        by_roadmap[item.roadmap].append((xs[item.id], item.cost))
    spend: dict[str, pulp.LpVariable] = {}
    for k, (roadmap, terms) in enumerate(by_roadmap.items()):
        var = prob.add_variable(f"spend_{k}", lowBound=0)
        spend[roadmap] = var
        prob.addConstraint(_expr([*terms, (var, -1.0)]) == 0)
    total = [(var, 1.0) for var in spend.values()]
    add(("budget",), _expr(total) <= problem.budget)
    for roadmap, (lo, hi) in problem.shares.items():
        own = spend.get(roadmap)
        if lo > 0:
            terms = [(var, (1.0 if var is own else 0.0) - lo) for var in spend.values()]
            add(("share_min", roadmap), _expr(terms) >= 0)
        if hi < 1 and own is not None:
            terms = [(var, (1.0 if var is own else 0.0) - hi) for var in spend.values()]
            add(("share_max", roadmap), _expr(terms) <= 0)

    # Scheduling: y[i, s] for each start s that lets the item finish within the horizon.
    starts: dict[str, list[tuple[int, pulp.LpVariable]]] = {}
    if problem.schedule:
        for k, item in enumerate(items):
            last = n_quarters - item.duration
            if last < 0:
                starts[item.id] = []
                continue
            ys = [(s, prob.add_variable(f"y_{k}_{s}", lowBound=0, upBound=1,
                                        cat=pulp.LpBinary)) for s in range(last + 1)]
            starts[item.id] = ys
            prob.addConstraint(_expr([(var, 1.0) for _, var in ys]
                                     + [(xs[item.id], -1.0)]) == 0)

    # Capacity.
    teams = problem.teams
    if teams:
        team_set = set(teams)
        if problem.schedule:
            use: dict[tuple[str, int], list[tuple[pulp.LpVariable, float]]] = defaultdict(list)
            for item in items:
                for team in item.effort:
                    if team not in team_set:
                        continue
                    profile = item.profile[team]
                    for s, var in starts[item.id]:
                        for offset, amount in enumerate(profile):
                            if amount > 0:
                                use[(team, s + offset)].append((var, amount))
            for team in teams:
                for q, quarter in enumerate(quarters):
                    cap = problem.capacity.get((team, quarter), 0.0)
                    add(("capacity", team, quarter), _expr(use.get((team, q), [])) <= cap)
        else:
            use_total: dict[str, list[tuple[pulp.LpVariable, float]]] = defaultdict(list)
            for item in items:
                for team, effort in item.effort.items():
                    if team in team_set:
                        use_total[team].append((xs[item.id], effort))
            for team in teams:
                cap = math.fsum(problem.capacity.get((team, q), 0.0) for q in quarters)
                add(("capacity", team), _expr(use_total.get(team, [])) <= cap)

    # Dependencies: B only with A; when scheduling, B starts only after A has ended.
    by_id = {item.id: item for item in items}
    for item in items:
        for prereq in item.depends_on:
            group = ("dependency", item.id, prereq)
            if not problem.schedule:
                add(group, _expr([(xs[item.id], 1.0), (xs[prereq], -1.0)]) <= 0)
                continue
            # For every quarter q: started(B) by q <= finished(A) by q. Summed start
            # indicators give a tighter relaxation than start-time arithmetic with a big M.
            duration_a = by_id[prereq].duration
            mine = starts[item.id]
            theirs = starts[prereq]
            if not mine:
                continue
            for q in range(mine[-1][0] + 1):
                terms = [(var, 1.0) for s, var in mine if s <= q]
                terms += [(var, -1.0) for s, var in theirs if s + duration_a <= q]
                add(group, _expr(terms) <= 0)

    # Exclusion groups: at most one of each.
    for index, group_ids in enumerate(problem.exclusions):
        if len(group_ids) > 1:
            add(("exclusion", index), _expr([(xs[i], 1.0) for i in group_ids]) <= 1)

    # Coverage: at least k chosen items per segment.
    if problem.min_coverage:
        targeting: dict[str, list[tuple[pulp.LpVariable, float]]] = defaultdict(list)
        for item in items:
            for segment in set(item.segments):
                if segment in problem.min_coverage:
                    targeting[segment].append((xs[item.id], 1.0))
        for segment, count in problem.min_coverage.items():
            if count > 0:
                add(("coverage", segment), _expr(targeting.get(segment, [])) >= count)

    return Formulation(problem=problem, prob=prob, ids=ids, x=xs, starts=starts, spend=spend,
                       rows=dict(rows), bounds=bounds, bound_groups=bound_groups,
                       build_seconds=time.perf_counter() - started)
