"""The experiment page's readout (pure): the verdict line, planned against obtained sample
size, and the power calculator's ways forward checked against statsmodels directly."""

from __future__ import annotations

import math

import pytest
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize

from experiments import stats, verdict
from experiments.data import MetricSpec, RandomizedSettings, analyze_summaries
from experiments.readout import (
    detectable_effect,
    lift_text,
    planned_vs_obtained,
    verdict_line,
    ways_forward,
)


@pytest.fixture(autouse=True)
def _event_store() -> None:
    return None


@pytest.fixture(autouse=True)
def _eager_tasks() -> None:
    return None


def ab_result(treat_conversions: int, spend_t: tuple[float, float] = (20100, 50400),
              n: tuple[int, int] = (10000, 10000)) -> dict:
    metrics = [MetricSpec.from_dict({"name": "bought", "kind": "conversion", "event": "buy",
                                     "window_days": 7}),
               MetricSpec.from_dict({"name": "spend", "kind": "revenue", "window_days": 7})]
    rows = [
        {"arm": "control", "metric": "bought", "scope": "all", "n": n[0], "sum": 500,
         "sum_sq": 500},
        {"arm": "treatment", "metric": "bought", "scope": "all", "n": n[1],
         "sum": treat_conversions, "sum_sq": treat_conversions},
        {"arm": "control", "metric": "spend", "scope": "all", "n": n[0], "sum": 20000,
         "sum_sq": 49999},
        {"arm": "treatment", "metric": "spend", "scope": "all", "n": n[1], "sum": spend_t[0],
         "sum_sq": spend_t[1]}]
    return analyze_summaries(rows, ["control", "treatment"], metrics,
                             RandomizedSettings(weights=[0.5, 0.5]))


def test_lift_text_is_a_signed_percentage_with_its_interval() -> None:
    assert lift_text(0.052, [0.011, 0.094]) == "+5.2% [+1.1%, +9.4%]"
    assert lift_text(-0.1234, [-0.2, -0.05]) == "-12.3% [-20.0%, -5.0%]"
    assert lift_text(None, None) == "—"


def test_verdict_line_reads_a_winning_primary_with_guardrails_and_sample_ratio() -> None:
    result = ab_result(600)
    proposal = verdict.propose(result, verdict.Rule(mde=0.05)).to_dict()
    line = verdict_line(result, proposal)
    # by hand: 600/10000 against 500/10000 -> +20%; gbstats' delta-method interval
    rel = (0.06 - 0.05) / 0.05
    var = 0.06 * 0.94 / (0.05 ** 2 * 10000) + 0.05 * 0.95 * 0.06 ** 2 / (0.05 ** 4 * 10000)
    row = result["rows"][0]
    half = row["relative_ci"][1] - rel
    assert half == pytest.approx(math.sqrt(var) * 1.959964, rel=1e-3)
    assert line.primary == (f"bought: treatment +20.0% [{row['relative_ci'][0] * 100:+.1f}%, "
                            f"{row['relative_ci'][1] * 100:+.1f}%] vs control")
    assert line.primary_state == "win"
    assert line.guardrails == "guardrails: 1 of 1 hold"
    assert line.sample_ratio_ok
    assert line.sample_ratio.startswith("sample ratio ok (10,000 / 10,000, p = 1.0000")
    assert line.outcome == "validated"


def test_verdict_line_names_a_worse_guardrail_and_a_sample_ratio_mismatch() -> None:
    result = ab_result(600, spend_t=(15000, 40000), n=(10000, 9000))
    proposal = verdict.propose(result, verdict.Rule()).to_dict()
    line = verdict_line(result, proposal)
    assert not line.guardrails_ok and "spend (treatment)" in line.guardrails
    srm = stats.srm_check([10000, 9000], [0.5, 0.5])
    assert srm.flagged and not line.sample_ratio_ok
    assert line.sample_ratio == "sample ratio MISMATCH (10,000 / 9,000, p < 0.0001)"
    assert verdict_line({"kind": "did"}, proposal) is None


