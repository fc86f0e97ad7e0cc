"""experiments.pvalues: p-values in words by the pages' rule ('< 0.0001' when tiny, else four
decimals; never 0.0000 or 1.2e-07), and the verdict's checks printed with it. Expected p-values
worked out here by hand (two-sided normal tail on the unpooled standard error). Pure."""

from __future__ import annotations

import math

from scipy.stats import norm

from experiments import verdict
from experiments.data import MetricSpec, RandomizedSettings, analyze_summaries
from experiments.pvalues import p_shown, p_text

BOUGHT = MetricSpec.from_dict({"name": "bought", "kind": "conversion", "event": "purchase",
                               "window_days": 30}, "primary_metric")
FREQ = verdict.Rule(read="frequentist", mde=0.05)


def result(conv_c: int, n_c: int, conv_t: int, n_t: int) -> dict:
    rows = [{"scope": "all", "arm": arm, "metric": "bought", "n": n, "sum": conv,
             "sum_sq": conv} for arm, conv, n in (("control", conv_c, n_c),
                                                   ("treatment", conv_t, n_t))]
    return analyze_summaries(rows, ["control", "treatment"], [BOUGHT],
                             RandomizedSettings(weights=[0.5, 0.5], alpha=0.05))


def test_the_rule_on_its_edges():
    assert p_shown(0.0) == "< 0.0001"
    assert p_shown(1.2e-07) == "< 0.0001"
    assert p_shown(0.0000999) == "< 0.0001"
    assert p_shown(0.0001) == "0.0001"
    assert p_shown(0.04321) == "0.0432"
    assert p_shown(1.0) == "1.0000"
    assert p_shown(None) == "n/a"
    assert p_shown(float("nan")) == "n/a"
    assert p_text(3e-9) == "p < 0.0001"
    assert p_text(0.5, "adjusted p") == "adjusted p = 0.5000"


def by_hand(xc: int, nc: int, xt: int, nt: int) -> float:
    pc, pt = xc / nc, xt / nt
    se = math.sqrt(pc * (1 - pc) / nc + pt * (1 - pt) / nt)
    return 2 * norm.sf(abs(pt - pc) / se)


def test_verdict_checks_print_four_decimals_not_three_significant_digits():
    # 480 vs 600 of 10,000: p = 0.000173 by hand, shown 0.0002 (was "0.000173")
    assert round(by_hand(480, 10000, 600, 10000), 4) == 0.0002
    p = verdict.propose(result(480, 10000, 600, 10000), FREQ)
    assert "adjusted p = 0.0002 (alpha 0.05)" in p.checks[2].detail
    assert "chi-square p = 1.0000" in p.checks[0].detail  # 10,000 / 10,000: no mismatch
    # 500 vs 540: p = 0.2027 by hand
    assert round(by_hand(500, 10000, 540, 10000), 4) == 0.2027
    p = verdict.propose(result(500, 10000, 540, 10000), FREQ)
    assert "adjusted p = 0.2027 (alpha 0.05)" in p.checks[2].detail


def test_tiny_p_values_read_below_the_floor():
    # 10,000 / 9,000 against 9,500 each: chi-square 52.6 on 1 df, p ~ 4e-13
    p = verdict.propose(result(500, 10000, 600, 9000), FREQ)
    text = " ".join(c.detail for c in p.checks)
    assert "chi-square p < 0.0001, below 0.001, a mismatch" in p.checks[0].detail
    assert "adjusted p < 0.0001" in p.checks[2].detail
    assert "e-" not in text and "0.0000" not in text
