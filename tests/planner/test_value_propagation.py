"""Value models' pure core: the measured mapping recovers a planted relation, and the value's
range propagates lift x mapping by simulation (closed forms and brute force). No database."""

from __future__ import annotations

import math
import random
from statistics import NormalDist

import numpy as np
import pytest
import statsmodels.api as sm

from planner.mapping import MappingInvalid, measure_mapping, slope_fit
from planner.valuation import (
    Figure,
    percentiles,
    simulate,
    value_draws,
    value_investment,
    value_lift,
    z_of,
)

Z95 = NormalDist().inv_cdf(0.975)


def planted(n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Users who onboard (p = 0.4) are worth 30 more over 90 days: value = 50 + 30 x + noise."""
    rng = np.random.default_rng(seed)
    x = (rng.random(n) < 0.4).astype(float)
    y = 50 + 30 * x + rng.normal(0, 25, n)
    return x, y


def test_slope_and_robust_error_match_statsmodels_hc1():
    x, y = planted(2_000)
    fit = slope_fit(x, y)
    ols = sm.OLS(y, sm.add_constant(x)).fit(cov_type="HC1")
    assert fit.slope == pytest.approx(ols.params[1], rel=1e-12)
    assert fit.intercept == pytest.approx(ols.params[0], rel=1e-12)
    assert fit.se == pytest.approx(ols.bse[1], rel=1e-10)
    assert fit.r2 == pytest.approx(ols.rsquared, rel=1e-10)
    assert (fit.low, fit.high) == pytest.approx((ols.params[1] - Z95 * ols.bse[1],
                                                 ols.params[1] + Z95 * ols.bse[1]), rel=1e-10)


def test_measured_mapping_recovers_the_planted_slope_within_its_interval():
    x, y = planted(20_000)
    m = measure_mapping(x, y, seed=0)
    cal = m.calibration
    # Planted: slope 30. The elasticity at the means is slope x mean(x) / mean(y); with the
    # population's p = 0.4 that is 30 x 0.4 / (50 + 12) = 0.1935...
    assert cal.low <= 30 <= cal.high
    assert m.low <= 30 * 0.4 / 62 <= m.high
    assert m.elasticity == pytest.approx(cal.slope * cal.mean_x / cal.mean_y, rel=1e-12)
    # Fitted on the calibration split only, checked on the other half: they agree.
    assert cal.n + m.holdout.n == 20_000 and abs(cal.n - m.holdout.n) < 400
    assert m.holdout.low <= 30 <= m.holdout.high
    assert m.holdout_agrees and m.observational
    assert m.holdout_z == pytest.approx((m.holdout.slope - cal.slope)
                                        / math.hypot(cal.se, m.holdout.se))
    # The same seed gives the same split: the mapping does not move between reads.
    assert measure_mapping(x, y, seed=0) == m


def test_measured_mapping_refuses_data_it_cannot_read():
    with pytest.raises(MappingInvalid) as exc:
        measure_mapping(np.ones(500), np.arange(500.0))
    assert exc.value.field == "metric"
    with pytest.raises(MappingInvalid) as exc:
        measure_mapping(*planted(40))
    assert exc.value.field == "segment"
    x, _ = planted(500)
    with pytest.raises(MappingInvalid) as exc:
        measure_mapping(x, np.zeros(500) + 0 * x)
    assert exc.value.field == "value_days"


def test_a_figures_draws_hold_its_stated_interval_at_its_level():
    f = Figure(0.1, 0.05, 0.2, "forecast", level=0.8)
    d = f.draws(np.random.default_rng(1), 400_000)
    # median at the estimate; 10% below low and 10% above high (two-piece normal)
    assert np.median(d) == pytest.approx(0.1, abs=5e-4)
    assert (d < 0.05).mean() == pytest.approx(0.1, abs=2e-3)
    assert (d > 0.2).mean() == pytest.approx(0.1, abs=2e-3)
    assert np.all(Figure.exact(3.0, "x").draws(np.random.default_rng(1), 5) == 3.0)


def test_product_of_two_independent_normals_matches_the_closed_form():
    # lift N(0.10, 0.03), mapping N(0.5, 0.1): symmetric 95% intervals make normals.
    mu_x, sd_x, mu_y, sd_y = 0.10, 0.03, 0.5, 0.1
    lift = Figure(mu_x, mu_x - Z95 * sd_x, mu_x + Z95 * sd_x, "lift", level=0.95)
    mapping = Figure(mu_y, mu_y - Z95 * sd_y, mu_y + Z95 * sd_y, "mapping", level=0.95)
    n = 400_000
    d = simulate(factors=(lift, mapping), draws=n, seed=5)
    mean = mu_x * mu_y
    var = mu_x**2 * sd_y**2 + mu_y**2 * sd_x**2 + sd_x**2 * sd_y**2
    # E[XY] = mu_x mu_y; Var[XY] = mu_x^2 sd_y^2 + mu_y^2 sd_x^2 + sd_x^2 sd_y^2
    assert d.mean() == pytest.approx(mean, abs=4 * math.sqrt(var / n))
    assert d.var() == pytest.approx(var, rel=0.01)
    # value_lift reports the product's estimate and its 90% range, drawing lift and mapping
    # from the streams value_investment gives them (inputs 2 and 3)
    v = value_lift(lift, mapping, draws=n, seed=5)
    assert v.estimate == pytest.approx(mean)
    one = Figure.exact(1.0, "")
    same = simulate(factors=(one, one, lift, mapping), draws=n, seed=5)
    assert (v.low, v.high) == pytest.approx(percentiles(same, 0.9), rel=1e-12)
    assert (v.low, v.high) == pytest.approx(percentiles(d, 0.9), rel=0.01)


def test_propagated_range_matches_a_brute_force_monte_carlo():
    # Independent brute force: Python's own generator, one draw at a time, asymmetric
    # intervals sampled by their definition (two-piece normal, median = estimate).
    reach, adoption, p, vpu = 1_000, 0.3, 0.7, Figure(120.0, 100.0, 150.0, "ltv", level=0.95)
    lift = Figure(0.15, 0.05, 0.25, "expected", level=0.8)
    mapping = Figure(0.4, 0.2, 0.9, "entered", level=0.8)
    v = value_investment(reach=Figure.exact(reach, "r"), adoption=adoption, value_per_user=vpu,
                         lift=lift, probability=Figure.exact(p, "p"), mapping=mapping)
    assert v.expected_value == pytest.approx(reach * adoption * p * 120 * 0.15 * 0.4)
    rnd = random.Random(11)

    def two_piece(f: Figure) -> float:
        z = rnd.gauss(0, 1)
        side = (f.estimate - f.low) if z < 0 else (f.high - f.estimate)
        return f.estimate + z * side / z_of(f.level)

    brute = sorted(reach * adoption * p * two_piece(vpu) * two_piece(lift) * two_piece(mapping)
                   for _ in range(200_000))
    low, high = brute[int(0.05 * len(brute))], brute[int(0.95 * len(brute))]
    assert v.low == pytest.approx(low, rel=0.03)
    assert v.high == pytest.approx(high, rel=0.03)
    # The mapping widens the range: without it (one to one) the value is 2.5x and the range
    # relatively narrower.
    one_to_one = value_investment(reach=Figure.exact(reach, "r"), adoption=adoption,
                                  value_per_user=vpu, lift=lift, probability=Figure.exact(p, "p"))
    assert one_to_one.expected_value == pytest.approx(v.expected_value / 0.4)
    assert (one_to_one.high - one_to_one.low) / one_to_one.expected_value < \
        (v.high - v.low) / v.expected_value


def test_value_draws_from_stored_sources_reproduce_the_stored_range():
    lift = Figure(0.15, 0.05, 0.25, "expected", level=0.8)
    v = value_investment(reach=Figure.exact(500, "r"), adoption=0.5,
                         value_per_user=Figure(80.0, 70.0, 95.0, "ltv"), lift=lift,
                         probability=Figure.exact(0.35, "p"),
                         mapping=Figure(0.5, 0.3, 0.8, "m", level=0.8))
    d = value_draws(v.sources)
    assert percentiles(d, 0.9) == pytest.approx((v.low, v.high), rel=1e-12)
    # A hypothesis's lift shared by two investments: pass its draws to both.
    shared = lift.draws(np.random.default_rng(99), 20_000)
    a = value_draws(v.sources, lift_draws=shared)
    b = value_draws(v.sources, lift_draws=shared, seed=1)
    assert np.corrcoef(a, b)[0, 1] > 0.5
    with pytest.raises(ValueError, match="20000 draws"):
        value_draws(v.sources, lift_draws=shared[:10])
