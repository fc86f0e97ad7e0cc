"""The API tests' world: one object of every kind in workspace "acme" (tests/conftest.py's
`team`), made through the services and the API as users would."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command

from behaviour.models import BehaviourAnalysis
from events import services
from events.models import Dataset, Import
from experiments.models import Experiment, Hypothesis, Learning
from integrations import webhooks
from jobs.models import Job
from planner import services as planner_services
from planner.models import Decision, Investment, OptimizationRun, RoadmapVersion, Scenario
from segments import segment_services
from segments.models import Refresh, SegmentSnapshot

# 60 users sign up; two in three buy (so a funnel has drop-off); odd users are on "pro".
EVENTS = "user_id,event,timestamp,revenue\n" + "".join(
    f"u{i},signup,2025-01-01T00:00:00Z,\n"
    + (f"u{i},purchase,2025-01-0{2 + i % 5}T00:00:00Z,{10 * (1 + i % 2)}\n" if i % 3 else "")
    for i in range(60)
) + "u0,session_start,2025-06-01T00:00:00Z,\n"
USERS = "user_id,signup_time,plan\n" + "".join(
    f"u{i},2025-01-01T00:00:00Z,{'pro' if i % 2 else 'free'}\n" for i in range(60))
PRO_BUYERS = {"all": [{"attribute": "plan", "op": "eq", "value": "pro"},
                      {"event": "purchase", "min_count": 1}]}
BOUGHT = {"name": "bought", "kind": "conversion", "event": "purchase", "window_days": 30}


def design(w: dict[str, Any], **change: Any) -> dict[str, Any]:
    body = {"hypothesis": w["hypothesis_x"].pk, "name": "Checkout A/B", "kind": "ab",
            "dataset": w["dataset"].pk, "arms": [{"name": "control", "weight": 0.5},
                                                 {"name": "treatment", "weight": 0.5}],
            "primary_metric": BOUGHT, "guardrail_metrics": [], "data_source": "summary"}
    return {**body, **change}


SUMMARIES = [{"arm": "control", "metric": "bought", "n": 1000, "sum": 100, "sum_sq": 100},
             {"arm": "treatment", "metric": "bought", "n": 1000, "sum": 130, "sum_sq": 130}]


@pytest.fixture
def world(team, api, tmp_path, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """One object of every kind in acme, made through the services and the API."""
    acme = team["acme"]
    admin = api(team["admin"])
    (tmp_path / "e.csv").write_text(EVENTS)
    (tmp_path / "u.csv").write_text(USERS)
    call_command("import_events", workspace="acme", events=tmp_path / "e.csv",
                 users=tmp_path / "u.csv", dataset="app")
    dataset = Dataset.objects.get(workspace=acme, name="app")
    segment = segment_services.segment_create(dataset=dataset, name="pro buyers",
                                              definition=PRO_BUYERS)
    call_command("refresh_segments", workspace="acme")
    w: dict[str, Any] = {
        "workspace": acme, "dataset": dataset, "segment": segment,
        "scratch": services.dataset_create(workspace=acme, name="scratch", description=""),
        "import": Import.objects.get(dataset=dataset),
        "job": Job.objects.filter(workspace=acme).order_by("id").first(),
        "refresh": Refresh.objects.get(dataset=dataset),
        "snapshot": SegmentSnapshot.objects.get(segment=segment),
        "design": design, "summaries": SUMMARIES,
    }

    def ok(response: Any, status: int) -> dict[str, Any]:
        assert response.status_code == status, response.content
        return response.json()

    def hypothesis(statement: str) -> Hypothesis:
        body = {"workspace": "acme", "statement": statement, "metric": "bought",
                "expected_lift": 0.1, "segments": [segment.pk]}
        return Hypothesis.objects.get(pk=ok(admin.post("/api/v1/hypotheses/", body,
                                                       format="json"), 201)["id"])

    w["hypothesis"] = hypothesis("A shorter checkout lifts buys")  # proposed, no experiment
    w["hypothesis_x"] = hypothesis("A one-page checkout lifts buys")
    w["hypothesis_done"] = hypothesis("Free shipping lifts buys")
    # Two experiments on per-arm summaries: one analyzed (the target), one concluded.
    experiments = {}
    for key, hyp in (("experiment", w["hypothesis_x"]), ("concluded", w["hypothesis_done"])):
        body = design(w, hypothesis=hyp.pk, name=f"{key} test")
        xid = ok(admin.post("/api/v1/experiments/", body, format="json"), 201)["id"]
        ok(admin.put(f"/api/v1/experiments/{xid}/summaries/", {"rows": SUMMARIES},
                     format="json"), 200)
        with django_capture_on_commit_callbacks(execute=True):
            ok(admin.post(f"/api/v1/experiments/{xid}/analyze/"), 202)
        experiments[key] = Experiment.objects.get(pk=xid)
        assert experiments[key].result, key
    w["experiment"] = experiments["experiment"]
    # the experiments' metric joined the workspace's library when they were saved
    from experiments.models import Metric

    w["metric"] = Metric.objects.get(workspace=acme, name="bought")
    ok(admin.post(f"/api/v1/experiments/{experiments['concluded'].pk}/conclude/",
                  {"outcome": "invalidated", "now_believe": "no effect",
                   "decision": "stop", "override_reason": "kept if the rule disagrees"},
                  format="json"), 201)
    w["learning"] = Learning.objects.get(experiment=experiments["concluded"])
    investment = Investment.objects.create(workspace=acme, title="Checkout", roadmap="core",
                                           cost=100, adoption=0.5, value_basis="ltv_90")
    investment.target_segments.add(segment)
    investment.hypotheses.add(w["hypothesis_x"])
    planner_services.investment_revalue(investment=investment)
    w["investment"] = investment
    from planner.models import ValueModel

    w["value_model"] = ValueModel.objects.create(
        workspace=acme, name="reports -> LTV", metric="reports_7d", kind="entered", low=0.2,
        mid=0.4, high=0.7, source="cohort study")
    w["scenario"] = Scenario.objects.create(workspace=acme, name="q2", budget=200,
                                            frontier_points=0)
    with django_capture_on_commit_callbacks(execute=True):
        run_id = ok(admin.post(f"/api/v1/scenarios/{w['scenario'].pk}/run/"), 202)["id"]
    w["run"] = OptimizationRun.objects.get(pk=run_id)
    ok(api(team["council"]).post(f"/api/v1/runs/{run_id}/decide/", {
        "investment": investment.pk, "verdict": "approve", "rationale": "best value"},
        format="json"), 201)
    w["decision"] = Decision.objects.get(run=w["run"])
    w["version"] = RoadmapVersion.objects.get(pk=ok(api(team["council"]).post(
        "/api/v1/roadmap-versions/adopt/", {"run": run_id, "items": [investment.pk]},
        format="json"), 201)["id"])
    with django_capture_on_commit_callbacks(execute=True):
        aid = ok(admin.post("/api/v1/analyses/", {
            "dataset": dataset.pk, "kind": "funnel",
            "params": {"steps": ["signup", "purchase"]}}, format="json"), 202)["id"]
    w["analysis"] = BehaviourAnalysis.objects.get(pk=aid)
    assert w["analysis"].result, w["analysis"].job.error
    from behaviour.insights import insight_save

    w["insight"] = insight_save(analysis=w["analysis"], name="signup funnel", user=team["admin"])
    # A webhook subscription with one delivery (queued on commit: never sent in a test).
    w["webhook"] = webhooks.subscription_create(
        workspace=acme, url="https://hooks.example.com/planner", events=["roadmap.approved"],
        user=team["admin"])
    webhooks.send_test(subscription=w["webhook"])
    return w
