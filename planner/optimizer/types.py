"""The optimizer's inputs and results: frozen dataclasses, validated up front. Pure (no Django).

Units are the caller's: ``cost`` and ``budget`` in one currency, ``value`` in one value unit,
``effort`` and ``capacity`` in one unit of team effort (e.g. engineer-weeks).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

DEFAULT_SHARES: Mapping[str, tuple[float, float]] = MappingProxyType(
    {"core": (0.6, 0.8), "experimental": (0.15, 0.3), "niche": (0.0, 0.1)}
)

STATUSES = ("optimal", "feasible", "infeasible", "not_solved")

# Slack for float sums (a share's lower bounds adding up to 1.0000000001 is still fine).
_EPS = 1e-9

# The solver's numeric range: HiGHS refuses matrix coefficients from 1e15 (costs, efforts) and
# takes objective coefficients and bounds from 1e20 as infinite (values, budget, capacity).
MAX_COEFFICIENT = 1e14
MAX_MAGNITUDE = 1e18


class ProblemError(ValueError):
    """The problem description is invalid; the message names the item or field."""


def _finite(value: float, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as err:
        raise ProblemError(f"{what} must be a number, got {value!r}") from err
    if not math.isfinite(number):
        raise ProblemError(f"{what} must be finite, got {value!r}")
    return number


def _in_solver_range(number: float, what: str, limit: float, either_way: bool = False) -> float:
    if abs(number) > limit:
        side = " either way" if either_way else ""
        raise ProblemError(f"{what} {number:g} is beyond the solver's numeric range "
                           f"(at most {limit:g}{side})")
    return number


def _frozen_set(obj: object, name: str, value: object) -> None:
    # Frozen dataclasses normalise their own fields in __post_init__ this way.
    object.__setattr__(obj, name, value)


def _str_tuple(values: Iterable[Any] | str, what: str) -> tuple[str, ...]:
    if isinstance(values, str):
        raise ProblemError(f"{what} must be a sequence of ids, not the string {values!r}")
    return tuple(str(v) for v in values)


@dataclass(frozen=True)
class Item:
    """One candidate investment (a roadmap item).

    ``value`` is the risk-adjusted value used by the optimizer; ``value_low``/``value_high``
    bound it (about a 90% interval) for robust mode. ``effort`` maps team -> effort units: one
    number is the team's total, spread evenly over the item's ``duration`` quarters when
    scheduling; a list is the team's effort per quarter offset from the item's start
    (``{"design": [2, 0], "platform": [0, 3]}``: design 2 in its first quarter, platform 3 in its
    second), at most ``duration`` long (missing offsets are 0). After validation ``effort`` holds
    each team's total and ``profile`` each team's per-offset effort, ``duration`` long.
    """

    id: str
    roadmap: str
    cost: float
    value: float
    value_low: float | None = None
    value_high: float | None = None
    effort: Mapping[str, float] = field(default_factory=dict)
    segments: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    must_do: bool = False
    must_not: bool = False
    duration: int = 1
    profile: Mapping[str, tuple[float, ...]] = field(default_factory=dict, compare=False)
    # The longest per-quarter list given (0 when every team's effort is one number).
    profile_quarters: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ProblemError(f"item id must be a non-empty string, got {self.id!r}")
        where = f"item {self.id!r}"
        if not isinstance(self.roadmap, str) or not self.roadmap:
            raise ProblemError(f"{where}: roadmap must be a non-empty string")
        cost = _finite(self.cost, f"{where}: cost")
        if cost < 0:
            raise ProblemError(f"{where}: cost must be >= 0, got {cost}")
        _frozen_set(self, "cost", _in_solver_range(cost, f"{where}: cost", MAX_COEFFICIENT))
        value = _in_solver_range(_finite(self.value, f"{where}: value"), f"{where}: value",
                                 MAX_MAGNITUDE, either_way=True)
        _frozen_set(self, "value", value)
        low = None if self.value_low is None else _in_solver_range(
            _finite(self.value_low, f"{where}: value_low"), f"{where}: value_low",
            MAX_MAGNITUDE, either_way=True)
        high = None if self.value_high is None else _in_solver_range(
            _finite(self.value_high, f"{where}: value_high"), f"{where}: value_high",
            MAX_MAGNITUDE, either_way=True)
        if isinstance(self.duration, bool) or int(self.duration) != self.duration \
                or self.duration < 1:
            raise ProblemError(f"{where}: duration must be a whole number of quarters >= 1, "
                               f"got {self.duration!r}")
        _frozen_set(self, "duration", int(self.duration))
        self._check_effort(where)
        if low is not None and low > value + _EPS * max(1.0, abs(value)):
            raise ProblemError(f"{where}: value_low {low} is above value {value}")
        if high is not None and high < value - _EPS * max(1.0, abs(value)):
            raise ProblemError(f"{where}: value_high {high} is below value {value}")
        _frozen_set(self, "value_low", low)
        _frozen_set(self, "value_high", high)
        _frozen_set(self, "segments", _str_tuple(self.segments, f"{where}: segments"))
        deps = _str_tuple(self.depends_on, f"{where}: depends_on")
        if self.id in deps:
            raise ProblemError(f"{where}: depends_on names the item itself")
        _frozen_set(self, "depends_on", tuple(dict.fromkeys(deps)))
        if self.must_do and self.must_not:
            raise ProblemError(f"{where}: must_do and must_not are both set")

    def _check_effort(self, where: str) -> None:
        duration = int(self.duration)
        effort: dict[str, float] = {}
        profile: dict[str, tuple[float, ...]] = {}
        longest = 0
        given = dict(self.effort)
        if self.profile and given == {t: math.fsum(p) for t, p in self.profile.items()}:
            # dataclasses.replace() hands back the normalised totals: keep their profile.
            given = {team: list(p) for team, p in self.profile.items()}
            longest = self.profile_quarters
        for team, units in given.items():
            what = f"{where}: effort[{team!r}]"
            if isinstance(units, list | tuple):
                if len(units) > duration:
                    raise ProblemError(f"{what} lists {len(units)} quarters of effort but the "
                                       f"item takes {duration} quarter(s) (its duration)")
                amounts = [_finite(u, f"{what}[{k}]") for k, u in enumerate(units)]
                longest = max(longest, len(amounts))
                spread = tuple(amounts) + (0.0,) * (duration - len(amounts))
            else:
                amount = _finite(units, what)
                amounts = [amount]
                spread = (amount / duration,) * duration
            for k, amount in enumerate(amounts):
                label = what if len(amounts) == 1 and not isinstance(units, list | tuple) \
                    else f"{what}[{k}]"
                if amount < 0:
                    raise ProblemError(f"{label} must be >= 0, got {amount}")
                _in_solver_range(amount, label, MAX_COEFFICIENT)
            total = math.fsum(amounts)
            if total > 0:
                effort[str(team)] = total
                profile[str(team)] = spread
        _frozen_set(self, "effort", MappingProxyType(effort))
        _frozen_set(self, "profile", MappingProxyType(profile))
        _frozen_set(self, "profile_quarters", longest)

    @property
    def has_interval(self) -> bool:
        """Whether robust mode has an interval to draw this item's value from."""
        return self.value_low is not None or self.value_high is not None


