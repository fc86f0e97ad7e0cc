"""experiments.bayes against GrowthBook gbstats 0.8.0's EffectBayesianABTest (committed vectors,
made in gbstats' own environment by scripts/reference_vectors/make_vectors.py), and against
closed forms and numerical integration. Pure: no database."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import norm

from experiments import bayes

VECTORS = Path(__file__).parent / "vectors"
GB = json.loads((VECTORS / "gbstats_bayes.json").read_text())
PRIORS = {p["label"]: bayes.Prior(p["mean"], p["variance"], p["proper"]) for p in GB["priors"]}


def _moments(kind: str, arm: dict) -> bayes.Moments:  # type: ignore[type-arg]
    if kind == "mean":
        return bayes.Moments.of_mean(arm["n"], arm["sum"], arm["sum_sq"])
    if kind == "proportion":
        return bayes.Moments.of_proportion(arm["n"], arm["conversions"])
    return bayes.Moments.of_ratio(arm["n"], arm["sum_x"], arm["sum_x_sq"], arm["sum_y"],
                                  arm["sum_y_sq"], arm["sum_xy"])


def _cases() -> list[tuple[str, str, dict]]:  # type: ignore[type-arg]
    out = []
    for kind in ("mean", "proportion", "ratio"):
        out += [(kind, kind, c) for c in GB[kind]]
    out += [(c["kind"], "degenerate", c) for c in GB["degenerate"]]
    return out


CASES = _cases()


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def test_vectors_come_from_gbstats_080_and_cover_every_read():
    assert GB["library"] == "gbstats" and GB["version"] == "0.8.0"
    assert len(GB["mean"]) == 20 and len(GB["proportion"]) == 20 and len(GB["ratio"]) == 5
    reads = [r for _, _, c in CASES for r in c["reads"].values()]
    assert len(reads) == (20 + 20 + 5 + len(GB["degenerate"])) * 6
    # the degenerate cases exercise each of gbstats' non-numeric answers
    errors = {r.get("error") or r.get("raises") for r in reads}
    assert {"NO_UNITS_IN_VARIATION", "ZERO_NEGATIVE_VARIANCE",
            "ZERO_NEGATIVE_BASELINE_VARIATION", "ZeroDivisionError", None} <= errors


@pytest.mark.parametrize(("kind", "group", "case"), CASES,
                         ids=[f"{g}-{c['label']}" for _, g, c in CASES])
def test_read_matches_gbstats(kind, group, case):
    control, treatment = _moments(kind, case["control"]), _moments(kind, case["treatment"])
    wrong = {}
    for key, ref in case["reads"].items():
        prior_label, _, diff = key.rpartition("_")
        got = bayes.bayes_read(control, treatment, relative=diff == "relative",
                               prior=PRIORS[prior_label], alpha=case["alpha"],
                               inverse=case["inverse"])
        if "raises" in ref:
            # gbstats divides by a zero prior variance (absolute effect, control mean 0);
            # this module answers with an uninformative read and says why
            assert ref["raises"] == "ZeroDivisionError"
            assert got.error == bayes.ZERO_CONTROL_PRIOR and got.chance_to_win == 0.5
            continue
        assert got.error == ref["error"], key
        assert got.risk_type == ref["risk_type"]
        pairs = [(got.chance_to_win, ref["chance_to_win"]), (got.expected, ref["expected"]),
                 (got.ci[0], ref["ci"][0]), (got.ci[1], ref["ci"][1]),
                 (got.stddev, ref["stddev"]), (got.risk[0], ref["risk"][0]),
                 (got.risk[1], ref["risk"][1])]
        bad = [(g, r) for g, r in pairs if not close(g, r)]
        if bad:
            wrong[key] = bad
    assert not wrong, wrong


def test_risk_closed_forms_equal_numerical_integration():
    for mu, sigma in [(0.03, 0.02), (-0.01, 0.05), (0.0, 1.0), (2.5, 0.4)]:
        keep = integrate.quad(lambda x, m, s: x * norm.pdf(x, m, s), 0, np.inf,
                              args=(mu, sigma))[0]
        ship = integrate.quad(lambda x, m, s: -x * norm.pdf(x, m, s), -np.inf, 0,
                              args=(mu, sigma))[0]
        got = bayes.risks(mu, sigma)
        assert math.isclose(got[0], keep, rel_tol=1e-8, abs_tol=1e-12)
        assert math.isclose(got[1], ship, rel_tol=1e-8, abs_tol=1e-12)
        # E[max(X,0)] - E[max(-X,0)] = E[X]
        assert math.isclose(got[0] - got[1], mu, abs_tol=1e-12)


def test_proper_prior_is_precision_weighted_by_hand():
    # estimate 0.10 with variance 0.0025 (se 0.05), prior N(0, 0.01): weights 400 and 100
    control = bayes.Moments(n=100, mean=10.0, variance=0.0)
    read = bayes.read_from_estimate(0.10, 0.0025, prior_mean=0.0, prior_variance=0.01,
                                    prior=bayes.Prior(0.0, 0.01, True), relative=True)
    assert math.isclose(read.expected, 0.10 * 400 / 500)
    assert math.isclose(read.stddev, math.sqrt(1 / 500))
    assert math.isclose(read.chance_to_win, norm.cdf(0.08 / math.sqrt(1 / 500)))
    assert control.variance == 0.0  # (a zero-variance arm never reaches read_from_estimate)


def test_absolute_prior_is_the_relative_prior_rescaled_by_the_control_mean():
    assert bayes.scaled_prior(bayes.Prior(0.1, 0.04, True), -2.0, relative=False) == (0.2, 0.16)
    assert bayes.scaled_prior(bayes.Prior(0.1, 0.04, True), -2.0, relative=True) == (0.1, 0.04)


@pytest.mark.parametrize("variance", [0, -0.5, 0.0])
def test_prior_with_non_positive_variance_names_the_field(variance):
    with pytest.raises(bayes.PriorInvalid) as err:
        bayes.Prior(0.0, variance, True)
    assert err.value.field == "prior_variance"


def test_prior_must_be_finite():
    with pytest.raises(bayes.PriorInvalid) as err:
        bayes.Prior(float("nan"), 0.1, True)
    assert err.value.field == "prior_mean"


def test_inverse_metric_swaps_chance_and_risk():
    c, t = bayes.Moments(1000, 5.0, 4.0), bayes.Moments(1000, 5.2, 4.0)
    up = bayes.bayes_read(c, t)
    down = bayes.bayes_read(c, t, inverse=True)
    assert math.isclose(up.chance_to_win + down.chance_to_win, 1.0)
    assert down.risk == (up.risk[1], up.risk[0])
