"""What binds: every constraint that limits the plan, what relaxing it is worth, and why each
item is in or out.

For each constraint group (the budget, each roadmap's share floor and ceiling, each team's
capacity, per quarter when scheduling, each coverage requirement, dependency, exclusion group and
must-do item) the report gives:

* ``used`` / ``limit`` / ``slack`` at the plan, and ``at_limit`` when the slack is ~0;
* ``dual``: the LP relaxation's dual value, the value of one more unit of the limit for small
  changes (its unit is ``dual_unit``);
* ``gain``: the value gained by relaxing the constraint one step (``step``: 1% of the budget,
  one percentage point of a share, one effort unit, one item of coverage or of an exclusion
  group, the dependency dropped, the must-do released), re-solved to the exact optimum; an
  integer effect the dual cannot see. ``gain_exact`` is False when the re-solve was not proven.

A constraint *binds* when the plan sits at its limit or relaxing it gains value. Items: a chosen
item is ``forced_in`` by a floor (share minimum, coverage, must-do) when removing that floor
changes the optimum to one without the item and of higher value; a left-out item is kept out by
the constraints that adding it alone to the plan would break (``kept_out_by``), computed directly
from the plan, or by its own value when it is not positive.

The shape (``Plan.binding``: a list of these dicts; ``Plan.reasons``: item id -> reason) is what
the run page and the roadmap diff read; see README "What binds".
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from .engine import Outcome, Session
from .explain import describe_group
from .formulate import Formulation, GroupKey
from .types import Problem, rounded_value

BUDGET_STEP = 0.01  # relax the budget by 1% of itself
SHARE_STEP = 0.01  # one percentage point
_TIGHT = 1e-6

DUAL_UNITS = {
    "budget": "per money unit of budget",
    "share_min": "per money unit the roadmap may fall short of its floor",
    "share_max": "per money unit the roadmap may exceed its ceiling",
    "capacity": "per effort unit",
    "coverage": "per item of coverage",
    "exclusion": "per extra item allowed",
    "dependency": "per unit of the dependency row (LP)",
    "must_do": "per unit of the item (its reduced cost)",
}
FLOORS = ("share_min", "coverage", "must_do")


def group_name(group: GroupKey) -> str:
    """A stable text key: 'budget', 'share_min|core', 'capacity|design|2027Q1', ..."""
    return "|".join(str(part) for part in group)


def _money(amount: float) -> str:
    return f"{amount:,.6g}"


class _Relaxer:
    """Relax one constraint group on the loaded model, and undo it."""

    def __init__(self, form: Formulation, session: Session) -> None:
        self.form = form
        self.session = session
        self.index = {item_id: k for k, item_id in enumerate(form.ids)}
        self.spend_cols = {roadmap: session.col_of[var.id]
                           for roadmap, var in form.spend.items()}

    def _share(self, row: int, roadmap: str, current: float,
               bound: float) -> Callable[[], None]:
        """Move a share row from ``current`` to ``bound``: its weights on the spend columns."""
        session = self.session
        own = self.spend_cols.get(roadmap)
        for col in self.spend_cols.values():
            session.set_coeff(row, col, (1.0 if col == own else 0.0) - bound)

        def undo() -> None:
            for col in self.spend_cols.values():
                session.set_coeff(row, col, (1.0 if col == own else 0.0) - current)
        return undo

    def apply(self, group: GroupKey, *, remove: bool = False) -> Callable[[], None]:
        """Relax ``group`` by its step (or ``remove`` it); returns the undo."""
        session = self.session
        kind = group[0]
        problem = self.form.problem
        if kind == "must_do":
            col = int(session.x_col[self.index[group[1]]])
            lower, upper = session.lower[col], session.upper[col]
            session.set_col_bounds(col, 0.0, upper)
            return lambda: session.set_col_bounds(col, lower, upper)
        rows = session.rows(group)
        saved = [(r, session.row_lower[r], session.row_upper[r]) for r in rows]

        def restore() -> None:
            for r, lower, upper in saved:
                session.set_row_bounds(r, lower, upper)
        if remove or kind == "dependency":
            for r, _, _ in saved:
                session.set_row_bounds(r, -math.inf, math.inf)
            return restore
        r, lower, upper = saved[0]
        if kind == "budget":
            session.set_row_bounds(r, lower, upper + max(BUDGET_STEP * upper, 1.0))
        elif kind == "capacity":
            session.set_row_bounds(r, lower, upper + 1.0)
        elif kind == "coverage":
            session.set_row_bounds(r, lower - 1.0, upper)
        elif kind == "exclusion":
            session.set_row_bounds(r, lower, upper + 1.0)
        elif kind == "share_min":
            lo = problem.shares[group[1]][0]
            return self._share(r, group[1], lo, max(0.0, lo - SHARE_STEP))
        elif kind == "share_max":
            hi = problem.shares[group[1]][1]
            return self._share(r, group[1], hi, min(1.0, hi + SHARE_STEP))
        return restore


def _step_words(problem: Problem, group: GroupKey) -> str:
    kind = group[0]
    if kind == "budget":
        if BUDGET_STEP * problem.budget < 1.0:
            return "+1 money unit"
        return f"+{_money(BUDGET_STEP * problem.budget)} (1% of the budget)"
    if kind in ("share_min", "share_max"):
        return "1 percentage point"
    if kind == "capacity":
        return "+1 effort unit"
    if kind == "coverage":
        return "one item fewer"
    if kind == "exclusion":
        return "one more item allowed"
    if kind == "dependency":
        return "dependency dropped"
    if kind == "must_do":
        return "no longer must-do"
    return ""


def _measures(problem: Problem, group: GroupKey, chosen: set[str],
              capacity_use: Mapping[Any, Mapping[str, Any]]) -> tuple[float, float, float]:
    """(used, limit, slack) of a group at the plan; slack >= 0 means it holds."""
    by_id = problem.by_id
    kind = group[0]
    spend = math.fsum(by_id[i].cost for i in chosen)
    if kind == "budget":
        return spend, problem.budget, problem.budget - spend
    if kind in ("share_min", "share_max"):
        roadmap = group[1]
        own = math.fsum(by_id[i].cost for i in chosen if by_id[i].roadmap == roadmap)
        lo, hi = problem.shares[roadmap]
        if kind == "share_min":
            return own, lo * spend, own - lo * spend
        return own, hi * spend, hi * spend - own
    if kind == "capacity":
        key = group[1] if len(group) == 2 else (group[1], group[2])
        row = capacity_use.get(key) or {"used": 0.0, "capacity": 0.0}
        return row["used"], row["capacity"], row["capacity"] - row["used"]
    if kind == "coverage":
        have = sum(1 for i in chosen if group[1] in by_id[i].segments)
        need = problem.min_coverage[group[1]]
        return have, need, have - need
    if kind == "exclusion":
        picked = sum(1 for i in problem.exclusions[group[1]] if i in chosen)
        return picked, 1, 1 - picked
    if kind == "dependency":
        return float(group[1] in chosen), float(group[2] in chosen), \
            float(group[2] in chosen) - float(group[1] in chosen)
    if kind == "must_do":
        return 1.0, 1.0, 0.0
    return 0.0, 0.0, 0.0


def _dual(form: Formulation, session: Session, outcome: Outcome,
          group: GroupKey) -> float | None:
    reduced = outcome.col_dual
    if group[0] == "must_do":
        if reduced is None or not len(reduced):
            return None
        col = int(session.x_col[form.ids.index(group[1])])
        return abs(float(reduced[col]))
    duals = outcome.row_dual
    if duals is None or not len(duals):
        return None
    rows = session.rows(group)
    if not rows:
        return None
    return math.fsum(abs(float(duals[r])) for r in rows)


def _ordered_groups(form: Formulation, chosen: set[str]) -> list[GroupKey]:
    """Groups to analyse, those most likely to matter first (re-solves stop at the deadline)."""
    rank = {"budget": 0, "share_min": 1, "share_max": 1, "capacity": 2, "coverage": 3,
            "must_do": 4, "exclusion": 5, "dependency": 6}
    groups = [g for g in form.rows if g[0] in rank]
    groups += [g for g in form.bound_groups if g[0] == "must_do"]

    def key(group: GroupKey) -> tuple[int, int, str]:
        # A dependency whose dependant is chosen forces its prerequisite in: try those first.
        late = 1 if group[0] == "dependency" and group[1] not in chosen else 0
        return rank[group[0]], late, group_name(group)
    return sorted(groups, key=key)


def analyse(form: Formulation, session: Session, outcome: Outcome, *, chosen: tuple[str, ...],
            starts: Mapping[str, int], capacity_use: Mapping[Any, Mapping[str, Any]],
            seconds: float, notes: list[str],
            each: float = math.inf) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Every constraint's use, dual and re-solved gain; each item's reason. Restores the model.

    ``seconds`` caps all the re-solves, ``each`` one re-solve (its gain is then a lower bound,
    with ``gain_at_most`` from its bound)."""
    problem = form.problem
    unit = problem.value_unit or 0.01
    chosen_set = set(chosen)
    z_star = outcome.objective
    deadline = time.perf_counter() + max(0.0, seconds)
    relaxer = _Relaxer(form, session)
    records: list[dict[str, Any]] = []
    removed_floor: dict[str, set[str]] = {}
    skipped = 0
    for group in _ordered_groups(form, chosen_set):
        used, limit, slack = _measures(problem, group, chosen_set, capacity_use)
        scale = max(1.0, abs(limit))
        at_limit = group[0] in ("budget", "share_min", "share_max", "capacity", "coverage",
                                "exclusion") and abs(slack) <= _TIGHT * scale
        record: dict[str, Any] = {
            "group": group_name(group), "kind": group[0],
            "label": describe_group(problem, group),
            "used": round(used, 9), "limit": round(limit, 9), "slack": round(slack, 9),
            "at_limit": at_limit, "dual": _dual(form, session, outcome, group),
            "dual_unit": DUAL_UNITS.get(group[0], ""), "step": _step_words(problem, group),
            "gain": None, "gain_exact": False, "gain_at_most": None, "binds": at_limit,
            "forces_in": [],
        }
        remaining = deadline - time.perf_counter()
        if z_star is None or remaining <= 0:
            skipped += 1
            record["words"] = describe_record(record) if record["binds"] else ""
            records.append(record)
            continue
        undo = relaxer.apply(group)
        try:
            relaxed = session.optimize(time_limit=min(remaining, each), gap=0.0,
                                       start=outcome.col_value)
        finally:
            undo()
        if relaxed.objective is not None:
            gain = max(0.0, rounded_value(relaxed.objective - z_star, unit))
            record["gain"] = round(gain, 9)
            record["gain_exact"] = relaxed.status == "optimal" and outcome.status == "optimal"
            if not record["gain_exact"] and relaxed.bound is not None:
                # Not proven within its share of the time: the gain is at least ``gain`` and
                # at most this.
                record["gain_at_most"] = round(max(gain, relaxed.bound - z_star), 9)
            record["binds"] = at_limit or gain > 0
        # A floor: which chosen items does removing it let go (when that is worth something)?
        if group[0] in FLOORS and relaxed.objective is not None:
            if group[0] == "must_do":
                without = relaxed
            else:
                undo = relaxer.apply(group, remove=True)
                try:
                    without = session.optimize(
                        time_limit=max(0.05, min(deadline - time.perf_counter(), each)),
                        gap=0.0, start=outcome.col_value)
                finally:
                    undo()
            if without.objective is not None and without.col_value is not None \
                    and without.objective - z_star >= 0.5 * unit:
                from .solve import chosen_from  # solve imports this module

                kept, _ = chosen_from(form, session, without.col_value)
                let_go = sorted(chosen_set - set(kept))
                removed_floor[record["group"]] = set(let_go)
                record["forces_in"] = let_go
                record["binds"] = True
        record["words"] = describe_record(record) if record["binds"] else ""
        records.append(record)
    if skipped:
        notes.append(f"what binds: {skipped} constraint(s) not re-solved within the time "
                     f"budget of {seconds:g} s (their gain is not computed)")
    return records, _reasons(problem, chosen_set, starts, removed_floor, records)


