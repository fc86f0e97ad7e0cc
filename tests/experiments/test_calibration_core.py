"""Forecast calibration's pure core on a planted team whose forecasts are twice the truth."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from experiments.calibration import (
    Forecast,
    calibrate,
    forecast_probability,
    shrink_factor,
    wilson,
)

Z80 = NormalDist().inv_cdf(0.9)


def hot_team(n: int = 40, seed: int = 1) -> list[Forecast]:
    """Forecasts twice the truth: realized = 0.5 x predicted + noise; two authors."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        predicted = float(rng.uniform(0.05, 0.3))
        realized = 0.5 * predicted + float(rng.normal(0, 0.02))
        out.append(Forecast(key=k, label=f"h{k}", author="ann" if k % 2 else "bob",
                            evidence="assumption" if k % 3 else "observational",
                            predicted=predicted, low=predicted * 0.6, high=predicted * 1.5,
                            validated=realized > 0.03, realized=realized,
                            realized_low=realized - 0.03, realized_high=realized + 0.03))
    return out


def test_forecast_probability_is_the_stated_belief_in_a_positive_effect():
    # median 0.1, low 0.05 bounds 10% of belief: sd of the lower side 0.05 / z(0.9)
    assert forecast_probability(0.1, 0.05, 0.3) == pytest.approx(NormalDist().cdf(0.1 / (0.05 / Z80)))
    assert forecast_probability(-0.1, -0.2, -0.02) == pytest.approx(
        NormalDist().cdf(-0.1 / (0.08 / Z80)))
    assert forecast_probability(0.1, 0.1, 0.2) == 1.0
    assert forecast_probability(0.0, -0.1, 0.1) == 0.5
    # the low bound at zero: exactly 90% sure it is positive
    assert forecast_probability(0.1, 0.0, 0.2) == pytest.approx(0.9)


def test_a_team_forecasting_twice_the_truth_gets_a_ratio_near_one_half():
    team = hot_team()
    result = calibrate(team)
    g = result.overall
    assert g.forecasts == g.measured == 40
    # ratio of means, by hand
    ratio = sum(f.realized for f in team) / sum(f.predicted for f in team)
    assert g.ratio == pytest.approx(ratio)
    assert g.ratio_low < 0.5 < g.ratio_high and abs(g.ratio - 0.5) < 0.05
    # a second method for the interval: the delta method for a ratio of means
    r = np.array([f.realized for f in team])
    p = np.array([f.predicted for f in team])
    n = len(r)
    cov = np.cov(r, p)  # ddof 1
    se = math.sqrt((cov[0, 0] - 2 * ratio * cov[0, 1] + ratio**2 * cov[1, 1]) / n) / p.mean()
    assert g.ratio_low == pytest.approx(ratio - 1.96 * se, abs=0.25 * 1.96 * se)
    assert g.ratio_high == pytest.approx(ratio + 1.96 * se, abs=0.25 * 1.96 * se)
    # coverage: a hand count of realized effects inside [0.6 p, 1.5 p]
    inside = sum(1 for f in team if 0.6 * f.predicted <= f.realized <= 1.5 * f.predicted)
    assert g.inside == inside and g.coverage == inside / 40
    # Wilson 95% interval by its formula
    z, ph = 1.959963984540054, inside / 40
    centre = (ph + z * z / 80) / (1 + z * z / 40)
    half = z * math.sqrt(ph * (1 - ph) / 40 + z * z / (4 * 1600)) / (1 + z * z / 40)
    assert (g.coverage_low, g.coverage_high) == pytest.approx((centre - half, centre + half))
    assert g.coverage_high < 0.8  # a team this hot is not calibrated
    # Brier: (P(effect > 0) - validated)^2, averaged, by hand
    brier = sum((NormalDist().cdf(f.predicted / ((f.predicted - f.low) / Z80))
                 - (1.0 if f.validated else 0.0)) ** 2 for f in team) / 40
    assert g.brier == pytest.approx(brier)
    # groups: by author and by evidence level, each its own hand count
    ann = [f for f in team if f.author == "ann"]
    by = {x.name: x for x in result.by_author}
    assert by["ann"].forecasts == len(ann) == 20
    assert by["ann"].ratio == pytest.approx(sum(f.realized for f in ann)
                                            / sum(f.predicted for f in ann))
    assert sorted(x.name for x in result.by_evidence) == ["assumption", "observational"]
    assert sum(x.forecasts for x in result.by_evidence) == 40
    assert shrink_factor(result) == pytest.approx(g.ratio)
    # seeded: the same figures on every read
    assert calibrate(team).to_dict() == result.to_dict()


def test_forecasts_without_an_interval_are_excluded_and_counted():
    team = hot_team(8)
    bare = [Forecast(key=100, label="no range", author="ann", evidence="assumption",
                     predicted=0.1, low=None, high=None, validated=True, realized=0.05),
            Forecast(key=101, label="zero width", author="ann", evidence="assumption",
                     predicted=0.1, low=0.1, high=0.1, validated=False, realized=0.0)]
    # inconclusive: no measured lift, scored for the Brier score only
    silent = Forecast(key=102, label="inconclusive", author="bob", evidence="assumption",
                      predicted=0.1, low=0.0, high=0.2, validated=False)
    result = calibrate([*team, *bare, silent])
    assert result.excluded == 2 and result.excluded_labels == ["no range", "zero width"]
    assert result.overall.forecasts == 9 and result.overall.measured == 8
    assert result.overall.points[-1]["probability"] == pytest.approx(0.9)
    assert shrink_factor(calibrate(team[:4])) is None  # too few to shrink by
    assert wilson(0, 0) == (0.0, 1.0)
