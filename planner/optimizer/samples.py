"""Random portfolios shaped like real ones, for the benchmark, tests and demos. Pure, seeded."""

from __future__ import annotations

import numpy as np

from .types import Item, Problem

ROADMAP_MIX = (("core", 0.6), ("experimental", 0.3), ("niche", 0.1))
TEAMS = ("platform", "growth", "data", "mobile", "web")
QUARTERS = ("Q1", "Q2", "Q3", "Q4")


def random_problem(
    n_items: int = 2_000,
    *,
    seed: int = 0,
    budget_share: float = 0.3,
    capacity_share: float = 0.5,
    n_dependencies: int | None = None,
    n_exclusions: int | None = None,
    n_segments: int = 12,
    coverage: int = 3,
    must_do: int | None = None,
    must_not: int = 5,
    schedule: bool = False,
    time_limit: float = 60.0,
    gap: float = 0.0,
) -> Problem:
    """A random portfolio: 3 roadmaps with the default share bounds, 5 teams x 4 quarters.

    Costs are log-normal; values are cost x a log-normal return x a success probability, with
    wider intervals for experimental work. ``budget_share`` and ``capacity_share`` set the
    budget and the capacity as fractions of the total cost and total effort demanded.
    Dependencies default to 15% of the items and exclusion pairs to 2.5% (300 and 50 at 2,000);
    must-do items to one per 100 items, at most 5.
    """
    rng = np.random.default_rng(seed)
    n_dependencies = round(0.15 * n_items) if n_dependencies is None else n_dependencies
    n_exclusions = round(0.025 * n_items) if n_exclusions is None else n_exclusions
    must_do = min(5, n_items // 100) if must_do is None else must_do
    names = [name for name, _ in ROADMAP_MIX]
    roadmap_idx = rng.choice(len(names), n_items, p=[share for _, share in ROADMAP_MIX])
    cost = np.round(rng.lognormal(np.log(40.0), 0.7, n_items), 1) + 1.0
    # Return on cost and probability of success differ by roadmap: experimental bets pay more
    # when they work and work less often; niche items are cheap and modest.
    roi_mu = np.array([0.35, 0.7, 0.25])[roadmap_idx]
    roi_sigma = np.array([0.35, 0.6, 0.4])[roadmap_idx]
    success = np.array([0.85, 0.45, 0.7])[roadmap_idx]
    value = np.round(cost * rng.lognormal(roi_mu, roi_sigma) * success, 2)
    spread = np.array([0.25, 0.7, 0.4])[roadmap_idx]
    low = np.round(value * (1 - spread * rng.uniform(0.5, 1.0, n_items)), 2)
    high = np.round(value * (1 + 1.5 * spread * rng.uniform(0.5, 1.0, n_items)), 2)
    n_teams = len(TEAMS)
    primary = rng.integers(0, n_teams, n_items)
    secondary = rng.integers(0, n_teams, n_items)
    has_secondary = rng.random(n_items) < 0.4
    effort_total = cost / 10.0 * rng.uniform(0.6, 1.4, n_items)
    duration = rng.choice([1, 1, 1, 2, 2, 3], n_items)
    n_seg = max(1, n_segments)
    segment_count = rng.integers(1, 4, n_items)

    ids = [f"I{k:05d}" for k in range(n_items)]
    # Dependencies point from a later item to an earlier one, so they are acyclic.
    deps: dict[int, set[int]] = {}
    for _ in range(n_dependencies if n_items > 1 else 0):
        b = int(rng.integers(1, n_items))
        a = int(rng.integers(max(0, b - 200), b))  # prerequisites are nearby, as in real plans
        deps.setdefault(b, set()).add(a)
    flagged = rng.permutation(n_items)
    must_do_set = set(flagged[:must_do].tolist())
    must_not_set = set(flagged[must_do:must_do + must_not].tolist())
    # Keep must-do items cheap and free of dependencies so random instances stay feasible.
    for k in must_do_set:
        deps.pop(k, None)
        cost[k] = min(cost[k], 20.0)
        effort_total[k] = min(effort_total[k], 1.0)
        duration[k] = 1

    items = []
    for k in range(n_items):
        effort = {TEAMS[primary[k]]: round(float(effort_total[k]) * (0.6 if has_secondary[k]
                                                                      else 1.0), 2)}
        if has_secondary[k] and secondary[k] != primary[k]:
            effort[TEAMS[secondary[k]]] = round(float(effort_total[k]) * 0.4, 2)
        segments = tuple(f"S{s}" for s in rng.choice(n_seg, min(n_seg, segment_count[k]),
                                                     replace=False))
        items.append(Item(
            id=ids[k], roadmap=names[roadmap_idx[k]], cost=float(cost[k]),
            value=float(value[k]), value_low=float(low[k]), value_high=float(high[k]),
            effort=effort, segments=segments,
            depends_on=tuple(ids[a] for a in sorted(deps.get(k, ()))),
            must_do=k in must_do_set, must_not=k in must_not_set, duration=int(duration[k]),
        ))

    exclusions = []
    for _ in range(n_exclusions if n_items > 1 else 0):
        a, b = rng.choice(n_items, 2, replace=False)
        if {a, b} & must_do_set and {a, b} <= must_do_set:
            continue
        exclusions.append((ids[a], ids[b]))

    demand: dict[str, float] = dict.fromkeys(TEAMS, 0.0)
    for item in items:
        for team, units in item.effort.items():
            demand[team] += units
    capacity = {(team, quarter): round(demand[team] * capacity_share / len(QUARTERS), 1)
                for team in TEAMS for quarter in QUARTERS}
    # Coverage asks for at most half of the items that target a segment, so small random
    # instances stay feasible.
    targeting = {f"S{s}": 0 for s in range(min(3, n_seg))}
    for item in items:
        for segment in item.segments:
            if segment in targeting:
                targeting[segment] += 1
    min_coverage = {segment: min(coverage, have // 2) for segment, have in targeting.items()
                    if coverage and have >= 2}
    return Problem(
        items=tuple(items), budget=round(float(cost.sum()) * budget_share, 1),
        capacity=capacity, quarters=QUARTERS, exclusions=tuple(exclusions),
        min_coverage=min_coverage, schedule=schedule, time_limit=time_limit, gap=gap,
    )
