"""experiments.verdict: the outcome a result proposes under a decision rule, on results made by
the real analysis (experiments.data.analyze_summaries) from planted per-arm summaries; the
expected verdicts are worked out here by hand (normal z intervals, delta method). Pure."""

from __future__ import annotations

import math

import pytest
from scipy.stats import norm

from experiments import verdict
from experiments.data import MetricSpec, RandomizedSettings, analyze_summaries

BOUGHT = MetricSpec.from_dict({"name": "bought", "kind": "conversion", "event": "purchase",
                               "window_days": 30}, "primary_metric")
SPEND = MetricSpec.from_dict({"name": "spend", "kind": "revenue", "window_days": 30},
                             "guardrail_metrics[0]")
FREQ = verdict.Rule(read="frequentist", mde=0.05)
BAYES = verdict.Rule(read="bayesian", chance_to_win=0.95, risk_tolerance=0.0025, mde=0.05)


def result(conv_c, n_c, conv_t, n_t, spend=None):  # type: ignore[no-untyped-def]
    rows = [{"scope": "all", "arm": "control", "metric": "bought", "n": n_c, "sum": conv_c,
             "sum_sq": conv_c},
            {"scope": "all", "arm": "treatment", "metric": "bought", "n": n_t, "sum": conv_t,
             "sum_sq": conv_t}]
    metrics = [BOUGHT]
    if spend:
        metrics.append(SPEND)
        for arm, (n, mean, sd) in zip(("control", "treatment"), spend, strict=True):
            rows.append({"scope": "all", "arm": arm, "metric": "spend", "n": n,
                         "sum": n * mean, "sum_sq": (n - 1) * sd * sd + n * mean * mean})
    return analyze_summaries(rows, ["control", "treatment"], metrics,
                             RandomizedSettings(weights=[0.5, 0.5], alpha=0.05))


def z_interval(xc, nc, xt, nt):  # type: ignore[no-untyped-def]
    pc, pt = xc / nc, xt / nt
    se = math.sqrt(pc * (1 - pc) / nc + pt * (1 - pt) / nt)
    return pt - pc - 1.959964 * se, pt - pc + 1.959964 * se


def checks(p):  # type: ignore[no-untyped-def]
    return {c.name: c.passed for c in p.checks}


def test_a_clear_win_proposes_validated():
    low, high = z_interval(480, 10000, 600, 10000)
    assert low > 0  # 0.012 +- 0.0063: above zero by hand
    p = verdict.propose(result(480, 10000, 600, 10000), FREQ)
    assert (p.outcome, p.arm) == ("validated", "treatment")
    assert checks(p) == {"sample ratio": True, "primary estimate": True,
                         "primary effect": True, "guardrails": True}


def test_a_null_result_with_a_wide_interval_proposes_inconclusive():
    low, high = z_interval(500, 10000, 505, 10000)
    assert low < 0 < high
    # relative upper end by hand (delta method): well above the 5% MDE
    pc, pt = 0.05, 0.0505
    rel_se = math.sqrt(pt * (1 - pt) / (pc ** 2 * 10000) + pc * (1 - pc) * pt ** 2 /
                       (pc ** 4 * 10000))
    assert 0.01 + 1.96 * rel_se > 0.05
    p = verdict.propose(result(500, 10000, 505, 10000), FREQ)
    assert p.outcome == "inconclusive"
    assert checks(p)["primary effect"] is False
    assert "the interval holds zero" in p.checks[2].detail


def test_a_null_result_that_rules_out_the_mde_proposes_invalidated():
    low, high = z_interval(50000, 1_000_000, 50050, 1_000_000)
    assert low < 0 < high
    pc, pt = 0.05, 0.05005
    rel_se = math.sqrt(pt * (1 - pt) / (pc ** 2 * 1e6) + pc * (1 - pc) * pt ** 2 / (pc ** 4 * 1e6))
    assert 0.001 + 1.97 * rel_se < 0.05  # even the top of the interval is below the MDE
    p = verdict.propose(result(50000, 1_000_000, 50050, 1_000_000), FREQ)
    assert p.outcome == "invalidated"
    assert "ruled out" in p.checks[2].detail
    # without an MDE the same result cannot rule anything out
    assert verdict.propose(result(50000, 1_000_000, 50050, 1_000_000),
                           verdict.Rule(read="frequentist")).outcome == "inconclusive"


def test_a_significant_loss_proposes_invalidated():
    assert z_interval(600, 10000, 480, 10000)[1] < 0
    assert verdict.propose(result(600, 10000, 480, 10000), FREQ).outcome == "invalidated"


