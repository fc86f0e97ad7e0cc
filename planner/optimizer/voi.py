"""Value of information of the portfolio decision. Pure: no Django.

Everything is estimated on robust mode's value draws (``robust.draw_values``: a D x n matrix,
one row per scenario, items independent) and judged by re-solving the portfolio under the
scenario's constraints. With ``mu`` the items' mean over the draws and ``p*`` the plan that is
optimal for ``mu`` (the best decision on today's information, worth ``E0 = mu . p*``):

* **EVPI** (perfect information on every item): ``mean_d [max_p v_d . p] - E0``. A draw's
  maximum is its own re-solve (robust mode solves every draw); a draw left unsolved (time) takes
  the best of the candidate plans (below) and the estimate may be low by the candidate set's
  shortfall, measured leave-one-out on the solved draws and reported.
* **EVPPI** of a hypothesis (perfect information on the items linked to it): the items are
  independent in the draws, so the value of a plan given the group's values is exact without an
  inner loop: ``mu`` outside the group, the draw inside it. EVPPI = ``mean_d [max_p (mu +
  dev_d,G) . p] - E0`` where ``dev = v - mu``.
* **EVSI** of an experiment (a noisy read of its hypothesis's lift at the planned sample size):
  preposterior analysis with a normal prior on the lift (sd ``s`` from the hypothesis's
  interval, read as a 90% interval) and a normal estimate (standard error ``se`` from the power
  calculation). The posterior mean of a normal quantity is distributed ``N(mean, r s^2)`` before
  the data with ``r = s^2 / (s^2 + se^2)``, the share of the variance the experiment resolves.
  Taking the linked items' uncertainty to be the lift's (value is linear in lift), a preposterior
  scenario is ``mu + sqrt(r) dev_d,G``, and EVSI = ``mean_d [max_p (mu + sqrt(r) dev_d,G) . p]
  - E0``; ``r -> 1`` gives the EVPPI, ``r -> 0`` gives 0.

The maxima inside EVPPI and EVSI are exact MIP re-solves when they fit the time budget
(``method = "exact"``), else the best of a set of candidate plans (every solved draw's optimum,
the feasible roundings of the other draws' LP relaxations, the nominal and the mean-optimal
plans; ``method = "candidates"``, or ``"mixed"`` when the time limit stopped the exact
re-solves part way), which can only be low: a sample of exact re-solves measures by how much
(``checks``). The Monte Carlo error of every figure is the
standard error of its per-draw gains across draws (the gains are paired differences, so it is
small). Each experiment's EVSI is valued alone (values of information do not add up).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .engine import Session
from .formulate import build
from .robust import DRAW_GAP, Z90, Sampled, draw_values, solve_draws
from .sizing import MIB, estimate
from .solve import chosen_from
from .types import Problem, _json_safe

MAX_CANDIDATES = 2048  # the most frequent distinct per-draw optima kept as candidate plans
DRAW_BLOCK = 512  # draws judged at a time: memory (candidates x block), not (candidates x draws)
# Per draw and item: the optimal-plan mask (1 byte) and the centred deviations (8 bytes), on
# top of robust mode's own matrix (sizing.DRAW_CELL_BYTES).
VOI_CELL_BYTES = 9
CORE = "core"


class VoiError(ValueError):
    """Value of information cannot be computed; ``field`` names the input to change."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Trial:
    """A designed experiment: which hypothesis it reads, the standard error of its lift estimate
    at the planned sample size, and what it costs (None: not entered)."""

    id: str
    hypothesis: str
    se: float
    cost: float | None = None
    label: str = ""


@dataclass(frozen=True)
class Hypothesis:
    """A hypothesis: the items whose values rest on it and the prior sd of its lift."""

    id: str
    items: tuple[str, ...]
    lift_sd: float = 0.0
    label: str = ""