@dataclass(frozen=True)
class Problem:
    """A portfolio to choose: items plus the scenario's constraints and solver settings.

    * ``shares``: roadmap -> (min, max) share of the TOTAL CHOSEN SPEND (not of the budget).
      Roadmaps without an entry are unconstrained; a roadmap with a positive minimum and no
      items allows only an empty portfolio.
    * ``capacity``: (team, quarter) -> effort units. Without scheduling an item's
      ``effort[team]`` counts against the team's capacity summed over all quarters; with
      ``schedule=True`` it is spread evenly over the item's quarters. A team with no capacity
      entry at all is unconstrained; a quarter missing for a constrained team has capacity 0.
    * ``exclusions``: groups of item ids of which at most one may be chosen.
    * ``min_coverage``: segment -> at least this many chosen items targeting it.
    * ``value_unit``: the model's own rounding of values. The objective counts each item's
      value rounded to this unit, so two plans' totals differ by 0 or at least one unit, and
      the solver proves the exact optimum by closing the gap to below one unit. Default (None):
      0.01, or the smallest power of ten above it that keeps the total |value| under 1e13 units
      (the range where sums of whole units stay exact in floating point).
    * ``gap``: 0 (default) proves the exact optimum of the rounded model; a positive relative
      gap lets the solver stop once the plan is within it of the best bound (status
      'feasible': "within X% of the best possible plan").
    * A capacity table that is not empty must have a row for every team an item needs.
    """

    items: tuple[Item, ...]
    budget: float
    shares: Mapping[str, tuple[float, float]] = DEFAULT_SHARES
    capacity: Mapping[tuple[str, str], float] = field(default_factory=dict)
    quarters: tuple[str, ...] = ()
    exclusions: tuple[tuple[str, ...], ...] = ()
    min_coverage: Mapping[str, int] = field(default_factory=dict)
    schedule: bool = False
    time_limit: float = 60.0
    gap: float = 0.0
    threads: int | None = None
    value_unit: float | None = None
    # Display names of items for the reports' words (not part of the model).
    names: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        items = tuple(self.items)
        for position, item in enumerate(items):
            if not isinstance(item, Item):
                raise ProblemError(f"items[{position}] is not an Item: {item!r}")
        _frozen_set(self, "items", items)
        budget = _finite(self.budget, "budget")
        if budget < 0:
            raise ProblemError(f"budget must be >= 0, got {budget}")
        _in_solver_range(budget, "budget", MAX_MAGNITUDE)
        _frozen_set(self, "budget", budget)
        _frozen_set(self, "shares", MappingProxyType(_check_shares(self.shares)))
        quarters = _str_tuple(self.quarters, "quarters")
        if len(set(quarters)) != len(quarters):
            raise ProblemError(f"quarters has duplicates: {quarters}")
        capacity, quarters = _check_capacity(self.capacity, quarters)
        _frozen_set(self, "capacity", MappingProxyType(capacity))
        _frozen_set(self, "quarters", quarters)
        ids = [item.id for item in items]
        known = set(ids)
        if len(known) != len(ids):
            dupes = sorted(i for i, n in Counter(ids).items() if n > 1)
            raise ProblemError(f"duplicate item ids: {', '.join(dupes[:10])}")
        for item in items:
            unknown = [d for d in item.depends_on if d not in known]
            if unknown:
                raise ProblemError(f"item {item.id!r}: depends_on names unknown item(s) "
                                   f"{', '.join(map(repr, unknown))}")
        _check_acyclic(items)
        groups = []
        for position, group in enumerate(self.exclusions):
            members = tuple(dict.fromkeys(_str_tuple(group, f"exclusions[{position}]")))
            unknown = [m for m in members if m not in known]
            if unknown:
                raise ProblemError(f"exclusions[{position}] names unknown item(s) "
                                   f"{', '.join(map(repr, unknown))}")
            groups.append(members)
        _frozen_set(self, "exclusions", tuple(groups))
        coverage: dict[str, int] = {}
        for segment, count in dict(self.min_coverage).items():
            if isinstance(count, bool) or int(count) != count or count < 0:
                raise ProblemError(f"min_coverage[{segment!r}] must be a whole number >= 0, "
                                   f"got {count!r}")
            coverage[str(segment)] = int(count)
        _frozen_set(self, "min_coverage", MappingProxyType(coverage))
        _frozen_set(self, "schedule", bool(self.schedule))
        if self.schedule and not quarters:
            raise ProblemError("schedule=True needs quarters (or capacity keyed by quarter)")
        _check_teams_and_profiles(items, capacity, quarters, bool(self.schedule))
        _frozen_set(self, "value_unit", _value_unit(items, self.value_unit))
        limit = _finite(self.time_limit, "time_limit")
        if limit <= 0:
            raise ProblemError(f"time_limit must be > 0 seconds, got {limit}")
        _frozen_set(self, "time_limit", limit)
        gap = _finite(self.gap, "gap")
        if not 0 <= gap < 1:
            raise ProblemError(f"gap must be in [0, 1), got {gap}")
        _frozen_set(self, "gap", gap)
        if self.threads is not None and (isinstance(self.threads, bool)
                                         or int(self.threads) != self.threads
                                         or self.threads < 1):
            raise ProblemError(f"threads must be a whole number >= 1 or None, "
                               f"got {self.threads!r}")

    def name(self, item_id: str) -> str:
        """How the reports' words name an item: its display name if given, else its id."""
        name = self.names.get(item_id)
        return f"{name} (#{item_id})" if name else item_id

    @property
    def by_id(self) -> dict[str, Item]:
        """Items keyed by id (built on each call: cache it in loops)."""
        return {item.id: item for item in self.items}

    @property
    def teams(self) -> tuple[str, ...]:
        """Teams with a capacity entry, in first-seen order (only these are constrained)."""
        return tuple(dict.fromkeys(team for team, _ in self.capacity))


