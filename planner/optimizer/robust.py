"""Robust mode: Monte Carlo over item values, inclusion probabilities, a pessimistic portfolio.

Each item's value is drawn from a split normal: its mode is ``value``, its left half has standard
deviation ``(value - value_low) / 1.645`` and its right half ``(value_high - value) / 1.645``.
Then ``[value_low, value_high]`` holds 90% of the mass (each half's tail beyond its bound holds
10% of that half), and the skew follows the interval. Items without an interval keep their
value; a missing side has no spread. Draws are seeded, so results repeat.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .engine import Session
from .formulate import Formulation, build
from .sizing import CANDIDATE_BLOCK
from .solve import chosen_from
from .types import Problem, RobustResult

Z90 = 1.6448536269514722  # standard normal 95th percentile: 5% beyond it on each side
DISTRIBUTION = ("split normal per item: mode = value, [value_low, value_high] holds ~90% of "
                "the mass; items without an interval keep their value")


def draw_values(problem: Problem, draws: int, seed: int = 0) -> np.ndarray:
    """A (draws x items) matrix of sampled values (see the module docstring)."""
    rng = np.random.default_rng(seed)
    mode = np.array([item.value for item in problem.items], dtype=np.float64)
    low = np.array([item.value if item.value_low is None else item.value_low
                    for item in problem.items], dtype=np.float64)
    high = np.array([item.value if item.value_high is None else item.value_high
                     for item in problem.items], dtype=np.float64)
    sigma_lo = (mode - low) / Z90
    sigma_hi = (high - mode) / Z90
    total = sigma_lo + sigma_hi
    p_left = np.divide(sigma_lo, total, out=np.full_like(total, 0.5), where=total > 0)
    magnitude = np.abs(rng.standard_normal((draws, len(mode))))
    left = rng.random((draws, len(mode))) < p_left
    return np.where(left, mode - magnitude * sigma_lo, mode + magnitude * sigma_hi)


# Each draw's values are off the model's value grid, so a draw is solved to a relative gap.
DRAW_GAP = 1e-4


def robust(problem: Problem, draws: int = 200, seed: int = 0, quantile: float = 0.1,
           time_limit: float | None = None) -> RobustResult:
    """Solve the portfolio under ``draws`` sampled value scenarios (see ``robust_sampled``)."""
    return robust_sampled(problem, draws, seed, quantile, time_limit)[0]


def robust_sampled(problem: Problem, draws: int = 200, seed: int = 0, quantile: float = 0.1,
                   time_limit: float | None = None) -> tuple[RobustResult, Sampled | None]:
    """Solve the portfolio under ``draws`` sampled value scenarios; also return the draws and
    each draw's optimal portfolio (``Sampled``, None when the nominal problem has no solution)
    for the value of information (voi.py).

    Reports how often each item is in the optimal portfolio, and among the distinct optimal
    portfolios found (plus the nominal one) the one whose ``quantile`` of value across all draws
    is highest. ``time_limit`` caps the whole run (default: the problem's time limit x 5).
    """
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    if not 0 <= quantile <= 1:
        raise ValueError(f"quantile must be in [0, 1], got {quantile}")
    started = time.perf_counter()
    budget = problem.time_limit * 5 if time_limit is None else time_limit
    deadline = started + budget
    form = build(problem)
    session = Session(form, threads=problem.threads)
    ids = form.ids
    n = len(ids)
    notes: list[str] = []
    nominal = session.optimize(time_limit=problem.time_limit, gap=problem.gap)
    if nominal.col_value is None:
        notes.append(f"the nominal problem is {nominal.status}: nothing to sample")
        return RobustResult(inclusion_probability=dict.fromkeys(ids, 0.0),
                            pessimistic_portfolio=(), pessimistic_value=None, quantile=quantile,
                            draws=draws, seconds=time.perf_counter() - started,
                            distribution=DISTRIBUTION, notes=notes), None
    nominal_chosen, _ = chosen_from(form, session, nominal.col_value)
    scenario_values = draw_values(problem, draws, seed)
    optimal, solved_flags, loop_notes = solve_draws(form, session, scenario_values, deadline,
                                                    nominal.col_value, budget)
    notes.extend(loop_notes)
    solved = int(solved_flags.sum())
    counts = optimal[solved_flags].sum(axis=0).astype(np.float64)
    portfolios: dict[bytes, np.ndarray] = {}
    for mask in optimal[solved_flags]:
        portfolios.setdefault(mask.tobytes(), mask)
    nominal_mask = np.isin(np.array(ids), np.array(nominal_chosen)) if nominal_chosen \
        else np.zeros(n, dtype=bool)
    portfolios.setdefault(nominal_mask.tobytes(), nominal_mask)
    candidates = np.array(list(portfolios.values()), dtype=np.float64)  # (k, n)
    # Every candidate is judged on every draw, not only on the draw it was optimal for; a
    # block of candidates at a time, so memory stays (block x draws), not (draws x draws).
    q_values = np.empty(len(candidates))
    means = np.empty(len(candidates))
    for start in range(0, len(candidates), CANDIDATE_BLOCK):
        totals = candidates[start:start + CANDIDATE_BLOCK] @ scenario_values.T  # (block, draws)
        q_values[start:start + len(totals)] = np.quantile(totals, quantile, axis=1)
        means[start:start + len(totals)] = totals.mean(axis=1)
    best = int(np.argmax(q_values))
    nominal_index = list(portfolios).index(nominal_mask.tobytes())
    pessimistic = tuple(i for i, flag in zip(ids, candidates[best] > 0.5, strict=True) if flag)
    probability = counts / solved if solved else np.zeros(n)
    if solved < draws:
        notes.append(f"{draws - solved} draw(s) without a solution were left out")
    sampled = Sampled(values=scenario_values, optimal=optimal, solved=solved_flags,
                      nominal=nominal_mask, form=form, session=session,
                      nominal_solution=nominal.col_value)
    return RobustResult(
        inclusion_probability={i: float(p) for i, p in zip(ids, probability, strict=True)},
        pessimistic_portfolio=pessimistic,
        pessimistic_value=float(q_values[best]),
        quantile=quantile,
        draws=draws,
        pessimistic_mean=float(means[best]),
        nominal_portfolio=nominal_chosen,
        nominal_quantile_value=float(q_values[nominal_index]),
        nominal_mean=float(means[nominal_index]),
        candidates=len(portfolios),
        solved_draws=solved,
        seconds=time.perf_counter() - started,
        distribution=DISTRIBUTION,
        notes=notes,
    ), sampled


@dataclass
class Sampled:
    """Robust mode's draws and what each draw's re-solve chose, kept for the value of
    information: ``values`` (draws x items), ``optimal`` (draws x items, True = chosen in that
    draw's optimum; all False on a draw left unsolved), ``solved`` (per draw), ``nominal`` (the
    nominal optimum's mask), and the loaded solver model to re-solve with."""

    values: np.ndarray
    optimal: np.ndarray
    solved: np.ndarray
    nominal: np.ndarray
    form: Formulation
    session: Session
    nominal_solution: np.ndarray


def solve_draws(form: Formulation, session: Session, values: np.ndarray, deadline: float,
                start: np.ndarray, budget: float) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Re-solve the loaded model once per row of ``values`` until ``deadline``: (optimal masks,
    solved flags, notes). ``start`` (a feasible solution of every draw: only values change)
    warm-starts each solve."""
    problem = form.problem
    ids = np.array(form.ids)
    draws, n = values.shape
    cols = session.x_col
    valid = cols >= 0
    optimal = np.zeros((draws, n), dtype=bool)
    solved = np.zeros(draws, dtype=bool)
    notes: list[str] = []
    for d in range(draws):
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            notes.append(f"time limit {budget:g} s reached after {int(solved.sum())} of "
                         f"{draws} draws")
            break
        session.set_costs(cols[valid], values[d][valid])
        outcome = session.optimize(time_limit=min(problem.time_limit, remaining),
                                   gap=max(problem.gap, DRAW_GAP), start=start, grid=False)
        if outcome.col_value is None:
            continue
        chosen, _ = chosen_from(form, session, outcome.col_value)
        if chosen:
            optimal[d] = np.isin(ids, np.array(chosen))
        solved[d] = True
    # Leave the model's objective as it was found: the nominal values.
    session.set_costs(cols[valid], np.array([item.value for item in problem.items])[valid])
    return optimal, solved, notes