def test_planned_against_obtained_with_the_date_at_the_current_rate() -> None:
    dates = [f"2026-03-{d:02d}" for d in range(1, 11)]
    control = [10 * d for d in range(1, 11)]  # 10 a day
    treatment = [8 * d for d in range(1, 11)]  # 8 a day
    out = planned_vs_obtained(arms=["control", "treatment"], planned=[250, 80],
                              obtained=[100, 80], dates=dates,
                              cumulative={"control": control, "treatment": treatment})
    c, t = out["arms"]
    assert c["share"] == pytest.approx(0.4)
    assert c["rate_per_day"] == pytest.approx(10.0)
    assert c["days_to_go"] == 15 and c["reach_date"] == "2026-03-25"
    assert t["reached"] and t["reach_date"] is None and t["share"] == 1.0
    assert not out["complete"]
    assert planned_vs_obtained(arms=["a", "b"], planned=[5, 5], obtained=[5, 6])["complete"]


def test_detectable_effect_matches_statsmodels_for_a_rate_and_a_mean() -> None:
    n = 3000.0
    es = NormalIndPower().solve_power(effect_size=None, nobs1=n, alpha=0.05, power=0.8,
                                      ratio=1.0, alternative="two-sided")
    # invert Cohen's h by search with statsmodels' own effect size (no shared formula)
    lo, hi = 0.1, 0.2
    for _ in range(200):
        mid = (lo + hi) / 2
        if proportion_effectsize(mid, 0.1) < es:
            lo = mid
        else:
            hi = mid
    assert detectable_effect(n_control=n, ratio=1.0, baseline_mean=0.1, baseline_sd=None,
                             binary=True, alpha=0.05, power=0.8) == pytest.approx(
        lo / 0.1 - 1, rel=1e-9)
    d = TTestIndPower().solve_power(effect_size=None, nobs1=n, alpha=0.05, power=0.8, ratio=1.0,
                                    alternative="two-sided")
    assert detectable_effect(n_control=n, ratio=1.0, baseline_mean=20.0, baseline_sd=30.0,
                             binary=False, alpha=0.05, power=0.8) == pytest.approx(
        d * 30.0 / 20.0, rel=1e-12)


def test_ways_forward_for_an_impractical_test() -> None:
    # 0.05 baseline, 5% relative MDE, 100 users/day: stats.sample_size's design
    planned = stats.sample_size(baseline_mean=0.05, mde_relative=0.05, binary=True,
                                daily_traffic=100.0)
    assert planned.days > 56
    design = {"days": planned.days, "total_n": planned.total_n, "design_effect": 1.0,
              "inputs": {"baseline_mean": 0.05, "baseline_sd": None, "daily_traffic": 100.0,
                         "cuped_r2": 0.0}}
    out = ways_forward(design, binary=True, weights=[0.5, 0.5], alpha=0.05, power=0.8)
    assert [o["weeks"] for o in out["options"]] == [2, 4, 8]
    for o in out["options"]:
        n_control = 100.0 * o["weeks"] * 7 * 0.5
        es = NormalIndPower().solve_power(effect_size=None, nobs1=n_control, alpha=0.05,
                                          power=0.8, ratio=1.0, alternative="two-sided")
        # the detected rate's Cohen's h against the baseline is statsmodels' effect size
        assert proportion_effectsize(0.05 * (1 + o["mde"]), 0.05) == pytest.approx(es, rel=1e-9)
    assert out["share_needed"] is None  # planned.total_n > 2,800 users in 4 weeks
    assert out["share_needed_raw"] == pytest.approx(planned.total_n / 2800)
    assert out["impractical"]
    # enough traffic (20,000 a day: done in under 2 weeks): 4 weeks need a share of it
    design["inputs"]["daily_traffic"] = 20000.0
    design["days"] = planned.total_n / 20000.0
    out = ways_forward(design, binary=True, weights=[0.5, 0.5], alpha=0.05, power=0.8)
    assert not out["impractical"] and out["options"] == []
    assert out["share_needed"] == pytest.approx(planned.total_n / (20000 * 28))
    design["days"] = None
    assert ways_forward(design, binary=True, weights=[0.5, 0.5], alpha=0.05, power=0.8) is None