MAX_UNITS = 1e13


def rounded_value(value: float, unit: float) -> float:
    """A value as the model counts it: rounded to the model's unit."""
    return round(value / unit) * unit


def _value_unit(items: tuple[Item, ...], given: float | None) -> float:
    if given is not None:
        unit = _finite(given, "value_unit")
        if unit <= 0:
            raise ProblemError(f"value_unit must be > 0, got {unit}")
        return unit
    total = math.fsum(abs(item.value) for item in items)
    unit = 0.01
    while total / unit > MAX_UNITS:
        unit *= 10
    return unit


def _check_teams_and_profiles(items: tuple[Item, ...],
                              capacity: Mapping[tuple[str, str], float],
                              quarters: tuple[str, ...], schedule: bool) -> None:
    teams = {team for team, _ in capacity}
    for item in items:
        where = f"item {item.id!r}"
        if teams and not item.must_not:
            missing = [team for team in item.effort if team not in teams]
            if missing:
                raise ProblemError(f"{where}: effort needs team {missing[0]!r}, which has no row "
                                   f"in the capacity table (give it a capacity, 0 if none)")
        if schedule and item.profile_quarters > len(quarters):
            raise ProblemError(f"{where}: effort lists {item.profile_quarters} quarters of "
                               f"effort but the plan has {len(quarters)} quarter(s)")


