"""Value of information through an optimizer run: stored on the run, on the hypothesis and the
experiment rows, served by the API; refused naming the field when there is nothing to value."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import norm

from experiments.models import Evidence, Experiment, Hypothesis
from jobs.services import job_run
from planner import services
from planner.models import Investment, OptimizationRun, Scenario
from planner.optimizer.robust import Z90, draw_values

pytestmark = pytest.mark.django_db


def finished_run(scenario: Scenario) -> OptimizationRun:
    run = services.run_start(scenario=scenario)
    job_run(job_id=run.job_id)
    return OptimizationRun.objects.get(pk=run.pk)


def brute(problem, values, groups):  # type: ignore[no-untyped-def]
    """E0, EVPI and per-group preposterior gains over every feasible subset (the budget is the
    only constraint of these scenarios)."""
    items = problem.items
    plans = []
    for bits in itertools.product([0, 1], repeat=len(items)):
        chosen = [k for k, b in enumerate(bits) if b]
        spend = sum(items[k].cost for k in chosen)
        if spend > problem.budget + 1e-9:
            continue
        ok = all(lo * spend - 1e-9 <= sum(items[k].cost for k in chosen
                                            if items[k].roadmap == r) <= hi * spend + 1e-9
                 for r, (lo, hi) in problem.shares.items())
        if ok:
            plans.append(bits)
    plans_arr = np.array(plans, dtype=float)
    mu = values.mean(axis=0)
    e0 = (plans_arr @ mu).max()
    out = {"evpi": (values @ plans_arr.T).max(axis=1).mean() - e0}
    for key, (cols, shrink) in groups.items():
        shifted = np.tile(mu, (len(values), 1))
        shifted[:, cols] += shrink * (values[:, cols] - mu[cols])
        out[key] = (shifted @ plans_arr.T).max(axis=1).mean() - e0
    return e0, out


@pytest.fixture
def portfolio(team):  # type: ignore[no-untyped-def]
    ws = team["acme"]
    h1 = Hypothesis.objects.create(workspace=ws, statement="sharing lifts upgrades",
                                   expected_lift=0.10, expected_lift_low=0.02,
                                   expected_lift_high=0.18, evidence=Evidence.ASSUMPTION)
    h2 = Hypothesis.objects.create(workspace=ws, statement="templates lift reports",
                                   expected_lift=0.05, expected_lift_low=0.0,
                                   expected_lift_high=0.10, evidence=Evidence.ASSUMPTION)
    common = {"assumed_reach": 10_000, "assumed_value_per_user": 10.0, "adoption": 0.5}
    invs = [
        Investment.objects.create(workspace=ws, title="share flow", roadmap="core", cost=100,
                                  **common),
        Investment.objects.create(workspace=ws, title="share v2", roadmap="core", cost=80,
                                  **common),
        Investment.objects.create(workspace=ws, title="templates", roadmap="experimental",
                                  cost=40, **common),
        Investment.objects.create(workspace=ws, title="steady", roadmap="core", cost=90,
                                  assumed_lift=0.03, **common),
    ]
    invs[0].hypotheses.add(h1)
    invs[1].hypotheses.add(h1)
    invs[2].hypotheses.add(h2)
    for inv in invs:
        services.investment_revalue(investment=inv)
    # Designed tests: the power calculation's effective MDE gives the standard error.
    x1 = Experiment.objects.create(workspace=ws, hypothesis=h1, name="share test", cost=20.0,
                                   design={"effective_mde": 0.06, "total_n": 4000},
                                   alpha=0.05, power=0.8)
    x2 = Experiment.objects.create(workspace=ws, hypothesis=h2, name="templates test",
                                   design={"effective_mde": 0.2, "total_n": 900},
                                   alpha=0.05, power=0.8)
    # Budget 180, no share bounds: "share flow" + "share v2" at the means; "templates" (cost 40)
    # takes the place of one of them in the draws where it is worth more.
    scenario = Scenario.objects.create(workspace=ws, name="voi", budget=180, robust_draws=40,
                                       frontier_points=0, shares={"core": [0, 1]})
    return {"h": (h1, h2), "x": (x1, x2), "invs": invs, "scenario": scenario}


def test_a_run_with_robust_draws_stores_the_value_of_information_matching_brute_force(
        portfolio, team, api):
    run = finished_run(portfolio["scenario"])
    data = run.robust["voi"]
    assert "error" not in data and data["draws"] == 40 and data["solved_draws"] == 40
    assert data["method"] == "exact"
    problem = services.build_problem(run.inputs)
    values = draw_values(problem, 40, 0)  # robust mode's draws: seed 0
    ids = [item.id for item in problem.items]
    h1, h2 = portfolio["h"]
    inv = portfolio["invs"]
    c1 = [ids.index(str(inv[0].pk)), ids.index(str(inv[1].pk))]
    c2 = [ids.index(str(inv[2].pk))]
    sd1, sd2 = 0.16 / (2 * Z90), 0.10 / (2 * Z90)
    z = norm.ppf(0.975) + norm.ppf(0.8)
    se1, se2 = 0.06 / z, 0.2 / z
    r1, r2 = sd1 ** 2 / (sd1 ** 2 + se1 ** 2), sd2 ** 2 / (sd2 ** 2 + se2 ** 2)
    e0, want = brute(problem, values, {"h1": (c1, 1.0), "h2": (c2, 1.0),
                                       "x1": (c1, math.sqrt(r1)), "x2": (c2, math.sqrt(r2))})
    assert data["expected_value_now"] == pytest.approx(e0, abs=1e-6)
    assert data["evpi"]["value"] == pytest.approx(want["evpi"], abs=1e-6)
    assert want["evpi"] > 1.0  # the uncertainty changes the choice
    evppi = {h["id"]: h for h in data["hypotheses"]}
    assert evppi[str(h1.pk)]["evppi"] == pytest.approx(want["h1"], abs=1e-6)
    assert evppi[str(h2.pk)]["evppi"] == pytest.approx(want["h2"], abs=1e-6)
    x1, x2 = portfolio["x"]
    evsi = {x["id"]: x for x in data["experiments"]}
    assert evsi[str(x1.pk)]["evsi"] == pytest.approx(want["x1"], abs=1e-6)
    assert evsi[str(x2.pk)]["evsi"] == pytest.approx(want["x2"], abs=1e-6)
    assert evsi[str(x1.pk)]["resolved_share"] == pytest.approx(r1)
    assert evsi[str(x1.pk)]["evsi_per_cost"] == pytest.approx(want["x1"] / 20.0, abs=1e-6)
    assert evsi[str(x2.pk)]["rank"] is None  # no cost entered: not ranked
    for figure in [data["evpi"], *data["hypotheses"], *data["experiments"]]:
        assert figure["se"] >= 0  # every figure carries its Monte Carlo error
    # Copied onto the rows the hypothesis and experiment pages read, with their run.
    h1.refresh_from_db()
    x1.refresh_from_db()
    assert h1.information["evppi"] == pytest.approx(want["h1"], abs=1e-6)
    assert h1.information["run"] == run.pk
    assert x1.information["evsi"] == pytest.approx(want["x1"], abs=1e-6)
    assert x1.information["rank"] == 1 and x1.information["ranked"] == 1
    # The API: in the run detail and on its own.
    client = api(team["viewer"])
    detail = client.get(f"/api/v1/runs/{run.pk}/").json()
    assert detail["robust"]["voi"]["evpi"] == data["evpi"]
    own = client.get(f"/api/v1/runs/{run.pk}/value-of-information/")
    assert own.status_code == 200 and own.json()["evpi"] == data["evpi"]


def test_pages_show_the_value_of_information(portfolio, team, client):
    run = finished_run(portfolio["scenario"])
    client.force_login(team["viewer"])
    page = client.get(f"/w/acme/runs/{run.pk}/").content.decode()
    evpi = run.robust["voi"]["evpi"]
    assert "Value of information" in page and "EVPPI" in page and "EVSI" in page
    assert f"{round(evpi['value']):,}" in page
    h1 = portfolio["h"][0]
    x1 = portfolio["x"][0]
    page = client.get(f"/w/acme/hypotheses/{h1.pk}/").content.decode()
    assert "EVPPI" in page and f"run #{run.pk}" in page
    page = client.get(f"/w/acme/experiments/{x1.pk}/").content.decode()
    assert "EVSI" in page and "rank 1 of 1" in page


def test_no_draws_is_refused_naming_robust_draws(portfolio, team, api):
    scenario = portfolio["scenario"]
    scenario.robust_draws = 0
    scenario.save()
    run = finished_run(scenario)
    r = api(team["viewer"]).get(f"/api/v1/runs/{run.pk}/value-of-information/")
    assert r.status_code == 400
    assert list(r.json()) == ["robust_draws"]
    assert "robust_draws = 0" in r.json()["robust_draws"][0]


def test_no_uncertain_value_is_refused_naming_the_field(team, api):
    ws = team["acme"]
    for k in range(3):  # assumed lifts: no interval anywhere
        inv = Investment.objects.create(workspace=ws, title=f"i{k}", roadmap="core", cost=10,
                                        assumed_reach=100, assumed_value_per_user=5,
                                        assumed_lift=0.1)
        services.investment_revalue(investment=inv)
    scenario = Scenario.objects.create(workspace=ws, name="flat", budget=20, robust_draws=20,
                                       frontier_points=0, shares={"core": [0, 1]})
    run = finished_run(scenario)
    assert run.status == "optimal"  # the run itself is fine; only the value of information
    assert run.robust["voi"]["field"] == "value_low"
    r = api(team["viewer"]).get(f"/api/v1/runs/{run.pk}/value-of-information/")
    assert r.status_code == 400 and list(r.json()) == ["value_low"]
    assert "no item's value is uncertain" in r.json()["value_low"][0]
