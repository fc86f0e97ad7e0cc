"""Explain an infeasible portfolio: a small set of constraint groups that cannot hold together.

A deletion filter over constraint groups (budget, each share bound, each capacity, each must-do
and must-not item, each dependency, exclusion group and coverage requirement): drop a group, and
if the rest is still infeasible it was not needed for the conflict. Groups are dropped in chunks
first (halving a chunk whose removal restores feasibility), so hundreds of dependencies cost a
handful of solves. What remains is irreducible: removing any one group makes the problem
feasible. Each feasibility check is an LP first (cheap, often already infeasible) and then a
MIP with a zero objective that stops at its first solution.
"""

from __future__ import annotations

import math
import time

import highspy
import numpy as np

from .engine import Session
from .formulate import BOUND_GROUPS, Formulation, GroupKey, build
from .types import Problem

_MS = highspy.HighsModelStatus

# Groups tried for removal first are the least likely to be the user's point; the budget and
# must-do items go last, so a plain "must-dos exceed the budget" conflict is found as such.
_REMOVAL_ORDER = ("dependency", "exclusion", "horizon", "must_not", "coverage", "capacity",
                  "share_max", "share_min", "must_do", "budget")


def explain_infeasible(problem: Problem) -> list[str]:
    """Human-readable conflicting constraints of an infeasible problem ([] if it is feasible)."""
    form = build(problem)
    session = Session(form, threads=problem.threads)
    return explain_with(form, session, time_limit=problem.time_limit)


class _Toggler:
    """Switch constraint groups on and off on a loaded solver model."""

    def __init__(self, form: Formulation, session: Session) -> None:
        self.form = form
        self.session = session
        self.row_bounds = {group: [(r, session.row_lower[r], session.row_upper[r])
                                   for r in session.rows(group)] for group in form.rows}
        index = {item_id: k for k, item_id in enumerate(form.ids)}
        self.col = {item_id: int(session.x_col[index[item_id]]) for item_id in form.ids}
        self.on = set(form.groups)

    def set_active(self, active: set[GroupKey]) -> None:
        touched_items: set[str] = set()
        for group in self.on ^ active:
            if group[0] in BOUND_GROUPS:
                touched_items.add(group[1])
                continue
            for row, lower, upper in self.row_bounds[group]:
                if group in active:
                    self.session.set_row_bounds(row, lower, upper)
                else:
                    self.session.set_row_bounds(row, -math.inf, math.inf)
        for item_id in touched_items:
            lo = 1.0 if ("must_do", item_id) in active else 0.0
            hi = 0.0 if (("must_not", item_id) in active or ("horizon", item_id) in active) \
                else 1.0
            col = self.col[item_id]
            if col >= 0:
                self.session.set_col_bounds(col, lo, hi)
        self.on = set(active)

    def feasible(self, active: set[GroupKey], time_limit: float) -> bool | None:
        """True / False, or None when the check ran out of time."""
        self.set_active(active)
        session = self.session
        status, *_ = session.solve_lp()
        if status == "infeasible":
            return False
        h = session.mip
        h.setOptionValue("time_limit", max(0.05, time_limit))
        h.setOptionValue("mip_rel_gap", 1.0)
        h.run()
        if h.getModelStatus() in (_MS.kInfeasible, _MS.kUnboundedOrInfeasible):
            return False
        info = h.getInfo()
        if info.primal_solution_status == 2:
            return True
        return None


def explain_with(form: Formulation, session: Session, *, time_limit: float = 60.0) -> list[str]:
    """Explain infeasibility on an already built model (changes the session's objective)."""
    started = time.perf_counter()
    deadline = started + max(1.0, time_limit)
    toggler = _Toggler(form, session)
    # Feasibility only: a zero objective lets the MIP stop at its first solution.
    session.set_costs(np.arange(session.n_cols), np.zeros(session.n_cols))
    every = set(form.groups)
    check_limit = max(0.5, time_limit / 10)
    first = toggler.feasible(every, check_limit)
    if first:
        toggler.set_active(every)
        return []
    rank = {kind: k for k, kind in enumerate(_REMOVAL_ORDER)}
    pending = sorted(every, key=lambda g: (rank.get(g[0], 0), str(g)))
    needed: list[GroupKey] = []
    undecided = False
    # Deletion filter, chunked: try to drop a whole chunk; keep halving chunks that matter.
    chunks = [pending]
    current = set(every)
    while chunks:
        chunk = chunks.pop(0)
        if not chunk:
            continue
        if time.perf_counter() > deadline:
            undecided = True
            needed.extend(chunk)
            continue
        trial = current - set(chunk)
        verdict = toggler.feasible(trial, min(check_limit, deadline - time.perf_counter()))
        if verdict is False:
            current = trial  # still infeasible without the chunk: none of it is needed
        elif len(chunk) == 1:
            needed.append(chunk[0])
            undecided = undecided or verdict is None
        else:
            half = len(chunk) // 2
            chunks[:0] = [chunk[:half], chunk[half:]]
    toggler.set_active(every)
    conflict = [g for g in pending if g in current]
    lines = describe_conflict(form.problem, conflict)
    if undecided:
        lines.append("(the search for the smallest conflict hit its time limit; the set above "
                     "may contain constraints that are not needed)")
    return lines