def _reasons(problem: Problem, chosen: set[str], starts: Mapping[str, int],
             removed_floor: Mapping[str, set[str]],
             records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    labels = {r["group"]: r["label"] for r in records}
    reasons: dict[str, dict[str, Any]] = {}
    for item_id in sorted(chosen):
        floors = sorted(g for g, items in removed_floor.items() if item_id in items)
        if floors:
            reasons[item_id] = {"chosen": True, "forced_in_by": floors,
                                "words": "chosen only because of: "
                                         + "; ".join(labels.get(g, g) for g in floors)}
    for item in problem.items:
        if item.id in chosen:
            continue
        groups = kept_out_by(problem, item.id, chosen, starts)
        words = "; ".join(text for _, text in groups)
        reasons[item.id] = {"chosen": False, "kept_out_by": [g for g, _ in groups],
                            "words": words}
    return reasons


def kept_out_by(problem: Problem, item_id: str, chosen: set[str],
                starts: Mapping[str, int]) -> list[tuple[str, str]]:
    """The constraints that adding ``item_id`` alone to the plan would break, in words.

    [("value", ...)] when nothing would break but its value is not positive.
    """
    by_id = problem.by_id
    item = by_id[item_id]
    out: list[tuple[str, str]] = []
    if item.must_not:
        return [(f"must_not|{item.id}", "it is must-not")]
    if problem.schedule and item.duration > len(problem.quarters):
        return [(f"horizon|{item.id}", f"it takes {item.duration} quarters but the plan has "
                                       f"{len(problem.quarters)}")]
    for prereq in item.depends_on:
        if prereq not in chosen:
            out.append((group_name(("dependency", item.id, prereq)),
                        f"it needs {problem.name(prereq)}, which is left out"))
    for index, group in enumerate(problem.exclusions):
        picked = [i for i in group if i in chosen]
        if item.id in group and picked:
            out.append((group_name(("exclusion", index)),
                        f"{', '.join(map(problem.name, picked))} is chosen from its "
                        f"exclusion group {index + 1}"))
    spend = math.fsum(by_id[i].cost for i in chosen)
    new_spend = spend + item.cost
    if new_spend > problem.budget * (1 + 1e-12) + 1e-9:
        out.append(("budget", f"the budget: it costs {_money(item.cost)} and "
                              f"{_money(problem.budget - spend)} is left"))
    own: dict[str, float] = defaultdict(float)
    for i in chosen:
        own[by_id[i].roadmap] += by_id[i].cost
    own[item.roadmap] += item.cost
    for roadmap, (lo, hi) in problem.shares.items():
        if roadmap == item.roadmap and own[roadmap] > hi * new_spend + 1e-9 * max(1, new_spend):
            out.append((group_name(("share_max", roadmap)),
                        f"{roadmap}'s ceiling of {hi:.0%} of spend (it would take "
                        f"{own[roadmap] / new_spend:.1%})"))
        if roadmap != item.roadmap and own[roadmap] < lo * new_spend - 1e-9 * max(1, new_spend):
            out.append((group_name(("share_min", roadmap)),
                        f"{roadmap}'s floor of {lo:.0%} of spend (it would fall to "
                        f"{own[roadmap] / new_spend:.1%})"))
    out.extend(_capacity_breaks(problem, item_id, chosen, starts))
    if not out:
        if item.value <= 0:
            return [("value", f"its value {_money(item.value)} is not positive")]
        return [("none", "nothing would break: the plan is not proven optimal")]
    return out


def _capacity_breaks(problem: Problem, item_id: str, chosen: set[str],
                     starts: Mapping[str, int]) -> list[tuple[str, str]]:
    teams = set(problem.teams)
    by_id = problem.by_id
    item = by_id[item_id]
    needs = [team for team in item.effort if team in teams]
    if not needs:
        return []
    if not problem.schedule:
        out = []
        for team in needs:
            cap = math.fsum(problem.capacity.get((team, q), 0.0) for q in problem.quarters)
            used = math.fsum(by_id[i].effort.get(team, 0.0) for i in chosen)
            if used + item.effort[team] > cap + 1e-9 * max(1.0, cap):
                out.append((group_name(("capacity", team)),
                            f"team {team}'s capacity: it needs {_money(item.effort[team])} "
                            f"and {_money(cap - used)} is left"))
        return out
    n_q = len(problem.quarters)
    use: dict[tuple[str, int], float] = defaultdict(float)
    for i in chosen:
        other = by_id[i]
        for team, profile in other.profile.items():
            for k, amount in enumerate(profile):
                use[(team, starts[i] + k)] += amount
    ready = max((starts[p] + by_id[p].duration for p in item.depends_on if p in starts),
                default=0)
    best: list[tuple[str, str]] | None = None
    best_start = None
    for start in range(ready, n_q - item.duration + 1):
        over = []
        for team in needs:
            for k, amount in enumerate(item.profile[team]):
                quarter = problem.quarters[start + k]
                cap = problem.capacity.get((team, quarter), 0.0)
                left = cap - use[(team, start + k)]
                if amount > 0 and amount > left + 1e-9 * max(1.0, cap):
                    over.append((group_name(("capacity", team, quarter)),
                                 f"team {team} in {quarter}: it needs {_money(amount)} and "
                                 f"{_money(left)} is left"))
        if best is None or len(over) < len(best):
            best, best_start = over, start
        if not over:
            break
    if best is None:
        return [("schedule", f"no start quarter is left after its prerequisites end "
                             f"(it takes {item.duration})")]
    if best and best_start is not None:
        where = problem.quarters[best_start]
        return [(g, f"{text} (starting {where}, its best start)") for g, text in best]
    return []


def describe_record(r: Mapping[str, Any]) -> str:
    """One binding constraint in words, from its record (the page's table shows the same)."""
    parts = []
    if r["kind"] in ("budget", "capacity", "share_min", "share_max", "coverage", "exclusion"):
        parts.append(f"at its limit ({_money(r['used'])} of {_money(r['limit'])})"
                     if r["at_limit"] else f"{_money(r['slack'])} short of its limit")
    if r["gain"] is not None:
        parts.append(f"relaxing it ({r['step']}) gains {_money(r['gain'])}"
                     + ("" if r["gain_exact"] else
                        f" to {_money(r['gain_at_most'])}" if r.get("gain_at_most") is not None
                        else " (not proven exact)"))
    else:
        parts.append("gain of relaxing it not computed")
    if r["dual"]:
        parts.append(f"LP dual {r['dual']:.4g} {r['dual_unit']}")
    if r["forces_in"]:
        parts.append(f"forces in {', '.join(r['forces_in'])}")
    return f"{r['label']}: " + "; ".join(parts)