def lift_sd(low: float | None, high: float | None) -> float:
    """Prior sd of a lift from its interval, read as a 90% interval (as robust mode reads
    item intervals); 0 without one."""
    if low is None or high is None or not high > low:
        return 0.0
    return (high - low) / (2 * Z90)


def design_se(effective_mde: float, alpha: float, power: float) -> float:
    """Standard error of the relative lift at the planned sample size, from the power
    calculation's own relation ``mde = (z_{1-alpha/2} + z_power) se``."""
    from scipy.stats import norm

    return float(effective_mde) / float(norm.ppf(1 - alpha / 2) + norm.ppf(power))


def resolved_share(prior_sd: float, se: float) -> float:
    """Share of the prior variance a normal read with standard error ``se`` resolves."""
    if prior_sd <= 0:
        return 0.0
    if se <= 0:
        return 1.0
    return prior_sd ** 2 / (prior_sd ** 2 + se ** 2)


def memory_bytes(*, items: int, draws: int) -> int:
    """Bytes the value of information needs beyond robust mode (see ``VOI_CELL_BYTES``)."""
    return draws * items * VOI_CELL_BYTES + MAX_CANDIDATES * DRAW_BLOCK * 8 * 2


def over_budget(budget_mib: float, *, items: int, draws: int, frontier_points: int = 0,
                quarters: int = 0, schedule: bool = False) -> tuple[str, str] | None:
    """("robust_draws", message) when robust mode plus the value of information would need
    more than ``budget_mib`` MiB, else None."""
    if draws <= 0:
        return None
    base = estimate(items=items, draws=draws, frontier_points=frontier_points,
                    quarters=quarters, schedule=schedule)
    budget = int(budget_mib * MIB)
    need = base.total + memory_bytes(items=items, draws=draws)
    if need <= budget or base.model + base.frontier > budget:
        return None  # fits, or the model alone does not (sizing.over_budget says so)
    per = base.robust // draws + items * VOI_CELL_BYTES
    fixed = base.model + base.frontier + memory_bytes(items=items, draws=0)
    fit = max(0, (budget - fixed) // per) if per else 0
    return "robust_draws", (f"robust_draws x items: {draws:,} draws x {items:,} items need "
                            f"about {math.ceil(need / MIB):,} MiB with the model and the "
                            f"value of information, over the job memory budget of "
                            f"{budget_mib:g} MiB (JOB_MEMORY_BUDGET_MB): at most {fit:,} "
                            "draws fit")


@dataclass(frozen=True)
class Figure:
    """An estimate with its Monte Carlo standard error."""

    value: float
    se: float

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "se": self.se}