def _money(amount: float) -> str:
    return f"{amount:,.6g}"


def describe_group(problem: Problem, group: GroupKey) -> str:
    """One constraint group in words, with its numbers."""
    kind = group[0]
    by_id = problem.by_id
    if kind == "budget":
        return f"the budget is {_money(problem.budget)}"
    if kind == "share_min":
        lo = problem.shares[group[1]][0]
        return f"roadmap {group[1]} must take at least {lo:.0%} of chosen spend"
    if kind == "share_max":
        hi = problem.shares[group[1]][1]
        return f"roadmap {group[1]} may take at most {hi:.0%} of chosen spend"
    if kind == "capacity":
        team = group[1]
        if len(group) == 3:
            cap = problem.capacity.get((team, group[2]), 0.0)
            return f"team {team} has {_money(cap)} effort units in {group[2]}"
        cap = math.fsum(problem.capacity.get((team, q), 0.0) for q in problem.quarters)
        return f"team {team} has {_money(cap)} effort units over all quarters"
    if kind == "dependency":
        return (f"{problem.name(group[1])} can only be done with (and, when scheduling, after) "
                f"{problem.name(group[2])}")
    if kind == "exclusion":
        members = problem.exclusions[group[1]]
        return (f"at most one of {', '.join(map(problem.name, members))} (exclusion group "
                f"{group[1] + 1})")
    if kind == "coverage":
        segment = group[1]
        have = sum(1 for item in problem.items if segment in item.segments)
        need = problem.min_coverage[segment]
        return (f"segment {segment} needs at least {need} chosen item{'s' if need != 1 else ''} "
                f"({have} item{' targets' if have == 1 else 's target'} it)")
    if kind == "must_do":
        item = by_id[group[1]]
        effort = ", ".join(f"{team} {_money(units)}" for team, units in item.effort.items())
        return (f"{problem.name(item.id)} is must-do ({item.roadmap}, cost {_money(item.cost)}"
                + (f", effort {effort}" if effort else "") + ")")
    if kind == "must_not":
        return f"{problem.name(group[1])} is must-not"
    if kind == "horizon":
        item = by_id[group[1]]
        return (f"{problem.name(item.id)} takes {item.duration} quarters but the horizon has "
                f"{len(problem.quarters)}")
    return str(group)


def _summary(problem: Problem, conflict: list[GroupKey]) -> str:
    """One sentence for the common patterns; a generic lead-in otherwise."""
    by_id = problem.by_id
    kinds = {g[0] for g in conflict}
    must = [g[1] for g in conflict if g[0] == "must_do"]
    must_cost = math.fsum(by_id[i].cost for i in must)
    names = ", ".join(must)
    plural = "s" if len(must) > 1 else ""
    verbs = ("need", "do not", "depend") if len(must) > 1 else ("needs", "does not", "depends")
    if kinds == {"budget", "must_do"}:
        verb = "cost" if len(must) > 1 else "costs"
        return (f"must-do item{plural} {names} {verb} {_money(must_cost)} but the budget is "
                f"{_money(problem.budget)}")
    if kinds == {"must_do"} and len(must) == 1 and problem.schedule:
        return f"must-do item {names} cannot be scheduled"
    if kinds == {"must_do", "capacity"}:
        caps = [g for g in conflict if g[0] == "capacity"]
        if len(caps) == 1 and len(caps[0]) == 2:
            team = caps[0][1]
            need = math.fsum(by_id[i].effort.get(team, 0.0) for i in must)
            cap = math.fsum(problem.capacity.get((team, q), 0.0) for q in problem.quarters)
            return (f"must-do item{plural} {names} {verbs[0]} {_money(need)} effort units of "
                    f"team {team} but it has {_money(cap)}")
        teams = ", ".join(dict.fromkeys(g[1] for g in caps))
        return f"must-do item{plural} {names} {verbs[1]} fit the capacity of team(s) {teams}"
    if kinds == {"must_do", "exclusion"}:
        return f"must-do items {names} are in the same exclusion group"
    if kinds <= {"must_do", "must_not", "dependency", "horizon"} and "must_do" in kinds:
        return f"must-do item{plural} {names} {verbs[2]} on items that cannot be chosen"
    if kinds == {"coverage"} or kinds <= {"coverage", "must_not", "horizon"}:
        segs = ", ".join(g[1] for g in conflict if g[0] == "coverage")
        return f"too few items can be chosen to cover segment(s) {segs}"
    return "these constraints cannot all hold together"


def describe_conflict(problem: Problem, conflict: list[GroupKey]) -> list[str]:
    """A summary sentence, then one line per conflicting constraint."""
    if not conflict:
        return ["the problem is infeasible, but no smaller conflicting set was isolated"]
    return [_summary(problem, conflict)] + [f"- {describe_group(problem, g)}" for g in conflict]
