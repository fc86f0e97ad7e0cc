"""How much memory an optimizer run needs, estimated before it starts. Pure: no Django.

* the model: about ``BYTES_PER_COLUMN`` per solver column (PuLP's objects, the rows' terms and
  the two HiGHS copies, LP and MIP; measured at 3-15 KiB per column, scheduling included). A
  column is an item, plus one per (item, start quarter) when scheduling;
* robust mode: the (draws x items) matrix of sampled values and its temporaries
  (``DRAW_CELL_BYTES`` per cell, measured peak 33), plus the candidate portfolios' totals over
  every draw, judged ``CANDIDATE_BLOCK`` candidates at a time (robust.py);
* the frontier: one model re-solved per point, keeping each point's solution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

BYTES_PER_COLUMN = 16 * 1024
DRAW_CELL_BYTES = 40
CANDIDATE_BLOCK = 64
# Per candidate of a block and per draw: its total and np.quantile's partitioned copy.
TOTAL_BYTES = 16
MIB = 1024 * 1024


@dataclass(frozen=True)
class Estimate:
    """Bytes an optimizer run needs at its peak, by part."""

    model: int
    robust: int
    frontier: int

    @property
    def total(self) -> int:
        return self.model + self.robust + self.frontier


def columns(items: int, quarters: int = 0, schedule: bool = False) -> int:
    return items * (1 + quarters) if schedule else items


def per_draw(items: int) -> int:
    """Bytes robust mode needs per draw."""
    return items * DRAW_CELL_BYTES + CANDIDATE_BLOCK * TOTAL_BYTES


def estimate(*, items: int, draws: int = 0, frontier_points: int = 0, quarters: int = 0,
             schedule: bool = False) -> Estimate:
    """The peak memory of a run over ``items`` items (see the module docstring)."""
    cols = columns(items, quarters, schedule)
    return Estimate(model=cols * BYTES_PER_COLUMN,
                    robust=draws * per_draw(items) if draws > 0 else 0,
                    frontier=frontier_points * cols * 8)


def max_draws(budget: int, *, items: int, frontier_points: int = 0, quarters: int = 0,
              schedule: bool = False) -> int:
    """The most robust draws that fit in ``budget`` bytes next to the model and frontier."""
    rest = estimate(items=items, frontier_points=frontier_points, quarters=quarters,
                    schedule=schedule)
    return max(0, (budget - rest.total) // per_draw(items))


def over_budget(budget_mib: float, *, items: int, draws: int = 0, frontier_points: int = 0,
                quarters: int = 0, schedule: bool = False) -> tuple[str, str] | None:
    """(field, message) when the run would need more than ``budget_mib`` MiB, else None; the
    field is "" when no setting of the scenario is to blame (the portfolio itself)."""
    need = estimate(items=items, draws=draws, frontier_points=frontier_points,
                    quarters=quarters, schedule=schedule)
    budget = int(budget_mib * MIB)
    if need.total <= budget:
        return None
    over = (f"over the job memory budget of {budget_mib:g} MiB (JOB_MEMORY_BUDGET_MB)")
    mib = math.ceil(need.total / MIB)
    if draws > 0:
        fit = max_draws(budget, items=items, frontier_points=frontier_points,
                        quarters=quarters, schedule=schedule)
        return "robust_draws", (f"robust_draws x items: {draws:,} draws x {items:,} items need "
                                f"about {mib:,} MiB with the model, {over}: at most {fit:,} "
                                "draws fit")
    field = "frontier_points" if frontier_points else "quarters" if schedule else ""
    return field, (f"the model of {items:,} items ({columns(items, quarters, schedule):,} "
                   f"solver columns, {frontier_points} frontier points) needs about {mib:,} "
                   f"MiB, {over}")
