"""Value of information (planner/optimizer/voi.py) against closed forms and brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import norm

from planner.optimizer import Item, Problem
from planner.optimizer.voi import (
    Hypothesis,
    Trial,
    VoiError,
    design_se,
    lift_sd,
    over_budget,
    resolved_share,
    sample,
    value_of_information,
)


def two_option_evpi(delta: float, sigma: float) -> float:
    """E[max(0, X)] - max(0, delta) for X ~ N(delta, sigma^2): sigma phi(d/s) - |d| Phi(-|d|/s)."""
    return sigma * norm.pdf(delta / sigma) - abs(delta) * norm.cdf(-abs(delta) / sigma)


def strata(n: int) -> np.ndarray:
    """Standard normal quantiles at the midpoints of n equal-probability strata, in a fixed
    shuffled order (so the first draws, the ones re-solved, are spread over the range)."""
    return np.random.default_rng(3).permutation(norm.ppf((np.arange(n) + 0.5) / n))


def test_two_option_formula_matches_numerical_integration():
    # The closed form derived by hand, checked once against direct integration.
    from scipy.integrate import quad

    for delta, sigma in ((0.7, 2.0), (-1.5, 1.0), (0.0, 3.0)):
        integral = quad(lambda x, d=delta, s=sigma: max(0.0, x) * norm.pdf(x, d, s),
                        -50, 50, points=[0.0], limit=200)[0]
        assert two_option_evpi(delta, sigma) == pytest.approx(integral - max(0.0, delta),
                                                              abs=1e-9)


@pytest.mark.parametrize("delta", [0.8, -0.5])
def test_evpi_and_evsi_of_a_go_no_go_item_match_the_normal_closed_form(delta):
    sigma, prior_sd, se = 2.0, 0.04, 0.03
    problem = Problem(items=(Item(id="B", roadmap="core", cost=1.0, value=delta),),
                      budget=1.0, shares={}, gap=0.0)
    values = (delta + sigma * strata(20_000))[:, None]
    sampled = sample(problem, 0, values=values, time_limit=30, max_solves=40)
    result = value_of_information(
        problem, sampled, hypotheses=[Hypothesis("h", ("B",), lift_sd=prior_sd)],
        tests=[Trial("t", "h", se=se, cost=0.5)], exact=False)
    expected = two_option_evpi(delta, sigma)
    assert result.evpi.value == pytest.approx(expected, rel=2e-4)
    assert result.hypotheses[0]["evppi"] == pytest.approx(expected, rel=2e-4)
    r = prior_sd ** 2 / (prior_sd ** 2 + se ** 2)  # 0.64
    assert r == pytest.approx(0.64)
    evsi = two_option_evpi(delta, math.sqrt(r) * sigma)
    assert result.experiments[0]["evsi"] == pytest.approx(evsi, rel=2e-4)
    assert result.experiments[0]["evsi_per_cost"] == pytest.approx(evsi / 0.5, rel=2e-4)
    assert result.expected_value_now == pytest.approx(max(delta, 0.0), abs=1e-9)
    assert result.mean_optimal_plan == (("B",) if delta > 0 else ())


def test_choice_between_two_exclusive_options_matches_the_closed_form():
    # A and B exclude each other; both far above zero, so the choice is A or B. The gain of
    # knowing is the two-option form on their difference B - A ~ N(dB - dA, sA^2 + sB^2);
    # knowing B alone: B - E[A] ~ N(dB - dA, sB^2).
    d_a, d_b, s_a, s_b = 10.0, 9.4, 0.8, 1.5
    problem = Problem(items=(Item(id="A", roadmap="core", cost=1.0, value=d_a),
                             Item(id="B", roadmap="core", cost=1.0, value=d_b)),
                      budget=2.0, shares={}, exclusions=(("A", "B"),), gap=0.0)
    grid = strata(1000)
    a, b = np.meshgrid(d_a + s_a * grid, d_b + s_b * grid, indexing="ij")
    values = np.random.default_rng(4).permutation(np.column_stack([a.ravel(), b.ravel()]))
    sampled = sample(problem, 0, values=values, time_limit=30, max_solves=40)
    result = value_of_information(
        problem, sampled, exact=False,
        hypotheses=[Hypothesis("ha", ("A",), lift_sd=0.1), Hypothesis("hb", ("B",),
                                                                      lift_sd=0.1)])
    both = math.hypot(s_a, s_b)
    assert result.evpi.value == pytest.approx(two_option_evpi(d_b - d_a, both), rel=1e-3)
    evppi = {row["id"]: row["evppi"] for row in result.hypotheses}
    assert evppi["hb"] == pytest.approx(two_option_evpi(d_b - d_a, s_b), rel=1e-3)
    assert evppi["ha"] == pytest.approx(two_option_evpi(d_b - d_a, s_a), rel=1e-3)
    assert result.mean_optimal_plan == ("A",)


def brute_force(problem: Problem, values: np.ndarray, groups: dict[str, tuple[list[int], float]]):
    """EVPI and per-group preposterior gains by enumerating every feasible subset."""
    items = problem.items
    index = {item.id: k for k, item in enumerate(items)}
    plans = []
    for bits in itertools.product([0, 1], repeat=len(items)):
        chosen = [k for k, b in enumerate(bits) if b]
        spend = sum(items[k].cost for k in chosen)
        if spend > problem.budget + 1e-9:
            continue
        if any(items[k].must_do and not bits[k] for k in range(len(items))):
            continue
        if any(bits[k] and not bits[index[dep]] for k in chosen for dep in items[k].depends_on):
            continue
        if any(sum(bits[index[i]] for i in group) > 1 for group in problem.exclusions):
            continue
        ok = True
        for roadmap, (lo, hi) in problem.shares.items():
            own = sum(items[k].cost for k in chosen if items[k].roadmap == roadmap)
            if own < lo * spend - 1e-9 or own > hi * spend + 1e-9:
                ok = False
        if ok:
            plans.append(np.array(bits, dtype=float))
    plans_arr = np.array(plans)
    mu = values.mean(axis=0)
    e0 = (plans_arr @ mu).max()
    evpi = (values @ plans_arr.T).max(axis=1).mean() - e0
    out = {}
    for key, (cols, shrink) in groups.items():
        shifted = np.tile(mu, (len(values), 1))
        shifted[:, cols] += shrink * (values[:, cols] - mu[cols])
        out[key] = (shifted @ plans_arr.T).max(axis=1).mean() - e0
    return e0, evpi, out, len(plans)


def small_portfolio() -> Problem:
    rng = np.random.default_rng(7)
    items = []
    for k in range(8):
        value = float(rng.uniform(5, 20))
        items.append(Item(id=f"I{k}", roadmap=["core", "core", "experimental"][k % 3],
                          cost=float(rng.uniform(3, 9)), value=value,
                          value_low=value * 0.5, value_high=value * 1.6,
                          depends_on=("I1",) if k == 4 else ()))
    return Problem(items=tuple(items), budget=25.0, exclusions=(("I2", "I5"),),
                   shares={"core": (0.5, 0.9), "experimental": (0.1, 0.5)}, gap=0.0)


def test_small_portfolio_matches_brute_force_over_every_subset():
    problem = small_portfolio()
    rng = np.random.default_rng(11)
    mode = np.array([item.value for item in problem.items])
    values = mode * rng.uniform(0.4, 1.7, (60, len(mode)))  # a fixed draw matrix
    hyps = [Hypothesis("h1", ("I0", "I3"), lift_sd=0.05), Hypothesis("h2", ("I5",), 0.05),
            Hypothesis("h3", ("I2", "I4", "I7"), lift_sd=0.02)]
    tests = [Trial("t1", "h1", se=0.05, cost=2.0), Trial("t3", "h3", se=0.01, cost=1.0)]
    r1, r3 = resolved_share(0.05, 0.05), resolved_share(0.02, 0.01)
    assert (r1, r3) == (pytest.approx(0.5), pytest.approx(0.8))
    e0, evpi, gains, count = brute_force(problem, values, {
        "h1": ([0, 3], 1.0), "h2": ([5], 1.0), "h3": ([2, 4, 7], 1.0),
        "t1": ([0, 3], math.sqrt(r1)), "t3": ([2, 4, 7], math.sqrt(r3))})
    assert count > 20  # the constraints leave a real choice
    sampled = sample(problem, 0, values=values, time_limit=60)
    assert sampled.solved.all()
    exact = value_of_information(problem, sampled, hypotheses=hyps, tests=tests, exact=True,
                                 time_limit=120)
    assert exact.method == "exact"
    assert exact.expected_value_now == pytest.approx(e0, abs=1e-6)
    assert exact.evpi.value == pytest.approx(evpi, abs=1e-6)
    assert evpi > 0.5
    evppi = {row["id"]: row["evppi"] for row in exact.hypotheses}
    for key in ("h1", "h2", "h3"):
        assert evppi[key] == pytest.approx(gains[key], abs=1e-6)
    evsi = {row["id"]: row["evsi"] for row in exact.experiments}
    assert evsi["t1"] == pytest.approx(gains["t1"], abs=1e-6)
    assert evsi["t3"] == pytest.approx(gains["t3"], abs=1e-6)
    # The candidate approximation can only be low, and EVPI (every draw solved) is exact.
    approx = value_of_information(problem, sampled, hypotheses=hyps, tests=tests, exact=False,
                                  checks=20)
    assert approx.evpi.value == pytest.approx(evpi, abs=1e-6)
    for row in approx.hypotheses:
        assert row["evppi"] <= gains[row["id"]] + 1e-9
    assert approx.checks["pairs"] == 20
    # Monte Carlo error: the sd of the per-draw gains over sqrt(draws), recomputed here.
    plans = value_of_information(problem, sampled, exact=True).evpi
    assert plans.se > 0


def test_monte_carlo_error_is_the_standard_error_of_per_draw_gains():
    problem = Problem(items=(Item(id="B", roadmap="core", cost=1.0, value=0.0),),
                      budget=1.0, shares={}, gap=0.0)
    values = np.array([[-2.0], [1.0], [3.0], [-2.0]])  # mean 0: today's plan is indifferent
    sampled = sample(problem, 0, values=values, time_limit=10)
    result = value_of_information(problem, sampled, exact=True)
    mean_plan_value = 0.0  # whether or not B is chosen at the mean, it is worth 0
    gains = np.maximum(values[:, 0], 0.0) - (values[:, 0] if result.mean_optimal_plan else 0.0)
    assert result.expected_value_now == mean_plan_value
    assert result.evpi.value == pytest.approx(gains.mean())
    assert result.evpi.se == pytest.approx(gains.std(ddof=1) / 2.0)


def test_experiments_are_ranked_by_evsi_per_cost_and_the_share_stops_at_the_core_margin():
    # Core item C: value 10 for cost 10 (1 per unit). Three go/no-go experimental items each
    # with a test; the share counts the tests whose EVSI per cost is at least 1.
    items = [Item(id="C", roadmap="core", cost=10.0, value=10.0)]
    for k in range(3):
        items.append(Item(id=f"E{k}", roadmap="experimental", cost=1.0, value=0.0,
                          value_low=-3.0, value_high=3.0))
    problem = Problem(items=tuple(items), budget=20.0, shares={}, gap=0.0)
    z = strata(4000)
    values = np.column_stack([np.full(4000, 10.0)] + [3.0 / 1.6448536269514722 * z] * 3)
    sampled = sample(problem, 0, values=values, time_limit=30, max_solves=40)
    hyps = [Hypothesis(f"h{k}", (f"E{k}",), lift_sd=0.1) for k in range(3)]
    tests = [Trial("cheap", "h0", se=0.1, cost=0.2), Trial("dear", "h1", se=0.1, cost=5.0),
             Trial("free", "h2", se=0.1, cost=None)]
    result = value_of_information(problem, sampled, hypotheses=hyps, tests=tests, exact=False)
    sigma = 3.0 / 1.6448536269514722
    evsi = two_option_evpi(0.0, math.sqrt(0.5) * sigma)  # r = 0.5
    rows = {row["id"]: row for row in result.experiments}
    assert [row["id"] for row in result.experiments] == ["cheap", "dear", "free"]
    assert rows["cheap"]["evsi"] == pytest.approx(evsi, rel=1e-3)
    assert rows["cheap"]["rank"] == 1 and rows["free"]["rank"] is None
    assert result.core_margin["value_per_cost"] == pytest.approx(1.0)
    # evsi ~ 0.52: cheap (2.6 per unit) is above the margin, dear (0.10 per unit) below.
    assert result.experimental_share["experiments"] == ["cheap"]
    assert result.experimental_share["share"] == pytest.approx(0.2 / 20.0)


def test_no_uncertainty_is_refused_naming_the_field():
    problem = Problem(items=(Item(id="B", roadmap="core", cost=1.0, value=2.0),), budget=1.0,
                      shares={})
    sampled = sample(problem, 5, time_limit=5)
    with pytest.raises(VoiError) as err:
        value_of_information(problem, sampled)
    assert err.value.field == "value_low"
    with pytest.raises(VoiError) as err:
        value_of_information(problem, sample(problem, 1, time_limit=5))
    assert err.value.field == "robust_draws"


def test_memory_budget_names_robust_draws_and_how_many_fit():
    assert over_budget(2048, items=200, draws=1000) is None
    field, message = over_budget(64, items=2000, draws=100_000)
    assert field == "robust_draws"
    assert "JOB_MEMORY_BUDGET_MB" in message and "at most" in message


def test_lift_sd_and_design_se():
    assert lift_sd(0.06, 0.14) == pytest.approx(0.08 / (2 * 1.6448536269514722))
    assert lift_sd(None, 0.1) == 0.0
    # mde = (z_.975 + z_.8) se
    assert design_se(0.05, 0.05, 0.8) == pytest.approx(0.05 / (1.959963985 + 0.841621234))


def test_a_skewed_item_whose_mode_and_mean_disagree_is_judged_against_the_mean_optimal_plan():
    # Mode +1 but a long left tail: the nominal plan builds it, the mean-optimal plan does not.
    problem = Problem(items=(Item(id="B", roadmap="core", cost=1.0, value=1.0, value_low=-10.0,
                                  value_high=2.0),), budget=1.0, shares={}, gap=0.0)
    sampled = sample(problem, 300, seed=5, time_limit=60)
    assert sampled.solved.all() and sampled.nominal.all()
    v = sampled.values[:, 0]
    assert v.mean() < 0  # so the best plan on today's information is to leave it out
    result = value_of_information(problem, sampled, exact=False,
                                  hypotheses=[Hypothesis("h", ("B",), lift_sd=0.1)])
    assert result.mean_optimal_plan == ()
    assert result.expected_value_now == 0.0
    gains = np.maximum(v, 0.0)  # knowing the draw: build it exactly when it is worth > 0
    assert result.evpi.value == pytest.approx(gains.mean(), abs=1e-9)
    assert result.evpi.se == pytest.approx(gains.std(ddof=1) / math.sqrt(300), abs=1e-9)
    assert result.hypotheses[0]["evppi"] == pytest.approx(gains.mean(), abs=1e-9)