@dataclass
class VoiResult:
    """The value of information of a portfolio decision (see the module docstring)."""

    draws: int
    solved_draws: int
    evpi: Figure
    expected_value_now: float
    mean_optimal_plan: tuple[str, ...]
    hypotheses: list[dict[str, Any]]
    experiments: list[dict[str, Any]]
    core_margin: dict[str, Any]
    experimental_share: dict[str, Any]
    method: str
    candidates: int
    evpi_shortfall: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (the shape stored on a run as ``robust["voi"]``)."""
        return _json_safe({
            "draws": self.draws, "solved_draws": self.solved_draws,
            "evpi": self.evpi.to_dict(), "evpi_shortfall": self.evpi_shortfall,
            "expected_value_now": self.expected_value_now,
            "mean_optimal_plan": list(self.mean_optimal_plan),
            "hypotheses": self.hypotheses, "experiments": self.experiments,
            "core_margin": self.core_margin, "experimental_share": self.experimental_share,
            "method": self.method, "candidates": self.candidates, "checks": self.checks,
            "seconds": self.seconds, "notes": self.notes,
            "estimators": ESTIMATORS,
        })


ESTIMATORS = {
    "evpi": "mean over draws of (the draw's re-solved optimum - the mean-optimal plan's value "
            "in that draw)",
    "evppi": "mean over draws of the best plan's gain when the hypothesis's items take the "
             "draw's values and the others their means (items are independent in the draws)",
    "evsi": "preposterior: the hypothesis's items at mean + sqrt(r) x the draw's deviation, "
            "r = prior_sd^2 / (prior_sd^2 + se^2), prior sd from the hypothesis's lift interval "
            "(90%), se from the power calculation at the planned sample size",
    "se": "Monte Carlo standard error: sd of the per-draw gains / sqrt(draws)",
    "experimental_share": "experiments in order of EVSI per cost, funded while EVSI per cost "
                          "is at least the value per cost of the last core item in the "
                          "mean-optimal plan; their cost as a share of the budget",
}


def _se(gains: np.ndarray) -> float:
    return float(gains.std(ddof=1) / math.sqrt(len(gains))) if len(gains) > 1 else 0.0


class _Solver:
    """Re-solves the loaded model for a value vector: the maximum, and the chosen mask."""

    def __init__(self, problem: Problem, sampled: Sampled | None) -> None:
        if sampled is not None:
            self.form, self.session = sampled.form, sampled.session
            self.start: np.ndarray | None = sampled.nominal_solution
        else:
            self.form = build(problem)
            self.session = Session(self.form, threads=problem.threads)
            self.start = None
        self.problem = problem
        self.cols = self.session.x_col
        self.valid = self.cols >= 0
        self.ids = np.array(self.form.ids)
        self.solves = 0
        self.seconds = 0.0

    def solve(self, values: np.ndarray, time_limit: float) -> np.ndarray | None:
        started = time.perf_counter()
        self.session.set_costs(self.cols[self.valid], values[self.valid])
        # Draws are off the model's value grid: solved to robust mode's relative gap.
        outcome = self.session.optimize(time_limit=max(0.05, time_limit),
                                        gap=max(self.problem.gap, DRAW_GAP), start=self.start,
                                        grid=False)
        self.solves += 1
        self.seconds += time.perf_counter() - started
        if outcome.col_value is None:
            return None
        if self.start is None:
            self.start = outcome.col_value
        chosen, _ = chosen_from(self.form, self.session, outcome.col_value)
        return np.isin(self.ids, np.array(chosen)) if chosen else np.zeros(len(self.ids), bool)

    def per_solve(self) -> float:
        return self.seconds / self.solves if self.solves else 0.1


def sample(problem: Problem, draws: int, *, seed: int = 0, time_limit: float | None = None,
           values: np.ndarray | None = None, max_solves: int | None = None) -> Sampled:
    """Robust mode's draws (or the given ``values``, draws x items) with each draw's optimum,
    solved until ``time_limit`` (default the problem's): what ``value_of_information`` needs
    when no robust run supplies it."""
    if values is None:
        values = draw_values(problem, draws, seed)
    values = np.asarray(values, dtype=np.float64)
    solver = _Solver(problem, None)
    budget = problem.time_limit if time_limit is None else time_limit
    nominal = solver.solve(np.array([item.value for item in problem.items]), problem.time_limit)
    if nominal is None or solver.start is None:
        raise VoiError("budget", "the scenario has no feasible plan: nothing to value")
    limit = len(values) if max_solves is None else max(0, min(max_solves, len(values)))
    head, head_solved, _ = solve_draws(solver.form, solver.session, values[:limit],
                                       time.perf_counter() + budget, solver.start, budget)
    optimal = np.zeros(values.shape, dtype=bool)
    solved = np.zeros(len(values), dtype=bool)
    optimal[:limit], solved[:limit] = head, head_solved
    return Sampled(values=values, optimal=optimal, solved=solved, nominal=nominal,
                   form=solver.form, session=solver.session, nominal_solution=solver.start)


def value_of_information(problem: Problem, sampled: Sampled, *,
                         hypotheses: Sequence[Hypothesis] = (), tests: Sequence[Trial] = (),
                         time_limit: float | None = None, exact: bool | None = None,
                         checks: int = 30, seed: int = 0) -> VoiResult:
    """EVPI, each hypothesis's EVPPI and each experiment's EVSI with Monte Carlo errors, the
    experiments ranked by EVSI per cost and the experimental share where that falls to the core
    margin. ``exact`` None: exact re-solves when they fit ``time_limit``, else candidates."""
    started = time.perf_counter()
    budget = problem.time_limit if time_limit is None else float(time_limit)
    deadline = started + budget
    values = np.asarray(sampled.values, dtype=np.float64)
    n_draws, n = values.shape
    if n_draws < 2:
        raise VoiError("robust_draws", f"the value of information needs at least 2 robust draws, "
                                       f"got {n_draws}")
    mu = values.mean(axis=0)
    dev = values - mu
    if not np.any(dev):
        raise VoiError("value_low", "no item's value is uncertain (every value_low and "
                                    "value_high equals its value): there is no information "
                                    "to value")
    ids = [item.id for item in problem.items]
    index = {item_id: k for k, item_id in enumerate(ids)}
    notes: list[str] = []
    solver = _Solver(problem, sampled)

    # The best plan on today's information: optimal for the mean values.
    p_star = solver.solve(mu, problem.time_limit)
    if p_star is None:
        raise VoiError("budget", "the scenario has no feasible plan: nothing to value")
    e0 = float(mu @ p_star)

    # Candidate plans: each solved draw's optimum (most frequent first), nominal, mean-optimal,
    # and for draws left unsolved the feasible roundings of their LP relaxation (whose optimum
    # bounds the draw's maximum from above).
    solved = np.asarray(sampled.solved, dtype=bool)
    optimal = np.asarray(sampled.optimal, dtype=bool)
    upper = np.full(n_draws, np.nan)
    rounded: list[np.ndarray] = []
    if (~solved).any():
        lp_deadline = time.perf_counter() + 0.7 * max(0.0, deadline - time.perf_counter())
        upper, rounded = _lp_pass(solver, values, np.flatnonzero(~solved), lp_deadline)
    keys: dict[bytes, int] = {}
    masks: list[np.ndarray] = []
    counts: list[int] = []
    owner = np.full(n_draws, -1)
    for mask in (p_star, np.asarray(sampled.nominal, dtype=bool), *rounded):
        if mask.tobytes() not in keys:
            keys[mask.tobytes()] = len(masks)
            masks.append(mask)
            counts.append(0)
    for d in np.flatnonzero(solved):
        key = optimal[d].tobytes()
        if key not in keys:
            keys[key] = len(masks)
            masks.append(optimal[d])
            counts.append(0)
        counts[keys[key]] += 1
        owner[d] = keys[key]
    # p* stays first (row 0 is the plan every gain is measured against), the nominal second.
    order = sorted(range(len(masks)), key=lambda k: (k != 0, k > 1, -counts[k], k))
    order = order[:MAX_CANDIDATES]
    if len(masks) > MAX_CANDIDATES:
        notes.append(f"{len(masks)} distinct optima: the {MAX_CANDIDATES} most frequent are "
                     "the candidate plans")
    remap = {old: new for new, old in enumerate(order)}
    cand = np.array([masks[k] for k in order], dtype=np.float64)  # (K, n)
    cand_count = np.array([counts[k] for k in order])
    owner = np.array([remap.get(o, -1) for o in owner])
    z = cand @ mu  # each candidate's value at the means

    # EVPI: per draw, the re-solved optimum (solved) or the best candidate (unsolved).
    best = np.empty(n_draws)
    loo = np.full(n_draws, np.nan)
    for lo in range(0, n_draws, DRAW_BLOCK):
        totals = cand @ values[lo:lo + DRAW_BLOCK].T  # (K, block)
        best[lo:lo + len(totals.T)] = totals.max(axis=0)
        for j in range(totals.shape[1]):
            d = lo + j
            k = owner[d]
            if k >= 0 and cand_count[k] == 1:  # its own plan found on this draw only
                column = totals[:, j].copy()
                column[k] = -np.inf
                loo[d] = column.max()
            elif k >= 0:
                loo[d] = totals[k, j]
    exact_draw = np.where(solved, (optimal * values).sum(axis=1), -np.inf)
    best = np.maximum(best, exact_draw)
    base = values @ p_star
    gains = best - base
    evpi = Figure(float(gains.mean()), _se(gains))
    shortfall: dict[str, Any] = {"unsolved_draws": int((~solved).sum())}
    if (~solved).any():
        bound = np.where(solved, best, upper)
        if np.isfinite(bound).all():
            shortfall["evpi_upper"] = float((np.maximum(bound, best) - base).mean())
            shortfall["upper_note"] = ("unsolved draws at their LP relaxation's optimum, an "
                                       "upper bound: the EVPI lies between evpi and evpi_upper")
        missed = solved & np.isfinite(loo)
        if missed.sum() > 1:
            miss = (best - loo)[missed]
            shortfall.update(mean=float(miss.mean()), max=float(miss.max()),
                             note="leave-one-out: how far the other candidate plans fall short "
                                  "of a solved draw's optimum")
        notes.append(f"{int((~solved).sum())} of {n_draws} draws were not re-solved (time): "
                     "their maximum is the best candidate plan, a lower bound")

    # EVPPI and EVSI: one group of items per hypothesis, a shrink factor per figure.
    groups: list[tuple[str, np.ndarray, float]] = []  # (key, item columns, shrink)
    hyp_rows: list[dict[str, Any]] = []
    by_hyp: dict[str, Hypothesis] = {}
    for hyp in hypotheses:
        cols = np.array(sorted({index[i] for i in hyp.items if i in index}), dtype=np.int64)
        by_hyp[hyp.id] = hyp
        if not len(cols):
            notes.append(f"hypothesis {hyp.label or hyp.id}: no linked item in this run")
            continue
        groups.append((f"h:{hyp.id}", cols, 1.0))
    test_rows: list[dict[str, Any]] = []
    for test in tests:
        hyp = by_hyp.get(test.hypothesis)
        row: dict[str, Any] = {"id": test.id, "label": test.label, "hypothesis": test.hypothesis,
                               "se_lift": test.se, "cost": test.cost,
                               "prior_sd": hyp.lift_sd if hyp else None}
        test_rows.append(row)
        cols = np.array(sorted({index[i] for i in hyp.items if i in index}) if hyp else [],
                        dtype=np.int64)
        r = resolved_share(hyp.lift_sd, test.se) if hyp else 0.0
        row["resolved_share"] = r
        if not len(cols):
            row["note"] = "its hypothesis has no linked item in this run"
            continue
        if r == 0:
            row["note"] = "its hypothesis's lift has no interval: nothing to learn"
        groups.append((f"t:{test.id}", cols, math.sqrt(r)))

    pairs = len(groups) * n_draws
    if exact is None:
        probe = solver.per_solve()
        exact = pairs * probe <= 0.8 * max(0.0, deadline - time.perf_counter())
    method = "exact" if exact else "candidates"
    figures: dict[str, tuple[Figure, np.ndarray]] = {}
    unfinished = 0  # (group, draw) pairs the exact re-solves had no time for
    for key, cols, shrink in groups:
        gain = np.zeros(n_draws)
        if shrink > 0 and np.any(dev[:, cols]):
            a = cand[:, cols]  # (K, g)
            for lo in range(0, n_draws, DRAW_BLOCK):
                shifted = shrink * dev[lo:lo + DRAW_BLOCK, cols]  # (block, g)
                totals = z[:, None] + a @ shifted.T
                gain[lo:lo + len(shifted)] = totals.max(axis=0) - totals[0]
            if exact:
                exact_gain, done = _exact_gains(solver, mu, dev, cols, shrink, p_star, deadline)
                gain = np.maximum(gain, exact_gain)
                unfinished += n_draws - done
        figures[key] = (Figure(float(gain.mean()), _se(gain)), gain)

    if unfinished:
        method = "mixed"
        notes.append(f"the time limit stopped the exact re-solves: {unfinished} of {pairs} "
                     "(hypothesis or experiment, draw) pairs took the best candidate plan")
    check_info: dict[str, Any] = {"pairs": 0}
    if method != "exact" and groups:
        check_info = _checks(solver, mu, dev, groups, cand, z, p_star, checks, seed, deadline)

    for hyp in hypotheses:
        key = f"h:{hyp.id}"
        if key not in figures:
            continue
        fig = figures[key][0]
        hyp_rows.append({"id": hyp.id, "label": hyp.label,
                         "items": [ids[c] for c in sorted({index[i] for i in hyp.items
                                                           if i in index})],
                         "lift_sd": hyp.lift_sd, "evppi": fig.value, "se": fig.se,
                         "share_of_evpi": fig.value / evpi.value if evpi.value > 0 else None})
    hyp_rows.sort(key=lambda row: (-row["evppi"], row["id"]))
    for row in test_rows:
        key = f"t:{row['id']}"
        fig = figures[key][0] if key in figures else Figure(0.0, 0.0)
        row["evsi"], row["se"] = fig.value, fig.se
        cost = row["cost"]
        if cost is not None and cost > 0:
            row["evsi_per_cost"], row["evsi_per_cost_se"] = fig.value / cost, fig.se / cost
        else:
            row["evsi_per_cost"] = row["evsi_per_cost_se"] = None
    test_rows.sort(key=lambda row: (row["evsi_per_cost"] is None,
                                    -(row["evsi_per_cost"] or 0.0), -row["evsi"], row["id"]))
    for rank, row in enumerate(test_rows, 1):
        row["rank"] = rank if row["evsi_per_cost"] is not None else None

    margin = _core_margin(problem, mu, p_star)
    share = _experimental_share(problem, test_rows, margin, p_star)
    return VoiResult(
        draws=n_draws, solved_draws=int(solved.sum()), evpi=evpi, expected_value_now=e0,
        mean_optimal_plan=tuple(ids[k] for k in np.flatnonzero(p_star)),
        hypotheses=hyp_rows, experiments=test_rows, core_margin=margin,
        experimental_share=share, method=method, candidates=len(cand),
        evpi_shortfall=shortfall, checks=check_info,
        seconds=time.perf_counter() - started, notes=notes)


class _Feasible:
    """Which chosen sets (rows of a boolean matrix) meet every constraint of an unscheduled
    problem: the same rules as ``report.violations``, vectorized (no start quarters)."""

    def __init__(self, problem: Problem) -> None:
        items = problem.items
        index = {item.id: k for k, item in enumerate(items)}
        self.problem = problem
        self.cost = np.array([item.cost for item in items])
        self.roadmaps = {r: np.array([item.roadmap == r for item in items])
                         for r in problem.shares}
        self.effort = {}
        for team in problem.teams:
            cap = math.fsum(problem.capacity.get((team, q), 0.0) for q in problem.quarters)
            self.effort[team] = (np.array([item.effort.get(team, 0.0) for item in items]), cap)
        pairs = [(index[item.id], index[dep]) for item in items for dep in item.depends_on]
        self.dep = np.array(pairs, dtype=np.int64).reshape(-1, 2)
        self.groups = [np.array([index[i] for i in g]) for g in problem.exclusions if len(g) > 1]
        self.coverage = [(np.array([seg in item.segments for item in items]), k)
                         for seg, k in problem.min_coverage.items() if k > 0]
        self.must_do = np.array([item.must_do for item in items])
        self.must_not = np.array([item.must_not for item in items])

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        tol = 1e-9
        m = masks.astype(np.float64)
        spend = m @ self.cost
        ok = spend <= self.problem.budget * (1 + tol) + tol
        for roadmap, (lo, hi) in self.problem.shares.items():
            own = m @ (self.cost * self.roadmaps[roadmap])
            slack = tol * np.maximum(1.0, spend)
            ok &= (own >= lo * spend - slack) & (own <= hi * spend + slack)
        for effort, cap in self.effort.values():
            ok &= m @ effort <= cap * (1 + tol) + tol
        if len(self.dep):
            ok &= ~(masks[:, self.dep[:, 0]] & ~masks[:, self.dep[:, 1]]).any(axis=1)
        for group in self.groups:
            ok &= masks[:, group].sum(axis=1) <= 1
        for targets, k in self.coverage:
            ok &= masks[:, targets].sum(axis=1) >= k
        ok &= masks[:, self.must_do].all(axis=1) & ~masks[:, self.must_not].any(axis=1)
        return ok


def _lp_pass(solver: _Solver, values: np.ndarray, draws: np.ndarray,
             deadline: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per draw: its LP relaxation's optimum (an upper bound on its maximum) and the feasible
    roundings of the LP solution (its fractional items, when at most 4, tried in or out)."""
    problem = solver.problem
    upper = np.full(len(values), np.nan)
    plans: dict[bytes, np.ndarray] = {}
    cols, valid = solver.cols, solver.valid
    feasible = None if problem.schedule else _Feasible(problem)
    for d in draws:
        if time.perf_counter() >= deadline:
            break
        solver.session.set_costs(cols[valid], values[d][valid])
        status, objective, x, _, _ = solver.session.solve_lp()
        if status != "optimal" or objective is None:
            continue
        upper[d] = objective
        if feasible is None:
            continue  # a rounding needs start quarters: the bound only
        xi = np.where(valid, x[np.maximum(cols, 0)], 0.0)
        whole = xi > 1 - 1e-6
        fractional = np.flatnonzero((xi > 1e-6) & ~whole)[:4]
        combos = np.array([[bool(bits >> j & 1) for j in range(len(fractional))]
                           for bits in range(2 ** len(fractional))], dtype=bool)
        masks = np.repeat(whole[None, :], len(combos), axis=0)
        masks[:, fractional] = combos.reshape(len(combos), len(fractional))
        kept = masks[feasible(masks)]
        for mask in kept:
            plans.setdefault(mask.tobytes(), mask)
        if len(kept):
            filled = _fill(feasible, kept[int(np.argmax(kept @ values[d]))], values[d])
            plans.setdefault(filled.tobytes(), filled)
    return upper, list(plans.values())


def _fill(feasible: _Feasible, mask: np.ndarray, values: np.ndarray,
          tries: int = 40) -> np.ndarray:
    """Add the unchosen items of best value per cost that keep the plan feasible (the room a
    rounded-down LP solution leaves), at most ``tries`` attempts."""
    cost = np.maximum(feasible.cost, 1e-12)
    order = [k for k in np.argsort(-values / cost) if not mask[k] and values[k] > 0][:tries]
    mask = mask.copy()
    for k in order:
        mask[k] = True
        if not feasible(mask[None, :])[0]:
            mask[k] = False
    return mask


def _exact_gains(solver: _Solver, mu: np.ndarray, dev: np.ndarray, cols: np.ndarray,
                 shrink: float, p_star: np.ndarray, deadline: float) -> tuple[np.ndarray, int]:
    """Per draw, the exact re-solve's gain over ``p_star`` (0 where it was not re-solved: the
    deadline passed), and how many draws were re-solved."""
    gains = np.zeros(len(dev))
    for d in range(len(dev)):
        if time.perf_counter() >= deadline:
            return gains, d
        v = mu.copy()
        v[cols] += shrink * dev[d, cols]
        mask = solver.solve(v, min(solver.problem.time_limit,
                                   max(0.05, deadline - time.perf_counter())))
        if mask is not None:
            gains[d] = max(0.0, float(v @ mask - v @ p_star))
    return gains, len(dev)


def _checks(solver: _Solver, mu: np.ndarray, dev: np.ndarray,
            groups: list[tuple[str, np.ndarray, float]], cand: np.ndarray, z: np.ndarray,
            p_star: np.ndarray, checks: int, seed: int, deadline: float) -> dict[str, Any]:
    """Exact re-solves of randomly picked (group, draw) pairs: how low the candidates ran."""
    rng = np.random.default_rng(seed)
    live = [g for g in groups if g[2] > 0]
    misses: list[float] = []
    for _ in range(checks if live else 0):
        if time.perf_counter() >= deadline:
            break
        _, cols, shrink = live[int(rng.integers(len(live)))]
        d = int(rng.integers(len(dev)))
        v = mu.copy()
        v[cols] += shrink * dev[d, cols]
        mask = solver.solve(v, min(solver.problem.time_limit,
                                   max(0.05, deadline - time.perf_counter())))
        if mask is None:
            continue
        candidate_best = float((z + cand[:, cols] @ (shrink * dev[d, cols])).max())
        misses.append(max(0.0, float(v @ mask) - candidate_best))
    if not misses:
        return {"pairs": 0}
    return {"pairs": len(misses), "mean_shortfall": float(np.mean(misses)),
            "max_shortfall": float(np.max(misses)),
            "note": "exact re-solves of random (hypothesis or experiment, draw) pairs: by how "
                    "much the best candidate plan fell short of the true optimum; EVPPI and "
                    "EVSI may be low by about the mean"}


def _core_margin(problem: Problem, mu: np.ndarray, p_star: np.ndarray) -> dict[str, Any]:
    """Value per unit of budget of the last core item in the mean-optimal plan."""
    best: tuple[float, str] | None = None
    for k, item in enumerate(problem.items):
        if item.roadmap == CORE and p_star[k] and item.cost > 0:
            ratio = float(mu[k]) / item.cost
            if best is None or ratio < best[0]:
                best = (ratio, item.id)
    if best is None:
        return {"value_per_cost": None, "item": None,
                "note": "no core item with a cost is in the mean-optimal plan"}
    return {"value_per_cost": best[0], "item": best[1],
            "note": "mean value per unit of cost of the last core item in the mean-optimal "
                    "plan (the core roadmap's margin)"}


def _experimental_share(problem: Problem, rows: list[dict[str, Any]], margin: dict[str, Any],
                        p_star: np.ndarray) -> dict[str, Any]:
    spend = sum(item.cost for k, item in enumerate(problem.items) if p_star[k])
    experimental = sum(item.cost for k, item in enumerate(problem.items)
                       if p_star[k] and item.roadmap == "experimental")
    bounds = problem.shares.get("experimental")
    out: dict[str, Any] = {"plan_share": experimental / spend if spend > 0 else None,
                           "bounds": list(bounds) if bounds else None}
    lam = margin.get("value_per_cost")
    costed = [r for r in rows if r["evsi_per_cost"] is not None]
    if lam is None or not costed or problem.budget <= 0:
        out.update(share=None, experiments=[],
                   note="needs a core margin and experiments with a cost")
        return out

    def share_at(shift: float) -> tuple[float, list[str]]:
        chosen = [r for r in costed if (r["evsi"] + shift * r["se"]) / r["cost"] >= lam]
        return sum(r["cost"] for r in chosen) / problem.budget, [r["id"] for r in chosen]

    share, chosen = share_at(0.0)
    out.update(share=share, low=share_at(-2.0)[0], high=share_at(2.0)[0], experiments=chosen,
               core_value_per_cost=lam,
               note="The experiments whose EVSI per cost is at least the core margin's value "
                    "per cost, their cost as a share of the budget; low/high move every EVSI "
                    "by -2/+2 standard errors")
    return out
