"""Mass assignment: fields the API computes or owns (owner, status, workspace after create,
created_by, computed values, measured lifts, results) cannot be set through it. DRF ignores
read-only fields silently, so each test sends them and checks the stored row afterwards."""

from __future__ import annotations

import datetime as dt

import pytest

from experiments.models import Experiment, Hypothesis
from planner.models import Decision, Investment, Scenario
from segments.models import Segment

pytestmark = pytest.mark.django_db
LONG_AGO = "2001-01-01T00:00:00Z"


def _ok(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.content
    return response.json()


def test_hypotheses_refuse_owner_status_measured_lift_and_workspace(objs, team, api):
    client = api(team["analyst"])
    body = {"workspace": "acme", "statement": "Bigger buttons lift buys", "metric": "bought",
            "expected_lift": 0.1, "owner": "admin", "status": "validated",
            "measured_lift": 0.5, "measured_lift_low": 0.4, "measured_lift_high": 0.6,
            "created_at": LONG_AGO, "updated_at": LONG_AGO, "id": 999_999,
            "workspace_slug": "other"}
    data = _ok(client.post("/api/v1/hypotheses/", body, format="json"), 201)
    h = Hypothesis.objects.get(pk=data["id"])
    assert h.pk != 999_999 and h.workspace == team["acme"] and h.owner == team["analyst"]
    assert h.status == "proposed" and h.measured_lift is None
    assert h.measured_lift_low is None and h.measured_lift_high is None
    assert h.created_at.year > 2001
    _ok(client.patch(f"/api/v1/hypotheses/{h.pk}/", {
        "workspace": "other", "owner": "outsider", "status": "invalidated",
        "measured_lift": -1.0, "statement": "Edited"}, format="json"), 200)
    h.refresh_from_db()
    assert (h.statement, h.workspace, h.owner, h.status, h.measured_lift) == (
        "Edited", team["acme"], team["analyst"], "proposed", None)
    # related objects from another workspace are refused outright
    r = client.patch(f"/api/v1/hypotheses/{h.pk}/", {"segments": [objs["other_segment"].pk]},
                     format="json")
    assert r.status_code == 400 and not h.segments.exists()


COMPUTED = {"expected_value": 1e12, "value_low": 1e11, "value_high": 1e13,
            "value_sources": {"forged": True}, "value_computed_at": LONG_AGO,
            "reach_users": 1e9, "effort_total": 1e6, "value_per_cost": 1e9, "rice": 1e9,
            "ice": 1e9}


def test_investments_refuse_status_owner_computed_values_and_workspace(objs, team, api):
    client = api(team["analyst"])
    body = {"workspace": "acme", "title": "Forged", "cost": 100, "assumed_reach": 10,
            "assumed_value_per_user": 1, "assumed_lift": 0.1, "status": "approved",
            "owner": "admin", "created_at": LONG_AGO, **COMPUTED}
    data = _ok(client.post("/api/v1/investments/", body, format="json"), 201)
    inv = Investment.objects.get(pk=data["id"])
    assert inv.status == "proposed" and inv.owner == team["analyst"]
    assert inv.expected_value < 1e6 and "forged" not in inv.value_sources
    assert inv.reach_users < 1e6 and inv.effort_total == 0
    assert inv.value_computed_at.year > 2001 and inv.created_at.year > 2001
    before = Investment.objects.values().get(pk=inv.pk)
    _ok(client.patch(f"/api/v1/investments/{inv.pk}/", {
        "workspace": "other", "status": "done", "owner": "outsider", **COMPUTED},
        format="json"), 200)
    after = Investment.objects.values().get(pk=inv.pk)
    for field in ("workspace_id", "status", "owner_id", "expected_value", "value_sources",
                  "reach_users", "effort_total", "created_at"):
        assert after[field] == before[field], field
    r = client.patch(f"/api/v1/investments/{inv.pk}/",
                     {"target_segments": [objs["other_segment"].pk]}, format="json")
    assert r.status_code == 400 and not inv.target_segments.exists()


def test_experiments_refuse_status_results_design_and_creator(objs, team, api):
    client = api(team["analyst"])
    body = {"hypothesis": objs["hypothesis"].pk, "name": "Forged test", "kind": "ab",
            "data_source": "summary",
            "arms": [{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
            "primary_metric": {"name": "bought", "kind": "conversion", "event": "purchase",
                               "window_days": 30},
            "status": "concluded", "result": {"kind": "ab", "forged": True},
            "design": {"n_per_arm": 1}, "analyzed_at": LONG_AGO, "assignments_rows": 10**6,
            "assignments_file": "/etc/passwd", "analysis_job": 1, "created_by": team["admin"].pk,
            "workspace": "other", "workspace_slug": "other", "created_at": LONG_AGO}
    data = _ok(client.post("/api/v1/experiments/", body, format="json"), 201)
    x = Experiment.objects.get(pk=data["id"])
    assert (x.status, x.result, x.design, x.analyzed_at, x.assignments_rows) == (
        "design", {}, {}, None, 0)
    assert x.assignments_file == "" and x.analysis_job is None
    assert x.created_by == team["analyst"] and x.workspace == team["acme"]
    _ok(client.patch(f"/api/v1/experiments/{x.pk}/", {
        "status": "analyzed", "result": {"forged": 1}, "design": {"n": 1},
        "assignments_rows": 5, "created_by": team["admin"].pk, "mde": 0.2}, format="json"), 200)
    x.refresh_from_db()
    assert (x.mde, x.status, x.result, x.design, x.assignments_rows, x.created_by) == (
        0.2, "design", {}, {}, 0, team["analyst"])
    # moving it to another workspace through its hypothesis or dataset is refused
    other_h = Hypothesis.objects.create(workspace=team["other"], statement="theirs")
    for change in ({"hypothesis": other_h.pk}, {"dataset": objs["other_dataset"].pk},
                   {"segment": objs["other_segment"].pk}):
        r = client.patch(f"/api/v1/experiments/{x.pk}/", change, format="json")
        assert r.status_code == 400, (change, r.content)
    x.refresh_from_db()
    assert x.workspace == team["acme"] and x.hypothesis == objs["hypothesis"]
    assert x.dataset is None and x.segment is None


def test_segments_refuse_owner_workspace_dataset_and_kind_changes(objs, team, api):
    client = api(team["analyst"])
    body = {"dataset": objs["dataset"].pk, "name": "Forged segment",
            "definition": {"attribute": "plan", "op": "eq", "value": "pro"},
            "owner": "admin", "workspace": "other", "created_at": LONG_AGO}
    data = _ok(client.post("/api/v1/segments/", body, format="json"), 201)
    seg = Segment.objects.get(pk=data["id"])
    assert seg.owner == team["analyst"] and seg.workspace == team["acme"]
    assert seg.created_at.year > 2001
    _ok(client.patch(f"/api/v1/segments/{seg.pk}/", {
        "owner": "outsider", "workspace": "other", "dataset": objs["other_dataset"].pk,
        "kind": "rfm", "name": "Renamed"}, format="json"), 200)
    seg.refresh_from_db()
    assert (seg.name, seg.owner, seg.workspace, seg.dataset, seg.kind) == (
        "Renamed", team["analyst"], team["acme"], objs["dataset"], "rule")
    # a segment cannot be created on another workspace's dataset
    r = client.post("/api/v1/segments/", {**body, "dataset": objs["other_dataset"].pk,
                                          "name": "theirs 2"}, format="json")
    assert r.status_code in (400, 404)
    assert not Segment.objects.filter(name="theirs 2").exists()


def test_scenarios_refuse_creator_and_workspace_changes(objs, team, api):
    client = api(team["analyst"])
    data = _ok(client.post("/api/v1/scenarios/", {
        "workspace": "acme", "name": "Forged plan", "budget": 100,
        "created_by": team["admin"].pk, "created_at": LONG_AGO}, format="json"), 201)
    sc = Scenario.objects.get(pk=data["id"])
    assert sc.created_by == team["analyst"] and sc.created_at.year > 2001
    _ok(client.patch(f"/api/v1/scenarios/{sc.pk}/", {
        "workspace": "other", "created_by": team["outsider"].pk, "budget": 50},
        format="json"), 200)
    sc.refresh_from_db()
    assert (sc.budget, sc.workspace, sc.created_by) == (50, team["acme"], team["analyst"])


def test_decisions_take_the_caller_and_the_clock(objs, team, api):
    r = api(team["council"]).post(f"/api/v1/runs/{objs['run'].pk}/decide/", {
        "investment": objs["investment"].pk, "verdict": "defer", "rationale": "later",
        "decided_by": team["admin"].pk, "decided_at": LONG_AGO, "run": 12345,
        "workspace": "other"}, format="json")
    decision = Decision.objects.get(pk=_ok(r, 201)["id"])
    assert decision.decided_by == team["council"] and decision.run == objs["run"]
    assert decision.workspace == team["acme"]
    assert decision.decided_at > dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    # decisions themselves are read-only through the API
    for method in ("patch", "put", "delete"):
        r = getattr(api(team["admin"]), method)(f"/api/v1/decisions/{decision.pk}/",
                                                {"verdict": "approve"}, format="json")
        assert r.status_code == 405, method
