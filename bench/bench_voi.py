"""Benchmark: the value of information of a portfolio decision (planner/optimizer/voi.py).

Requirement (issue 14): a 200-item portfolio with 50 hypotheses, 1,000 draws, within 60 s on
this machine, with its Monte Carlo error stated. Ours: robust mode's draws, each re-solved
exactly while ``SAMPLE_SECONDS`` last, then ``value_of_information`` (EVPI, the EVPPI of each
hypothesis, the EVSI of one designed experiment per hypothesis) within ``VOI_SECONDS``: draws
not re-solved are bounded by their LP relaxation (above) and the best candidate plan (below).

Anchor: the naive nested approach, one exact MIP re-solve per draw for the EVPI plus one per
(hypothesis, draw) and (experiment, draw) pair, i.e. draws x (1 + 2 x hypotheses) re-solves;
its time is the measured seconds of one exact re-solve (the mean over ``ANCHOR_SOLVES`` draws,
in the same run) times that count. The anchor is extrapolated, not run: at full scale it is
~100,000 re-solves.

    BENCH_SCALE=small .venv/bin/python bench/bench_voi.py   # 60 items, 15 hypotheses, 200 draws
    .venv/bin/python bench/bench_voi.py                     # 200 items, 50 hypotheses, 1,000 draws
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `planner` and `bench`

from bench import common as bc  # noqa: E402

SCRIPT = Path(__file__).resolve()
BENCH = "voi"
ANCHOR = "nested exact MIP re-solves (draws x (1 + 2 x hypotheses)), extrapolated"
SIZES = {"small": (60, 15, 200), "medium": (120, 30, 500), "full": (200, 50, 1_000)}
SECONDS_TARGET = 60.0
SAMPLE_SECONDS = {"small": 3.0, "medium": 8.0, "full": 10.0}
VOI_SECONDS = {"small": 7.0, "medium": 25.0, "full": 40.0}
ANCHOR_SOLVES = 5
SEED = 20260101
TARGET = ("value of information of N items, N/4 hypotheses, D draws in < 60 s with its Monte "
          "Carlo error stated (N = 200, D = 1,000 at full scale)")


def _instance(n: int, n_hyp: int) -> tuple[Any, list[Any], list[Any]]:
    import numpy as np

    from planner.optimizer import random_problem
    from planner.optimizer.voi import Hypothesis, Trial

    problem = random_problem(n, seed=SEED, time_limit=10.0)
    rng = np.random.default_rng(SEED)
    ids = [item.id for item in problem.items]
    order = rng.permutation(n)
    per = n // n_hyp
    hyps = [Hypothesis(id=f"H{h}", items=tuple(ids[k] for k in order[h * per:(h + 1) * per]),
                       lift_sd=float(rng.uniform(0.02, 0.08))) for h in range(n_hyp)]
    trials = [Trial(id=f"T{h}", hypothesis=f"H{h}", se=float(rng.uniform(0.01, 0.1)),
                    cost=float(rng.uniform(5, 50))) for h in range(n_hyp)]
    return problem, hyps, trials


def phase_ours(args: list[str]) -> dict[str, Any]:
    """Sample and re-solve draws for SAMPLE_SECONDS, then the value of information."""
    from planner.optimizer.voi import sample, value_of_information

    n, n_hyp, draws, scale = int(args[0]), int(args[1]), int(args[2]), args[3]
    problem, hyps, trials = _instance(n, n_hyp)
    with bc.Stopwatch() as watch:
        sampled = sample(problem, draws, time_limit=SAMPLE_SECONDS[scale])
        result = value_of_information(problem, sampled, hypotheses=hyps, tests=trials,
                                      time_limit=VOI_SECONDS[scale])
    data = result.to_dict()
    top = data["hypotheses"][0] if data["hypotheses"] else {}
    best = data["experiments"][0] if data["experiments"] else {}
    return {"seconds": watch.seconds, "cpu_seconds": watch.cpu_seconds,
            "voi_seconds": result.seconds, "solved_draws": result.solved_draws,
            "method": result.method, "candidates": result.candidates,
            "evpi": result.evpi.value, "evpi_se": result.evpi.se,
            "evpi_upper": result.evpi_shortfall.get("evpi_upper"),
            "evpi_loo_shortfall": result.evpi_shortfall.get("mean"),
            "checks": result.checks.get("pairs"),
            "check_mean_shortfall": result.checks.get("mean_shortfall"),
            "top_evppi": top.get("evppi"), "top_evppi_se": top.get("se"),
            "top_evsi_per_cost": best.get("evsi_per_cost"),
            "top_evsi_per_cost_se": best.get("evsi_per_cost_se"),
            "max_evppi_se": max((h["se"] for h in data["hypotheses"]), default=None),
            "max_evsi_se": max((x["se"] for x in data["experiments"]), default=None),
            "experimental_share": data["experimental_share"].get("share"),
            "expected_value_now": result.expected_value_now}


def phase_anchor(args: list[str]) -> dict[str, Any]:
    """One exact MIP re-solve per draw, timed on ANCHOR_SOLVES draws; extrapolated."""
    import time

    import numpy as np

    from planner.optimizer.robust import draw_values
    from planner.optimizer.voi import _Solver

    n, n_hyp, draws = int(args[0]), int(args[1]), int(args[2])
    problem, _, _ = _instance(n, n_hyp)
    values = draw_values(problem, ANCHOR_SOLVES, 1)
    solver = _Solver(problem, None)
    solver.solve(np.array([item.value for item in problem.items]), problem.time_limit)
    with bc.Stopwatch() as watch:
        started = time.perf_counter()
        for row in values:
            solver.solve(row, problem.time_limit)
        per_solve = (time.perf_counter() - started) / ANCHOR_SOLVES
    solves = draws * (1 + 2 * n_hyp)
    return {"seconds": per_solve * solves, "measured_seconds": watch.seconds,
            "cpu_seconds": watch.cpu_seconds * solves / ANCHOR_SOLVES,
            "per_solve": per_solve, "solves": solves}


def main() -> None:
    import os

    scale = bc.current_scale()
    n, n_hyp, draws = SIZES.get(scale.name, SIZES["full"])
    load_before = os.getloadavg()[0]
    bc.log(f"voi bench at scale {scale.name}: {n} items, {n_hyp} hypotheses, {draws} draws")
    args = (str(n), str(n_hyp), str(draws))
    anchor = bc.measure(SCRIPT, "anchor", *args)
    ours = bc.measure(SCRIPT, "ours", *args, scale.name)
    bc.log(f"ours {ours['seconds']:.1f}s: EVPI {ours['evpi']:.1f} +- {ours['evpi_se']:.1f} "
           f"(upper {ours['evpi_upper']}), {ours['solved_draws']} draws re-solved; anchor "
           f"{anchor['per_solve']:.3f}s x {anchor['solves']:,} = {anchor['seconds']:.0f}s")
    passed = ours["seconds"] < SECONDS_TARGET and ours["evpi_se"] is not None
    extra = {k: ours[k] for k in (
        "voi_seconds", "solved_draws", "method", "candidates", "evpi", "evpi_se", "evpi_upper",
        "evpi_loo_shortfall", "checks", "check_mean_shortfall", "top_evppi", "top_evppi_se",
        "max_evppi_se", "top_evsi_per_cost", "top_evsi_per_cost_se", "max_evsi_se",
        "experimental_share", "expected_value_now")}
    bc.emit(BENCH, seconds=ours["seconds"], peak_mb=ours["peak_mb"], anchor=ANCHOR,
            anchor_seconds=anchor["seconds"], target=TARGET, passed=passed, scale=scale.name,
            items=n, hypotheses=n_hyp, draws=draws, cpu_seconds=round(ours["cpu_seconds"], 3),
            anchor_per_solve=round(anchor["per_solve"], 4), anchor_solves=anchor["solves"],
            anchor_peak_mb=anchor["peak_mb"], loadavg_1m_before=round(load_before, 2),
            code=bc.fingerprint("planner/optimizer/voi.py", "planner/optimizer/robust.py"),
            **extra)


if __name__ == "__main__":
    if not bc.phase_main({"ours": phase_ours, "anchor": phase_anchor}):
        main()
