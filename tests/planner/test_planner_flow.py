"""Planner through the database: valuation from sources, runs, decisions, exports, scoping."""

from __future__ import annotations

import csv
import io
from statistics import NormalDist

import pytest
from django.core.management import call_command

from events.models import Dataset
from experiments.models import Evidence, Hypothesis, HypothesisStatus
from planner import services
from planner.models import Allocation, Investment, OptimizationRun, Scenario
from segments import segment_services
from segments.models import SegmentSnapshot

pytestmark = pytest.mark.django_db

EVENTS = "user_id,event,timestamp,revenue\n" + "".join(
    f"u{i},signup,2025-01-01T00:00:00Z,\nu{i},purchase,2025-01-02T00:00:00Z,{10 * (1 + i % 2)}\n"
    for i in range(40)
) + "u0,session_start,2025-06-01T00:00:00Z,\n"
USERS = "user_id,signup_time,plan\n" + "".join(
    f"u{i},2025-01-01T00:00:00Z,{'pro' if i % 2 else 'free'}\n" for i in range(40))


@pytest.fixture
def segment(team, tmp_path):
    (tmp_path / "e.csv").write_text(EVENTS)
    (tmp_path / "u.csv").write_text(USERS)
    call_command("import_events", workspace="acme", events=tmp_path / "e.csv",
                 users=tmp_path / "u.csv", dataset="app")
    dataset = Dataset.objects.get(name="app")
    seg = segment_services.segment_create(
        dataset=dataset, name="pro", definition={"attribute": "plan", "op": "eq", "value": "pro"})
    call_command("refresh_segments", workspace="acme")
    return seg


def make_investment(workspace, **kw):  # type: ignore[no-untyped-def]
    defaults = {"title": "x", "roadmap": "core", "cost": 100.0}
    return Investment.objects.create(workspace=workspace, **{**defaults, **kw})


def test_expected_value_is_computed_from_snapshot_and_hypothesis(team, segment):
    snap = SegmentSnapshot.objects.get(segment=segment)
    # 20 pro users each paid 20 within 30 days of signup.
    assert snap.size == 20 and snap.signals["ltv_30"]["estimate"] == pytest.approx(20.0)
    hyp = Hypothesis.objects.create(workspace=team["acme"], statement="h", expected_lift=0.1,
                                    expected_lift_low=0.05, expected_lift_high=0.2,
                                    evidence=Evidence.OBSERVATIONAL)
    inv = make_investment(team["acme"], adoption=0.5, value_basis="ltv_90")
    inv.target_segments.add(segment)
    inv.hypotheses.add(hyp)
    services.investment_revalue(investment=inv)
    ltv90 = snap.signals["ltv_90"]
    # 20 users x 0.5 adoption x LTV90 x 10% lift x P(success | observational) 0.35
    assert inv.expected_value == pytest.approx(20 * 0.5 * ltv90["estimate"] * 0.1 * 0.35)
    # The range is propagated: every user paid 20, so only the lift is uncertain, a two-piece
    # normal with median 0.1 whose stated [0.05, 0.2] holds 80%; the stored low is the value's
    # 5th percentile: 0.1 - z(0.95)/z(0.90) x 0.05, times the rest (Monte Carlo, 20,000 draws:
    # one standard error of that percentile is ~0.04 here).
    assert ltv90["low"] == ltv90["high"] == ltv90["estimate"]
    rest = 20 * 0.5 * ltv90["estimate"] * 0.35
    z95, z90 = NormalDist().inv_cdf(0.95), NormalDist().inv_cdf(0.90)
    assert inv.value_low == pytest.approx(rest * (0.1 - z95 / z90 * 0.05), abs=0.15)
    assert inv.value_high == pytest.approx(rest * (0.1 + z95 / z90 * 0.1), abs=0.3)
    assert inv.value_sources["reach"]["source"].startswith(f"snapshot #{snap.pk}")
    assert "hypothesis" in inv.value_sources["lift"]["source"]
    # A concluded experiment replaces the expectation and raises P(success).
    hyp.measured_lift, hyp.measured_lift_low, hyp.measured_lift_high = 0.2, 0.1, 0.3
    hyp.save()
    services.investment_revalue(investment=inv, reason="experiment concluded")
    assert inv.expected_value == pytest.approx(20 * 0.5 * ltv90["estimate"] * 0.2 * 0.7)
    assert [e.reason for e in inv.estimates.all()] == ["experiment concluded", "recomputed"]
    # An invalidated hypothesis leaves no lift and flags the input.
    hyp.status = HypothesisStatus.INVALIDATED
    hyp.save()
    services.investment_revalue(investment=inv, reason="hypothesis invalidated")
    assert inv.expected_value == 0 and inv.value_sources["lift"]["stale"] is True


