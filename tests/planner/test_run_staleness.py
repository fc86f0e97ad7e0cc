"""A run becomes stale when an input it used changes: the exact change list, the banner on the
run page, the dashboard and the brief, the re-run, and stale/value_now in the API and CSV."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from experiments.models import Experiment, Hypothesis
from jobs.services import job_run
from planner import services, stale
from planner.models import Investment, OptimizationRun, Scenario

pytestmark = pytest.mark.django_db

BOUGHT = {"name": "bought", "kind": "conversion", "event": "purchase", "window_days": 30}
BANNER = "no longer matches its inputs"


def make(ws, title, **kw):  # type: ignore[no-untyped-def]
    inv = Investment.objects.create(workspace=ws, title=title, roadmap=kw.pop("roadmap", "core"),
                                    adoption=1.0, **kw)
    return inv


def finished_run(scenario: Scenario) -> OptimizationRun:
    run = services.run_start(scenario=scenario)
    job_run(job_id=run.job_id)
    run.refresh_from_db()
    return run


@pytest.fixture
def planted(team, api, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """Three items and a run. A rests on hypothesis H (expected lift 1.0 in [0.5, 1.5], an
    assumption: P(success) 0.2), tested by experiment X, analyzed but not concluded:
    A = 100 users x 10 x 1.0 x 0.2 = 200 (its range simulated, planner.valuation; the run records
    whatever it is); B = 100 x 2 x 1 x 0.2 = 40;
    C = 100 x 9 x 1 x 0.2 = 180. Budget 100 (core 60-80%, experimental 15-30%): {A, B}."""
    ws = team["acme"]
    hyp = Hypothesis.objects.create(workspace=ws, statement="Checklist lifts onboarding",
                                    expected_lift=1.0, expected_lift_low=0.5,
                                    expected_lift_high=1.5)
    a = make(ws, "Onboarding checklist", cost=60, assumed_reach=100, assumed_value_per_user=10)
    a.hypotheses.add(hyp)
    b = make(ws, "B", roadmap="experimental", cost=20, assumed_reach=100,
             assumed_value_per_user=2, assumed_lift=1.0)
    c = make(ws, "C", cost=50, assumed_reach=100, assumed_value_per_user=9, assumed_lift=1.0)
    for inv in (a, b, c):
        services.investment_revalue(investment=inv)
    analyst = api(team["analyst"])
    r = analyst.post("/api/v1/experiments/", {
        "hypothesis": hyp.pk, "name": "Checklist A/B", "kind": "ab", "data_source": "summary",
        "arms": [{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
        "primary_metric": BOUGHT, "guardrail_metrics": []}, format="json")
    assert r.status_code == 201, r.content
    xid = r.json()["id"]
    rows = [{"arm": "control", "metric": "bought", "n": 100, "sum": 40, "sum_sq": 40},
            {"arm": "treatment", "metric": "bought", "n": 100, "sum": 30, "sum_sq": 30}]
    assert analyst.put(f"/api/v1/experiments/{xid}/summaries/", {"rows": rows},
                       format="json").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert analyst.post(f"/api/v1/experiments/{xid}/analyze/").status_code == 202
    scenario = Scenario.objects.create(workspace=ws, name="Q1 plan", budget=100,
                                       frontier_points=0)
    run = finished_run(scenario)
    assert run.status == "optimal" and run.objective == pytest.approx(240.0)
    for inv in (a, b, c):
        inv.refresh_from_db()
    assert a.expected_value == pytest.approx(200) and a.value_low < 200 < a.value_high
    return {"ws": ws, "a": a, "b": b, "c": c, "hyp": hyp, "xid": xid, "scenario": scenario,
            "run": run, **team, "analyst_api": analyst}


def changes(run: OptimizationRun) -> list[tuple]:
    report = stale.run_staleness(run)
    return [(c.kind, c.item_id and int(c.item_id), c.field, c.then, c.now)
            for c in report.changes]


def test_a_fresh_run_is_not_stale(planted):
    report = stale.run_staleness(planted["run"])
    assert (report.stale, report.changes, report.note) == (
        False, [], "no input has changed since the run")


def test_concluding_an_experiment_that_invalidates_the_hypothesis(planted):
    p = planted
    hyp, xid = p["hyp"], p["xid"]
    then_hyp = {"hypothesis": hyp.pk, "status": "proposed",
                "updated_at": Hypothesis.objects.get(pk=hyp.pk).updated_at.isoformat()}
    analyzed = Experiment.objects.get(pk=xid).analyzed_at.isoformat()
    r = p["analyst_api"].post(f"/api/v1/experiments/{xid}/conclude/", {
        "outcome": "invalidated", "now_believe": "no lift", "decision": "drop it"},
        format="json")
    assert r.status_code == 201, r.content
    hyp.refresh_from_db()
    now_hyp = {"hypothesis": hyp.pk, "status": "invalidated",
               "updated_at": hyp.updated_at.isoformat()}
    a = p["a"].pk
    # An invalidated hypothesis and no assumed lift: no lift, value 0, no evidence.
    assert changes(p["run"]) == [
        ("item", a, "value", 200.0, 0.0),
        ("item", a, "value_low", p["a"].value_low, 0.0),
        ("item", a, "value_high", p["a"].value_high, 0.0),
        ("item", a, "evidence", "assumption", "none"),
        ("item", a, "hypotheses", [then_hyp], [now_hyp]),
        ("item", a, "experiments",
         [{"experiment": xid, "status": "analyzed", "analyzed_at": analyzed}],
         [{"experiment": xid, "status": "concluded", "analyzed_at": analyzed}]),
    ]


def test_a_cost_edit_a_budget_change_and_a_deleted_item(planted):
    p = planted
    analyst, c, b = p["analyst_api"], p["c"], p["b"]
    assert analyst.patch(f"/api/v1/investments/{c.pk}/", {"cost": 55},
                         format="json").status_code == 200
    assert changes(p["run"]) == [("item", c.pk, "cost", 50.0, 55.0)]
    assert analyst.patch(f"/api/v1/scenarios/{p['scenario'].pk}/", {"budget": 120},
                         format="json").status_code == 200
    assert changes(p["run"]) == [("scenario", None, "budget", 100.0, 120.0),
                                 ("item", c.pk, "cost", 50.0, 55.0)]
    assert analyst.delete(f"/api/v1/investments/{b.pk}/").status_code == 204
    # Items in id order (b before c), the scenario first.
    assert changes(p["run"]) == [("scenario", None, "budget", 100.0, 120.0),
                                 ("deleted", b.pk, "item", 40.0, None),
                                 ("item", c.pk, "cost", 50.0, 55.0)]
    d = make(p["ws"], "D", cost=5, assumed_reach=10, assumed_value_per_user=1, assumed_lift=1)
    services.investment_revalue(investment=d)  # 10 x 1 x 1 x 0.2 = 2
    assert changes(p["run"]) == [("scenario", None, "budget", 100.0, 120.0),
                                 ("deleted", b.pk, "item", 40.0, None),
                                 ("item", c.pk, "cost", 50.0, 55.0),
                                 ("added", d.pk, "item", None, 2.0)]


def test_decisions_on_the_run_keep_it_current_but_a_rejection_leaves_the_plan(planted):
    p = planted
    council = p["council"]
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(council)
    url = f"/api/v1/runs/{p['run'].pk}/decide/"
    assert client.post(url, {"investment": p["a"].pk, "verdict": "approve", "rationale": "go"},
                       format="json").status_code == 201
    assert changes(p["run"]) == []
    assert client.post(url, {"investment": p["c"].pk, "verdict": "reject", "rationale": "no"},
                       format="json").status_code == 201
    assert changes(p["run"]) == [("item", p["c"].pk, "status", "proposed", "rejected")]


def test_a_run_without_the_record_cannot_tell(planted, client):
    run = planted["run"]
    inputs = dict(run.inputs)
    del inputs["basis"]
    OptimizationRun.objects.filter(pk=run.pk).update(inputs=inputs)
    run.refresh_from_db()
    report = stale.run_staleness(run)
    assert report.stale is None and report.note.startswith("cannot tell")
    client.force_login(planted["viewer"])
    page = client.get(f"/w/acme/runs/{run.pk}/").content.decode()
    assert f"Run #{run.pk}: cannot tell whether it is current" in page


def test_the_banner_on_the_run_page_the_dashboard_and_the_brief(
        planted, client, django_capture_on_commit_callbacks):
    p = planted
    run, c = p["run"], p["c"]
    client.force_login(p["viewer"])
    assert BANNER not in client.get(f"/w/acme/runs/{run.pk}/").content.decode()
    assert f"Current: no input of run #{run.pk} has changed" in client.get(
        "/w/acme/").content.decode()
    p["analyst_api"].patch(f"/api/v1/investments/{c.pk}/", {"cost": 55}, format="json")
    row = (f'<a href="/w/acme/investments/{c.pk}/">C</a></th>\n      <td>cost</td>\n'
           "      <td>50</td><td>55</td></tr>")
    for url in (f"/w/acme/runs/{run.pk}/", "/w/acme/", "/w/acme/brief/"):
        page = client.get(url).content.decode()
        assert f"Stale: run #{run.pk} {BANNER}" in page, url
        assert "1 change since the run of" in page, url
        assert row in page, url
        # A viewer cannot re-run: the banner says who can.
        assert "An analyst, council member or admin can re-run scenario" in page, url
    # Where runs are listed, a stale one says so.
    for url in ("/w/acme/scenarios/", "/w/acme/scenarios/compare/"):
        assert "stale (1 change)</strong>" in client.get(url).content.decode(), url
    # The analyst gets the re-run button; it starts a new run of the same scenario.
    client.force_login(p["analyst"])
    page = client.get("/w/acme/").content.decode()
    assert f'<input type="hidden" name="run" value="{p["scenario"].pk}">' in page
    with django_capture_on_commit_callbacks(execute=True):
        res = client.post("/w/acme/scenarios/", {"run": p["scenario"].pk})
    new = OptimizationRun.objects.exclude(pk=run.pk).get()
    assert res.status_code == 302 and res["Location"] == f"/w/acme/runs/{new.pk}/"
    assert new.scenario_id == p["scenario"].pk and new.finished_at is not None
    assert stale.run_staleness(new).stale is False
    page = client.get("/w/acme/").content.decode()  # the dashboard now shows the new run
    assert f"Current: no input of run #{new.pk} has changed" in page and BANNER not in page
    client.force_login(p["viewer"])
    assert client.post("/w/acme/scenarios/", {"run": p["scenario"].pk}).status_code == 403


def test_the_api_and_the_csv_carry_stale_and_the_current_values(planted, api):
    p = planted
    run, a, c = p["run"], p["a"], p["c"]
    council = api(p["council"])
    for inv in (a, c):
        assert council.post(f"/api/v1/runs/{run.pk}/decide/", {
            "investment": inv.pk, "verdict": "approve", "rationale": "ok"},
            format="json").status_code == 201
    body = council.get(f"/api/v1/runs/{run.pk}/").json()
    assert (body["stale"], body["changes"]) == (False, [])
    p["analyst_api"].patch(f"/api/v1/investments/{c.pk}/", {"cost": 55}, format="json")
    body = council.get(f"/api/v1/runs/{run.pk}/").json()
    assert body["stale"] is True and body["stale_note"] == "1 change(s) since the run"
    assert body["changes"] == [{"kind": "item", "item_id": str(c.pk), "title": "C",
                                "field": "cost", "then": 50.0, "now": 55.0}]
    listed = council.get("/api/v1/runs/").json()["results"]
    assert [(r["id"], r["stale"]) for r in listed] == [(run.pk, True)]
    allocs = {r["investment"]: r for r in council.get(
        f"/api/v1/runs/{run.pk}/allocations/").json()["results"]}
    assert {k: allocs[c.pk][k] for k in ("cost", "cost_now", "value", "value_now", "changed",
                                         "status_now")} == {
        "cost": 50.0, "cost_now": 55.0, "value": 180.0, "value_now": 180.0,
        "changed": ["cost"], "status_now": "approved"}
    assert (allocs[a.pk]["value_now"], allocs[a.pk]["changed"]) == (200.0, [])
    roadmap = council.get(f"/api/v1/runs/{run.pk}/roadmap/").json()
    assert roadmap["stale"] is True and len(roadmap["changes"]) == 1
    rows = {r["investment_id"]: r for r in roadmap["items"]}
    assert (rows[c.pk]["cost"], rows[c.pk]["cost_now"], rows[c.pk]["changed_since_run"]) == (
        50.0, 55.0, "cost")
    text = council.get(f"/api/v1/runs/{run.pk}/roadmap/?as=csv").content.decode()
    csv_rows = {r["title"]: r for r in csv.DictReader(io.StringIO(text))}
    assert {k: csv_rows["C"][k] for k in ("cost", "cost_now", "expected_value",
                                          "expected_value_now", "changed_since_run",
                                          "run_stale")} == {
        "cost": "50.0", "cost_now": "55.0", "expected_value": "180.0",
        "expected_value_now": "180.0", "changed_since_run": "cost", "run_stale": "True"}
    assert csv_rows["Onboarding checklist"]["changed_since_run"] == ""


def test_staleness_reads_a_constant_number_of_queries(planted):
    p = planted

    def count() -> int:
        run = OptimizationRun.objects.get(pk=p["run"].pk)
        with CaptureQueriesContext(connection) as ctx:
            stale.run_staleness(run)
        return len(ctx.captured_queries)

    few = count()
    for n in range(30):
        inv = make(p["ws"], f"extra {n}", cost=10 + n, assumed_reach=5,
                   assumed_value_per_user=1, assumed_lift=0.5)
        inv.hypotheses.add(p["hyp"])
    assert count() == few <= 12  # 12: the current inputs also read the approved roadmap (keep_approved)
