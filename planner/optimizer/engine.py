"""Solve a built model with HiGHS: an LP relaxation, a reduced-cost core MIP, a proof.

PuLP builds the model and runs the first solve (the LP relaxation, through ``pulp.HiGHS``), which
loads it into a ``highspy.Highs`` object; every later change (budget, item values, forced items,
switched-off constraints) is applied to that solver model in place, so re-solves never rebuild.

Why a core: portfolio MILPs are knapsack-like. On real-sized portfolios their LP bound is within
~0.01% of the optimum, but HiGHS's primal heuristics can take many seconds to find an incumbent
within 1e-4 of it. Reduced-cost fixing closes that gap directly: with LP optimum
``z_lp`` and reduced costs ``d``, any solution that moves a binary ``j`` off its LP value is worth
at most ``z_lp - |d_j|``. So fixing every binary with ``|d_j| > tau`` at its LP value, solving the
small MIP over the rest (the *core*) and checking that ``z_lp - min |d_fixed| <= incumbent``
gives a proven bound for the whole problem: ``max(core bound, z_lp - min |d_fixed|)``. When the
core is not enough (weak LP bound, infeasible core) the full MIP runs, warm-started.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import highspy
import numpy as np
import pulp

from .formulate import Formulation, GroupKey

if not hasattr(pulp, "LpSolveStats"):  # PuLP 3 solves return an int and build models differently
    raise ImportError(f"planner.optimizer needs PuLP >= 4.2 with HiGHS (PuLP[highs]); "
                      f"found PuLP {getattr(pulp, '__version__', '?')}")

_INT_TOL = 1e-6
# A bound this many value units above the incumbent still proves it exact (totals move in whole
# units); a hair under 1 leaves room for the solver's own tolerances.
_PROOF_UNITS = 0.99
_MS = highspy.HighsModelStatus
# Every variable is bounded, so "unbounded or infeasible" can only mean infeasible.
_INFEASIBLE = (_MS.kInfeasible, _MS.kUnboundedOrInfeasible)

# highspy's global thread scheduler keeps the thread count of its first run; asking a later
# solver for another count fails the run, so the scheduler is reset when the count changes.
_scheduler_threads: list[int | None] = [None]


def _use_threads(threads: int | None) -> None:
    if threads is not None and _scheduler_threads[0] != threads:
        highspy.Highs.resetGlobalScheduler(True)
        _scheduler_threads[0] = threads


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """(bound - objective) / |objective|, 0 when they agree to 1e-9 (maximization)."""
    if objective is None or bound is None:
        return None
    diff = bound - objective
    scale = max(abs(objective), 1e-9)
    if diff <= 1e-9 * max(1.0, abs(objective)):
        return 0.0
    return diff / scale


@dataclass
class Outcome:
    """One optimization run: its status, best solution (all columns) and proven bound."""

    status: str  # optimal | feasible | infeasible | not_solved
    objective: float | None = None
    bound: float | None = None
    gap: float | None = None
    col_value: np.ndarray | None = None
    lp_objective: float | None = None
    method: str = ""
    solver_status: str = ""
    core_size: int = 0
    seconds: float = 0.0
    row_dual: np.ndarray | None = None
    col_dual: np.ndarray | None = None  # the LP relaxation's reduced costs
    notes: list[str] = field(default_factory=list)

    @property
    def proven(self) -> bool:
        """Whether the objective is proven optimal (within the requested gap)."""
        return self.status == "optimal"


class Session:
    """A model loaded into HiGHS once, solved many times with small changes in between."""

    def __init__(self, form: Formulation, *, threads: int | None = None, seed: int = 0,
                 time_limit: float | None = None) -> None:
        self.form = form
        self.threads = threads
        self.seed = seed
        self.unit = form.problem.value_unit or 0.01
        prob = form.prob
        _use_threads(threads)
        options: dict[str, object] = {"random_seed": seed}
        # The first solve goes through PuLP: the LP relaxation (mip=False), which also loads the
        # model into a highspy object we keep. PuLP 4 reports why the solver stopped
        # (stats.status, an LpSolveStatus) and whether a solution came back (has_solution).
        self.first_stats = prob.solve(pulp.HiGHS(mip=False, msg=False, threads=threads,
                                                 timeLimit=time_limit, **options))
        self.lp: highspy.Highs = prob.solverModel
        self.lp_fresh = True
        columns = prob.exported_variables()
        col_of = {var.id: j for j, var in enumerate(columns)}
        self.col_of = col_of
        self.n_cols = len(columns)
        self.row_of = {con.id: k for k, con in enumerate(prob.constraints())}
        self.x_col = np.array([col_of.get(form.x[i].id, -1) for i in form.ids], dtype=np.int64)
        ints = [c for c in self.x_col.tolist() if c >= 0]
        self.y_cols: dict[str, list[tuple[int, int]]] = {}
        for item_id, starts in form.starts.items():
            pairs = [(s, col_of[var.id]) for s, var in starts if var.id in col_of]
            self.y_cols[item_id] = pairs
            ints.extend(c for _, c in pairs)
        self.int_cols = np.array(sorted(set(ints)), dtype=np.int32)
        lp_model = self.lp.getLp()
        self.lower = np.array(lp_model.col_lower_, dtype=np.float64)
        self.upper = np.array(lp_model.col_upper_, dtype=np.float64)
        self.cost = np.array(lp_model.col_cost_, dtype=np.float64)
        self.row_lower = np.array(lp_model.row_lower_, dtype=np.float64)
        self.row_upper = np.array(lp_model.row_upper_, dtype=np.float64)
        # The MIP twin: same model, integrality on. Keeping the LP object separate keeps its
        # simplex basis warm across re-solves.
        self.mip = highspy.Highs()
        self._configure(self.mip)
        self.mip.passModel(lp_model)
        if len(self.int_cols):
            self.mip.changeColsIntegrality(
                len(self.int_cols), self.int_cols,
                np.full(len(self.int_cols), highspy.HighsVarType.kInteger))
        self._configure(self.lp)

    def _configure(self, h: highspy.Highs) -> None:
        h.setOptionValue("output_flag", False)
        h.setOptionValue("random_seed", self.seed)
        if self.threads is not None:
            h.setOptionValue("threads", int(self.threads))

    # ----- changes applied to both solver objects ---------------------------------------------
    def rows(self, group: GroupKey) -> list[int]:
        """Row indices of a constraint group."""
        return [self.row_of[con.id] for con in self.form.rows.get(group, [])]

    def set_row_bounds(self, row: int, lower: float, upper: float) -> None:
        """Change one row's bounds (use +-inf to switch it off)."""
        self.row_lower[row], self.row_upper[row] = lower, upper
        self.lp_fresh = False
        for h in (self.lp, self.mip):
            h.changeRowBounds(row, lower, upper)

    def set_col_bounds(self, col: int, lower: float, upper: float) -> None:
        """Change one column's bounds (the problem's own, e.g. forcing an item in)."""
        self.lower[col], self.upper[col] = lower, upper
        self.lp_fresh = False
        for h in (self.lp, self.mip):
            h.changeColBounds(col, lower, upper)

    def set_coeff(self, row: int, col: int, value: float) -> None:
        """Change one matrix coefficient (a share bound's weight on a roadmap's spend)."""
        self.lp_fresh = False
        for h in (self.lp, self.mip):
            h.changeCoeff(row, col, value)

    def set_costs(self, cols: np.ndarray, costs: np.ndarray) -> None:
        """Change objective coefficients of several columns."""
        cols = np.asarray(cols, dtype=np.int32)
        costs = np.asarray(costs, dtype=np.float64)
        self.cost[cols] = costs
        self.lp_fresh = False
        for h in (self.lp, self.mip):
            h.changeColsCost(len(cols), cols, costs)

    # ----- solving ----------------------------------------------------------------------------
    def solve_lp(self) -> tuple[str, float | None, np.ndarray, np.ndarray, np.ndarray]:
        """The LP relaxation: (status, objective, col values, reduced costs, row duals)."""
        if self.lp_fresh:
            self.lp_fresh = False  # PuLP's first solve already ran it on the unchanged model
            stats = self.first_stats
            # Both halves of PuLP 4's answer: why HiGHS stopped, and whether a solution came back.
            if stats.status == pulp.LpSolveStatus.Infeasible:
                return "infeasible", None, np.zeros(0), np.zeros(0), np.zeros(0)
            if stats.status != pulp.LpSolveStatus.Optimal or not stats.has_solution:
                return "not_solved", None, np.zeros(0), np.zeros(0), np.zeros(0)
        else:
            self.lp.run()
            model_status = self.lp.getModelStatus()
            if model_status in _INFEASIBLE:
                return "infeasible", None, np.zeros(0), np.zeros(0), np.zeros(0)
            if model_status != _MS.kOptimal:
                return "not_solved", None, np.zeros(0), np.zeros(0), np.zeros(0)
        solution = self.lp.getSolution()
        return ("optimal", float(self.lp.getInfo().objective_function_value),
                np.asarray(solution.col_value, dtype=np.float64),
                np.asarray(solution.col_dual, dtype=np.float64),
                np.asarray(solution.row_dual, dtype=np.float64))

    def verdict(self, z: float | None, bound: float | None, gap: float,
                grid: bool) -> tuple[bool, str]:
        """(stop, status) for an incumbent ``z`` under a valid ``bound``.

        On the model's value grid every plan's total is a multiple of the unit, so a bound less
        than one unit above ``z`` proves that no plan is worth more: 'optimal' means exactly
        that. Off the grid (robust draws), 'optimal' means within the relative ``gap``.
        """
        if z is None or bound is None:
            return False, "feasible"
        rel = relative_gap(z, bound)
        within = rel is not None and rel <= gap
        if grid:
            exact = bound - z < _PROOF_UNITS * self.unit
            return exact or within, "optimal" if exact else "feasible"
        return within, "optimal" if within else "feasible"

    def _run_mip(self, time_limit: float, gap: float,
                 start: np.ndarray | None, grid: bool = True) -> tuple[object, float | None,
                                                                       float | None,
                                                                       np.ndarray | None]:
        h = self.mip
        h.setOptionValue("time_limit", max(0.01, float(time_limit)))
        h.setOptionValue("mip_rel_gap", float(gap))
        # On the value grid HiGHS may stop once its gap is under one unit: that is the proof.
        h.setOptionValue("mip_abs_gap", _PROOF_UNITS * self.unit if grid else 1e-6)
        if start is not None:
            h.setSolution(self.n_cols, np.arange(self.n_cols, dtype=np.int32),
                          np.asarray(start, dtype=np.float64))
        h.run()
        status = h.getModelStatus()
        info = h.getInfo()
        objective = float(info.objective_function_value)
        # A usable incumbent: HiGHS says a primal solution is feasible (2) and finite.
        has_solution = info.primal_solution_status == 2 and math.isfinite(objective)
        bound = float(info.mip_dual_bound) if math.isfinite(info.mip_dual_bound) else None
        values = np.asarray(h.getSolution().col_value, dtype=np.float64) if has_solution \
            else None
        return status, (objective if has_solution else None), bound, values

    def _set_mip_int_bounds(self, lower: np.ndarray, upper: np.ndarray) -> None:
        cols = self.int_cols
        self.mip.changeColsBounds(len(cols), cols, lower, upper)

    def optimize(self, *, time_limit: float, gap: float, core: bool = True,
                 start: np.ndarray | None = None, grid: bool = True) -> Outcome:
        """Maximize the current objective: LP, then core MIP with a proof, else full MIP.

        ``grid``: the objective's coefficients are on the model's value grid (the item values
        as built), so 'optimal' is the exact optimum; False for other objectives (robust
        draws), where 'optimal' means within ``gap``.
        """
        started = time.perf_counter()
        deadline = started + time_limit
        lp_status, z_lp, x_lp, d_lp, row_dual = self.solve_lp()
        if lp_status == "infeasible":
            return Outcome("infeasible", method="lp", solver_status="LP relaxation infeasible",
                           seconds=time.perf_counter() - started)
        best_x: np.ndarray | None = None
        best_z: float | None = None
        core_bound: float | None = None  # a valid bound on the whole problem from the core
        notes: list[str] = []
        if lp_status == "optimal":
            ints = self.int_cols
            x_int = x_lp[ints]
            frac = np.abs(x_int - np.round(x_int)) > _INT_TOL
            if not frac.any():
                # The relaxation is integral: it is the optimum.
                return Outcome("optimal", objective=z_lp, bound=z_lp, gap=0.0, col_value=x_lp,
                               lp_objective=z_lp, method="lp", row_dual=row_dual, col_dual=d_lp,
                               solver_status="LP relaxation integral",
                               seconds=time.perf_counter() - started)
            if core:
                result = self._core_loop(z_lp, x_lp, d_lp, frac, deadline, gap, start, grid)
                if result is not None:
                    result.row_dual, result.col_dual = row_dual, d_lp
                    result.lp_objective = z_lp
                    result.seconds = time.perf_counter() - started
                    if self.verdict(result.objective, result.bound, gap, grid)[0]:
                        return result
                    best_x, best_z, core_bound = result.col_value, result.objective, result.bound
                    notes.extend(result.notes)
        # The full MIP, warm-started from the best solution found so far.
        self._set_mip_int_bounds(self.lower[self.int_cols], self.upper[self.int_cols])
        remaining = deadline - time.perf_counter()
        warm = best_x if best_x is not None else start
        status, z, bound, values = self._run_mip(max(remaining, 0.05), gap, warm, grid)
        if best_x is not None and (z is None or (best_z is not None and best_z > z)):
            z, values = best_z, best_x
        if status in _INFEASIBLE:
            return Outcome("infeasible", method="mip", solver_status=str(status),
                           lp_objective=z_lp, row_dual=row_dual, col_dual=d_lp,
                           seconds=time.perf_counter() - started, notes=notes)
        if z is None:
            return Outcome("not_solved", bound=bound, method="mip", solver_status=str(status),
                           lp_objective=z_lp, row_dual=row_dual, col_dual=d_lp,
                           seconds=time.perf_counter() - started, notes=notes)
        # Every bound we have is valid for the whole problem: keep the tightest.
        valid = [b for b in (bound, z_lp, core_bound) if b is not None]
        bound = max(min(valid), z) if valid else z
        rel = relative_gap(z, bound)
        _, verdict = self.verdict(z, bound, gap, grid)
        return Outcome(verdict, objective=z, bound=bound, gap=rel,
                       col_value=values, lp_objective=z_lp, method="mip",
                       solver_status=str(status), row_dual=row_dual, col_dual=d_lp,
                       seconds=time.perf_counter() - started, notes=notes)

    def _core_loop(self, z_lp: float, x_lp: np.ndarray, d_lp: np.ndarray, frac: np.ndarray,
                   deadline: float, gap: float, start: np.ndarray | None,
                   grid: bool = True) -> Outcome | None:
        ints = self.int_cols
        lower, upper = self.lower[ints], self.upper[ints]
        fixable = (lower < upper) & ~frac
        n_fixable = int(fixable.sum())
        if n_fixable == 0:
            return None
        rounded = np.clip(np.round(x_lp[ints]), lower, upper)
        magnitude = np.abs(d_lp[ints])
        order = np.sort(magnitude[fixable])
        size = min(n_fixable, max(128, 4 * int(frac.sum()), len(ints) // 40))
        best_z, best_x, best_status, best_free = -math.inf, start, "", 0
        bound = z_lp
        try:
            for _attempt in range(8):
                if time.perf_counter() >= deadline:
                    break
                tau = order[size - 1]
                free = ~fixable | (magnitude <= tau)
                fixed = ~free
                self._set_mip_int_bounds(np.where(fixed, rounded, lower),
                                         np.where(fixed, rounded, upper))
                # Half the remaining time per attempt: a core that turns out hard must leave
                # time for a wider one or for the full MIP.
                status, z, core_bound, values = self._run_mip(
                    (deadline - time.perf_counter()) / 2, gap, best_x, grid)
                improved = z is not None and z > best_z + 1e-9 * max(1.0, abs(z))
                if z is not None:
                    # Moving any fixed binary is worth at most z_lp - min |d_fixed|; inside the
                    # core HiGHS proved core_bound. Every attempt's bound is valid: keep the least.
                    outside = z_lp - float(magnitude[fixed].min()) if fixed.any() else -math.inf
                    inside = core_bound if core_bound is not None else z_lp
                    bound = min(bound, max(inside, outside, z))
                    if z > best_z:
                        best_z, best_x = z, values
                        best_status, best_free = str(status), int(free.sum())
                    rel = relative_gap(best_z, bound)
                    stop, verdict = self.verdict(best_z, bound, gap, grid)
                    if stop:
                        return Outcome(
                            verdict, objective=best_z, bound=bound, gap=rel, col_value=best_x,
                            method="core", core_size=best_free,
                            solver_status=f"core MIP {best_status} "
                                          f"({best_free} of {len(ints)} binaries free)")
                if size >= n_fixable or size >= 0.5 * len(ints):
                    break
                # Widen the core so that what stays fixed provably cannot beat the incumbent.
                # While the incumbent improves, doubling keeps each MIP small (a better
                # incumbent shrinks the size the proof needs); once it stalls, go straight to
                # the proof's size rather than re-proving a core that cannot settle it.
                needed = z_lp - best_z
                count = int(np.searchsorted(order, needed, side="right")) + 1
                if improved and count > 2 * size:
                    size = min(n_fixable, 2 * size)
                elif z is None:
                    size = min(n_fixable, 2 * size)  # no solution in this core: widen it
                else:
                    size = min(n_fixable, max(count, size + 1))
        finally:
            self._set_mip_int_bounds(lower, upper)
        if best_z == -math.inf:
            return None
        return Outcome("feasible", objective=best_z, bound=bound,
                       gap=relative_gap(best_z, bound), col_value=best_x, method="core",
                       core_size=best_free, solver_status=f"core MIP {best_status}")