def test_a_refresh_revalues_investments_and_keeps_history(team, segment):
    inv = make_investment(team["acme"], adoption=1.0, value_basis="ltv_90", assumed_lift=0.1)
    inv.target_segments.add(segment)
    services.investment_revalue(investment=inv)
    first = inv.expected_value
    call_command("refresh_segments", workspace="acme")  # same data: same value, no new row
    inv.refresh_from_db()
    assert inv.expected_value == pytest.approx(first)
    assert inv.estimates.count() == 1


def test_optimizer_run_decisions_and_roadmap_export(api, team, django_capture_on_commit_callbacks):
    ws = team["acme"]
    a = make_investment(ws, title="=HYPERLINK(evil)", cost=60, assumed_reach=100,
                        assumed_value_per_user=10, assumed_lift=1.0, adoption=1.0)
    b = make_investment(ws, title="B", roadmap="experimental", cost=20, assumed_reach=100,
                        assumed_value_per_user=2, assumed_lift=1.0, adoption=1.0)
    c = make_investment(ws, title="C", cost=50, assumed_reach=100, assumed_value_per_user=9,
                        assumed_lift=1.0, adoption=1.0)
    for inv in (a, b, c):
        services.investment_revalue(investment=inv)
    # values (x P(success)=0.2): a 200, b 40, c 180. Budget 100 with core 60-80%, exp 15-30%:
    # {a, b} spends 80 (a 75%, b 25%) -> 240; {c, b} -> 220; {a, c} is over budget.
    scenario = Scenario.objects.create(workspace=ws, name="s", budget=100, frontier_points=3)
    analyst, council = api(team["analyst"]), api(team["council"])
    with django_capture_on_commit_callbacks(execute=True):
        res = analyst.post(f"/api/v1/scenarios/{scenario.pk}/run/")
    assert res.status_code == 202
    run = OptimizationRun.objects.get(pk=res.json()["id"])
    assert run.status == "optimal" and run.proven_optimal
    assert run.objective == pytest.approx(240.0)
    chosen = set(Allocation.objects.filter(run=run, chosen=True).values_list("investment_id",
                                                                             flat=True))
    assert chosen == {a.pk, b.pk}
    assert len(run.frontier) == 3
    # The same inputs again reuse the run.
    again = analyst.post(f"/api/v1/scenarios/{scenario.pk}/run/").json()
    assert again["id"] == run.pk
    # Only council and admin decide; rationale required.
    url = f"/api/v1/runs/{run.pk}/decide/"
    body = {"investment": a.pk, "verdict": "approve", "rationale": "best value per cost"}
    assert analyst.post(url, body, format="json").status_code == 403
    assert council.post(url, {**body, "rationale": ""}, format="json").status_code == 400
    assert council.post(url, body, format="json").status_code == 201
    assert council.post(url, {**body, "investment": b.pk, "verdict": "defer"},
                        format="json").status_code == 201
    a.refresh_from_db()
    assert a.status == "approved"
    roadmap = analyst.get(f"/api/v1/runs/{run.pk}/roadmap/").json()
    assert [r["investment_id"] for r in roadmap["items"]] == [a.pk]
    text = analyst.get(f"/api/v1/runs/{run.pk}/roadmap/?as=csv").content.decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["title"] == "'=HYPERLINK(evil)"  # formula neutralized
    inputs = analyst.get(f"/api/v1/runs/{run.pk}/inputs/").json()["inputs"]
    assert {i["id"] for i in inputs["items"]} == {str(a.pk), str(b.pk), str(c.pk)}