def _check_shares(shares: Mapping[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    checked: dict[str, tuple[float, float]] = {}
    for roadmap, bounds in dict(shares).items():
        try:
            lo_raw, hi_raw = bounds
        except (TypeError, ValueError) as err:
            raise ProblemError(f"shares[{roadmap!r}] must be a (min, max) pair, "
                               f"got {bounds!r}") from err
        lo = _finite(lo_raw, f"shares[{roadmap!r}] min")
        hi = _finite(hi_raw, f"shares[{roadmap!r}] max")
        if lo < 0 or hi > 1:
            raise ProblemError(f"shares[{roadmap!r}] = ({lo}, {hi}) must lie within [0, 1]")
        if lo > hi:
            raise ProblemError(f"shares[{roadmap!r}] has min {lo} above max {hi}")
        checked[str(roadmap)] = (lo, hi)
    total_lo = math.fsum(lo for lo, _ in checked.values())
    if total_lo > 1 + _EPS:
        raise ProblemError(f"shares' minimums add up to {total_lo:.4g} > 1: no spend can meet them")
    return checked


def _check_capacity(capacity: Mapping[tuple[str, str], float],
                    quarters: tuple[str, ...]) -> tuple[dict[tuple[str, str], float],
                                                         tuple[str, ...]]:
    checked: dict[tuple[str, str], float] = {}
    derived = list(quarters)
    for key, units in dict(capacity).items():
        try:
            team, quarter = key
        except (TypeError, ValueError) as err:
            raise ProblemError(f"capacity key {key!r} must be a (team, quarter) pair") from err
        team, quarter = str(team), str(quarter)
        amount = _finite(units, f"capacity[{team!r}, {quarter!r}]")
        if amount < 0:
            raise ProblemError(f"capacity[{team!r}, {quarter!r}] must be >= 0, got {amount}")
        _in_solver_range(amount, f"capacity[{team!r}, {quarter!r}]", MAX_MAGNITUDE)
        if quarters and quarter not in quarters:
            raise ProblemError(f"capacity[{team!r}, {quarter!r}]: quarter {quarter!r} is not "
                               f"in quarters {quarters}")
        if not quarters and quarter not in derived:
            derived.append(quarter)  # quarters default to the capacity's, in first-seen order
        checked[(team, quarter)] = amount
    return checked, tuple(derived)


def _check_acyclic(items: tuple[Item, ...]) -> None:
    """Raise on a dependency cycle (iterative DFS: portfolios can have long chains)."""
    deps = {item.id: item.depends_on for item in items}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    for root in deps:
        if state.get(root):
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, index = stack[-1]
            if index < len(deps[node]):
                stack[-1] = (node, index + 1)
                nxt = deps[node][index]
                if state.get(nxt) == 1:
                    path = [n for n, _ in stack]
                    cycle = path[path.index(nxt):] + [nxt]
                    raise ProblemError("dependency cycle: " + " -> ".join(cycle))
                if not state.get(nxt):
                    state[nxt] = 1
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                stack.pop()


def _json_safe(value: Any) -> Any:
    """Tuples keys to 'a|b' strings, non-finite floats to None, containers recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {("|".join(map(str, k)) if isinstance(k, tuple) else str(k)): _json_safe(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


@dataclass(frozen=True)
class Plan:
    """The optimizer's answer (also the greedy baseline's). ``to_dict()`` is JSON-safe.

    ``entry_values[item]``: the value an excluded item would need to be chosen; ``math.inf``
    when no value gets it in (must-not, an unsatisfiable dependency, ...), ``None`` when it was
    not computed (beyond the re-solve cap; see ``notes``).
    """

    status: str
    proven_optimal: bool
    objective: float | None
    best_bound: float | None
    gap: float | None
    chosen: tuple[str, ...]
    by_roadmap: dict[str, dict[str, Any]] = field(default_factory=dict)
    capacity_use: dict[Any, dict[str, float]] = field(default_factory=dict)
    schedule: dict[str, str] = field(default_factory=dict)
    marginal_values: dict[str, Any] = field(default_factory=dict)
    entry_values: dict[str, float | None] = field(default_factory=dict)
    explanation: list[str] = field(default_factory=list)
    build_seconds: float = 0.0
    solve_seconds: float = 0.0
    spend: float = 0.0
    solver_status: str = ""
    method: str = "milp"
    notes: list[str] = field(default_factory=list)
    value_unit: float = 0.0
    model_objective: float | None = None
    binding: list[dict[str, Any]] = field(default_factory=list)
    reasons: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def proof(self) -> str:
        """In words: the exact optimum, or how close to the best possible plan."""
        if self.status == "optimal":
            return (f"exact optimum of the model (values rounded to {self.value_unit:g}; no "
                    f"plan is worth more)")
        if self.status == "feasible" and self.gap is not None and self.best_bound is not None:
            return (f"within {self.gap:.4%} of the best possible plan (bound "
                    f"{self.best_bound:,.2f})")
        return self.status

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable dict: (team, quarter) keys become 'team|quarter', inf becomes None.

        Adds ``entry_blocked``: the excluded items no value can bring in.
        """
        data = {f.name: _json_safe(getattr(self, f.name)) for f in fields(self)}
        data["proof"] = self.proof
        data["entry_blocked"] = sorted(k for k, v in self.entry_values.items()
                                       if v is not None and math.isinf(v))
        return data


@dataclass(frozen=True)
class FrontierPoint:
    """One point of the efficient frontier: the best value at a budget."""

    budget: float
    value: float | None
    status: str
    chosen_count: int
    spend: float = 0.0
    gap: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable dict."""
        return {f.name: _json_safe(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class RobustResult:
    """Monte Carlo over item values: who is in the optimum how often, and a pessimistic pick.

    ``pessimistic_value`` is the ``quantile`` of the pessimistic portfolio's value across all
    draws; ``nominal_quantile_value`` is the same statistic for the nominal optimum.
    """

    inclusion_probability: dict[str, float]
    pessimistic_portfolio: tuple[str, ...]
    pessimistic_value: float | None
    quantile: float
    draws: int
    pessimistic_mean: float | None = None
    nominal_portfolio: tuple[str, ...] = ()
    nominal_quantile_value: float | None = None
    nominal_mean: float | None = None
    candidates: int = 0
    solved_draws: int = 0
    seconds: float = 0.0
    distribution: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable dict."""
        return {f.name: _json_safe(getattr(self, f.name)) for f in fields(self)}
