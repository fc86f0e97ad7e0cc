"""A metric where lower is better (errors, churn, time to finish): the decision rule reads a
significant fall as the win, a rise as the harm, in both reads and for guardrails. Pure; the
results come from the real analysis of planted per-arm summaries."""

from __future__ import annotations

import pytest

from experiments import readout, verdict
from experiments.data import ExperimentDataError, MetricSpec, RandomizedSettings, analyze_summaries

CHURN = MetricSpec.from_dict({"name": "churned", "kind": "conversion", "event": "cancel",
                              "window_days": 30, "direction": "lower"})
ERRORS = MetricSpec.from_dict({"name": "errors", "kind": "count", "event": "error",
                               "window_days": 30, "direction": "lower"})
FREQ = verdict.Rule(read="frequentist", mde=0.05)
BAYES = verdict.Rule(read="bayesian", chance_to_win=0.95, risk_tolerance=0.0025, mde=0.05)


@pytest.fixture(autouse=True)
def _event_store() -> None:
    return None


@pytest.fixture(autouse=True)
def _eager_tasks() -> None:
    return None


def result(churn_t: int, errors_t: tuple[float, float] | None = None) -> dict:
    rows = [{"scope": "all", "arm": "control", "metric": "churned", "n": 10000, "sum": 1000,
             "sum_sq": 1000},
            {"scope": "all", "arm": "treatment", "metric": "churned", "n": 10000,
             "sum": churn_t, "sum_sq": churn_t}]
    metrics = [CHURN]
    if errors_t:
        metrics.append(ERRORS)
        rows += [{"scope": "all", "arm": "control", "metric": "errors", "n": 10000,
                  "sum": 20000, "sum_sq": 60000},
                 {"scope": "all", "arm": "treatment", "metric": "errors", "n": 10000,
                  "sum": errors_t[0], "sum_sq": errors_t[1]}]
    return analyze_summaries(rows, ["control", "treatment"], metrics,
                             RandomizedSettings(weights=[0.5, 0.5]))


def test_direction_round_trips_and_is_checked() -> None:
    assert CHURN.to_dict()["direction"] == "lower"
    assert "direction" not in MetricSpec.from_dict({"kind": "revenue"}).to_dict()
    with pytest.raises(ExperimentDataError) as err:
        MetricSpec.from_dict({"kind": "revenue", "direction": "up"}, "primary_metric")
    assert err.value.field == "primary_metric.direction"


@pytest.mark.parametrize("rule", [FREQ, BAYES])
def test_a_significant_fall_validates_and_a_rise_invalidates(rule) -> None:  # type: ignore[no-untyped-def]
    fell = result(850)  # 10% -> 8.5% churn: z about -3.7
    assert fell["rows"][0]["direction"] == "lower"
    assert verdict.propose(fell, rule).outcome == "validated"
    rose = result(1150)
    assert verdict.propose(rose, rule).outcome == "invalidated"


def test_frequentist_mde_rule_for_a_fall() -> None:
    # 10% -> 9.95% churn: the interval holds zero. A 5% fall is ruled out only when the
    # interval's relative lower end is above -5%: not at n = 10,000 (about -8%) ...
    flat = result(995)
    assert flat["rows"][0]["relative_ci"][0] < -0.05
    assert verdict.propose(flat, FREQ).outcome == "inconclusive"
    # ... but at n = 1,000,000 per arm (about -0.9%)
    rows = [{"scope": "all", "arm": arm, "metric": "churned", "n": 1_000_000, "sum": s,
             "sum_sq": s} for arm, s in (("control", 100_000), ("treatment", 99_950))]
    big = analyze_summaries(rows, ["control", "treatment"], [CHURN],
                            RandomizedSettings(weights=[0.5, 0.5]))
    assert -0.05 < big["rows"][0]["relative_ci"][0] < 0 < big["rows"][0]["relative_ci"][1]
    proposal = verdict.propose(big, FREQ)
    assert proposal.outcome == "invalidated"
    assert "the fall the test was sized to find is ruled out" in proposal.checks[-2].detail


def test_a_rising_lower_is_better_guardrail_blocks_the_win() -> None:
    # the treatment lowers churn but raises errors from 2.0 to 2.3 per user (sd ~ 1)
    res = result(850, errors_t=(23000, 10000 * (1.0 + 2.3 ** 2)))
    proposal = verdict.propose(res, FREQ)
    assert proposal.outcome == "inconclusive"
    assert "errors (treatment)" in next(c for c in proposal.checks
                                        if c.name == "guardrails").detail
    line = readout.verdict_line(res, proposal.to_dict())
    assert line.primary_state == "win" and not line.guardrails_ok
    # errors falling is fine
    ok = result(850, errors_t=(17000, 10000 * (1.0 + 1.7 ** 2)))
    assert verdict.propose(ok, FREQ).outcome == "validated"