def test_infeasible_scenarios_are_explained(api, team, django_capture_on_commit_callbacks):
    ws = team["acme"]
    inv = make_investment(ws, title="must", cost=500, must_do=True, assumed_reach=1,
                          assumed_value_per_user=1, assumed_lift=1)
    services.investment_revalue(investment=inv)
    scenario = Scenario.objects.create(workspace=ws, name="tight", budget=100, frontier_points=0)
    with django_capture_on_commit_callbacks(execute=True):
        run_id = api(team["analyst"]).post(f"/api/v1/scenarios/{scenario.pk}/run/").json()["id"]
    run = OptimizationRun.objects.get(pk=run_id)
    assert run.status == "infeasible"
    text = " ".join(run.plan["explanation"])
    assert "budget" in text and "must" in text.lower()


def test_backlog_ranking_scoping_and_mass_assignment(api, team):
    ws = team["acme"]
    low = make_investment(ws, title="low", cost=100, assumed_reach=10, assumed_value_per_user=1,
                          assumed_lift=1)
    high = make_investment(ws, title="high", cost=10, assumed_reach=10,
                           assumed_value_per_user=1, assumed_lift=1)
    other = make_investment(team["other"], title="theirs")
    for inv in (low, high):
        services.investment_revalue(investment=inv)
    client = api(team["viewer"])
    titles = [r["title"] for r in client.get("/api/v1/investments/").json()["results"]]
    assert titles == ["high", "low"]
    assert client.get(f"/api/v1/investments/{other.pk}/").status_code == 404
    assert client.post("/api/v1/investments/", {"workspace": "acme", "title": "t", "cost": 5},
                       format="json").status_code == 403
    res = api(team["analyst"]).post("/api/v1/investments/", {
        "workspace": "acme", "title": "t", "cost": 5, "status": "approved",
        "expected_value": 1e9, "owner": "admin"}, format="json")
    assert res.status_code == 201
    body = res.json()
    assert (body["status"], body["expected_value"], body["owner"]) == ("proposed", 0.0, "analyst")
    cross = api(team["analyst"]).post("/api/v1/investments/", {
        "workspace": "acme", "title": "t2", "cost": 5, "depends_on": [other.pk]}, format="json")
    assert cross.status_code == 400
    assert api(team["outsider"]).post("/api/v1/investments/", {
        "workspace": "acme", "title": "t3", "cost": 5}, format="json").status_code == 404


def test_planner_pages_render(client, team):
    ws = team["acme"]
    inv = make_investment(ws, title="Visible", assumed_reach=5, assumed_value_per_user=2,
                          assumed_lift=0.5)
    services.investment_revalue(investment=inv)
    scenario = Scenario.objects.create(workspace=ws, name="s", budget=1000, frontier_points=2)
    run = services.run_start(scenario=scenario)
    from jobs.services import job_run

    job_run(job_id=run.job_id)
    client.force_login(team["council"])
    assert "Visible" in client.get("/w/acme/backlog/").content.decode()
    assert "Why this value" in client.get(f"/w/acme/investments/{inv.pk}/").content.decode()
    page = client.get(f"/w/acme/runs/{run.pk}/").content.decode()
    assert "Efficient frontier" in page and "Record a decision" in page
    res = client.post(f"/w/acme/runs/{run.pk}/", {"investment": inv.pk, "verdict": "approve",
                                                    "rationale": "ok"})
    assert res.status_code == 302
    assert client.get("/w/acme/scenarios/compare/").status_code == 200
    client.force_login(team["outsider"])
    assert client.get(f"/w/acme/runs/{run.pk}/").status_code == 404


def test_updating_a_hypothesis_revalues_its_investments(api, team):
    ws = team["acme"]
    hyp = Hypothesis.objects.create(workspace=ws, statement="h", expected_lift=0.1)
    inv = make_investment(ws, assumed_reach=100, assumed_value_per_user=10)
    inv.hypotheses.add(hyp)
    services.investment_revalue(investment=inv)
    assert inv.expected_value == pytest.approx(100 * 10 * 0.1 * 0.2 * inv.adoption)
    res = api(team["analyst"]).patch(f"/api/v1/hypotheses/{hyp.pk}/",
                                     {"expected_lift": 0.3, "evidence": "observational"},
                                     format="json")
    assert res.status_code == 200
    inv.refresh_from_db()
    assert inv.expected_value == pytest.approx(100 * 10 * 0.3 * 0.35 * inv.adoption)
    assert inv.estimates.first().reason == f"hypothesis #{hyp.pk} changed"