def test_a_sample_ratio_mismatch_blocks_a_win():
    # chi-square (500^2/9500) * 2 = 52.6 on 1 df: p ~ 4e-13 < 0.001
    res = result(500, 10000, 600, 9000)
    assert res["srm"]["all"]["p_value"] < 1e-10
    p = verdict.propose(res, FREQ)
    assert p.outcome == "inconclusive"
    assert checks(p)["sample ratio"] is False
    assert p.reason == "blocked by sample ratio"


def test_a_worse_guardrail_blocks_a_win():
    # spend 2.0 -> 1.9 with sd 1 on 10,000 per arm: z = -0.1 / sqrt(2e-4) = -7.07
    res = result(480, 10000, 600, 10000, spend=[(10000, 2.0, 1.0), (10000, 1.9, 1.0)])
    p = verdict.propose(res, FREQ)
    assert p.outcome == "inconclusive"
    assert checks(p) == {"sample ratio": True, "primary estimate": True,
                         "primary effect": True, "guardrails": False}
    assert "spend (treatment)" in p.checks[3].detail
    # a guardrail that holds (2.0 -> 2.0) lets the win through
    ok = result(480, 10000, 600, 10000, spend=[(10000, 2.0, 1.0), (10000, 2.0, 1.0)])
    assert verdict.propose(ok, FREQ).outcome == "validated"


def test_insufficient_data_proposes_inconclusive():
    p = verdict.propose(result(0, 1, 1, 1), FREQ)
    assert p.outcome == "inconclusive"
    assert checks(p)["primary estimate"] is False


def test_the_bayesian_rule_reads_chance_to_win_and_risk():
    # 1000/10000 vs 1078/10000: two-sided p ~ 0.07 (frequentist: undecided), but one-sided
    # P(effect > 0) ~ 0.96 with a small expected loss: the Bayesian rule validates
    res = result(1000, 10000, 1078, 10000)
    low, high = z_interval(1000, 10000, 1078, 10000)
    assert low < 0 < high
    pc, pt = 0.1, 0.1078
    rel = (pt - pc) / pc
    rel_se = math.sqrt(pt * (1 - pt) / (pc ** 2 * 1e4) + pc * (1 - pc) * pt ** 2 / (pc ** 4 * 1e4))
    ctw = norm.cdf(rel / rel_se)
    ship = rel_se * norm.pdf(rel / rel_se) - rel * norm.cdf(-rel / rel_se)
    assert ctw > 0.95 and ship < 0.0025
    row = res["rows"][0]
    assert math.isclose(row["bayes"]["relative"]["chance_to_win"], ctw, rel_tol=1e-12)
    assert math.isclose(row["bayes"]["relative"]["risk"][1], ship, rel_tol=1e-9)
    assert verdict.propose(res, FREQ).outcome == "inconclusive"
    p = verdict.propose(res, BAYES)
    assert (p.outcome, p.read) == ("validated", "bayesian")
    assert f"{ctw:.1%}" in p.checks[2].detail
    # a stricter chance threshold leaves it undecided; a loss the other way invalidates
    strict = verdict.Rule(read="bayesian", chance_to_win=0.99, risk_tolerance=0.0025)
    assert verdict.propose(res, strict).outcome == "inconclusive"
    assert verdict.propose(result(1078, 10000, 1000, 10000), BAYES).outcome == "invalidated"


def test_the_bayesian_rule_refuses_a_win_whose_risk_is_above_tolerance():
    res = result(1000, 10000, 1078, 10000)
    tight = verdict.Rule(read="bayesian", chance_to_win=0.95, risk_tolerance=0.0001)
    p = verdict.propose(res, tight)
    assert p.outcome == "inconclusive"


@pytest.mark.parametrize(("pre", "ci", "outcome"), [
    (0.4, [0.2, 0.8], "validated"), (0.01, [0.2, 0.8], "inconclusive"),
    (0.4, [-0.8, -0.2], "invalidated"), (0.4, [-0.2, 0.8], "inconclusive"),
])
def test_a_difference_in_differences_is_read_by_its_interval_and_pre_trend(pre, ci, outcome):
    res = {"kind": "did", "estimate": sum(ci) / 2, "ci": ci, "pre_trend_p": pre}
    p = verdict.propose(res, BAYES)
    assert p.outcome == outcome
    assert checks(p)["pre-trend"] is (pre >= 0.05)
    assert "quasi-experiment is read by its interval" in p.rule
