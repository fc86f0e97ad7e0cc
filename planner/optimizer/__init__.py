"""Portfolio optimizer: choose roadmap items of maximum risk-adjusted value under a budget,
roadmap shares, team capacity, dependencies, exclusions and coverage. Pure: no Django.

    from planner.optimizer import Item, Problem, solve
    plan = solve(Problem(items=(...), budget=1_000))
    plan.to_dict()
"""

from __future__ import annotations

from . import voi
from .explain import explain_infeasible
from .greedy import greedy
from .robust import draw_values, robust
from .samples import random_problem
from .solve import default_budgets, frontier, solve
from .types import (
    DEFAULT_SHARES,
    FrontierPoint,
    Item,
    Plan,
    Problem,
    ProblemError,
    RobustResult,
)

__all__ = [
    "DEFAULT_SHARES",
    "FrontierPoint",
    "Item",
    "Plan",
    "Problem",
    "ProblemError",
    "RobustResult",
    "default_budgets",
    "draw_values",
    "explain_infeasible",
    "frontier",
    "greedy",
    "random_problem",
    "robust",
    "solve",
    "voi",
]
