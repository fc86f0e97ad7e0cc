"""The pages' POST actions walked as every role (segments.models.ROLE_ACTIONS) and as another
workspace's admin: a role that may act gets the page's success answer, one that may not gets
403, and the outsider 404 (acme does not exist for them). Each call runs in a savepoint that is
rolled back, so the calls do not depend on each other; jobs queued on commit never run.
The API has its own walk (tests/api/test_endpoint_walk.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from accounts.models import ROLE_ACTIONS, ApiToken
from behaviour.models import BehaviourAnalysis
from experiments.models import ArmSummary
from planner import roadmap
from planner.models import OptimizationRun

pytestmark = pytest.mark.django_db
ROLES = ("viewer", "analyst", "council", "admin")
RULE = json.dumps({"all": [{"attribute": "plan", "op": "eq", "value": "pro"}]})


@dataclass(frozen=True)
class Post:
    action: str  # the role action it needs
    url: Callable[[dict[str, Any]], str]
    data: Callable[[dict[str, Any]], dict[str, Any]]
    ok: int = 302


def _investment(o: dict[str, Any]) -> dict[str, Any]:
    return {"title": "Page item", "description": "", "roadmap": "core", "cost": "100",
            "effort": "{}", "duration_quarters": "1", "target_segments": [o["segment"].pk],
            "exclusion_group": "", "adoption": "0.2", "value_basis": "ltv_90",
            "horizon_months": "12", "impact": "1", "confidence": "0.5", "ease": "5"}


def _hypothesis(o: dict[str, Any]) -> dict[str, Any]:
    return {"statement": "Page hypothesis", "segments": [o["segment"].pk], "metric": "bought",
            "expected_lift": "0.1", "evidence": "assumption", "guardrail_metrics": ""}


def _experiment(o: dict[str, Any]) -> dict[str, Any]:
    from experiments.models import Metric

    bought, _ = Metric.objects.get_or_create(
        workspace=o["hypothesis"].workspace, name="bought",
        defaults={"kind": "proportion", "event": "purchase", "window_days": 30})
    return {"name": "Page test", "dataset": o["dataset"].pk,
            "arms": "control:0.5, treatment:0.5", "primary_metric": bought.pk, "mde": "5",
            "alpha": "5", "power": "80", "data_source": "summary", "cuped_pre_days": "0",
            "correction": "holm"}


def _x(o: dict[str, Any]) -> str:
    return f"/w/acme/experiments/{o['experiment'].pk}/"


POSTS: dict[str, Post] = {
    # data
    "dataset create": Post("import", lambda o: "/w/acme/",
                           lambda o: {"name": "uploads 2", "description": ""}),
    # segments
    "segment create": Post("define", lambda o: "/w/acme/segments/new/", lambda o: {
        "name": "page seg", "dataset": o["dataset"].pk, "kind": "rule", "definition": RULE}),
    "segment edit": Post("define", lambda o: f"/w/acme/segments/{o['segment'].pk}/edit/",
                         lambda o: {"name": "pro 2", "dataset": o["dataset"].pk,
                                    "kind": "rule", "definition": RULE}),
    "segment refresh": Post("define", lambda o: "/w/acme/segments/refresh/",
                            lambda o: {"dataset": o["dataset"].pk}),
    # Starting an analysis is compute: not for viewers (403); this dataset has no events, so a
    # role that may gets the input's 400 ("no events yet").
    "behaviour analysis": Post("define", lambda o: "/w/acme/behaviour/",
                               lambda o: {"dataset": o["dataset"].pk, "kind": "retention"},
                               ok=400),
    "behaviour save segment": Post(
        "define", lambda o: f"/w/acme/behaviour/{o['analysis'].pk}/",
        lambda o: {"name": "dropped", "step": "1"}),
    "behaviour save insight": Post(
        "define", lambda o: f"/w/acme/behaviour/{o['analysis'].pk}/save-insight/",
        lambda o: {"name": "pinned"}),
    # planner
    "investment create": Post("define", lambda o: "/w/acme/investments/new/", _investment),
    "investment edit": Post("define",
                            lambda o: f"/w/acme/investments/{o['investment'].pk}/edit/",
                            _investment),
    "scenario create": Post("define", lambda o: "/w/acme/scenarios/", lambda o: {
        "name": "page plan", "budget": "100", "robust_draws": "0", "frontier_points": "0",
        "time_limit": "5"}),
    "scenario run": Post("define", lambda o: "/w/acme/scenarios/",
                         lambda o: {"run": o["scenario"].pk}),
    "decision": Post("decide", lambda o: f"/w/acme/runs/{o['run'].pk}/", lambda o: {
        "investment": o["investment"].pk, "verdict": "approve", "rationale": "best value"}),
    "roadmap adopt": Post("decide", lambda o: f"/w/acme/roadmap/adopt/{o['run'].pk}/",
                          lambda o: {"items": [o["investment"].pk], "note": "page"}),
    "roadmap decision": Post("decide", lambda o: "/w/acme/roadmap/", lambda o: {
        "investment": o["investment"].pk, "verdict": "approve", "rationale": "best value"}),
    # hypotheses and experiments
    "hypothesis create": Post("define", lambda o: "/w/acme/hypotheses/new/", _hypothesis),
    "hypothesis edit": Post("define",
                            lambda o: f"/w/acme/hypotheses/{o['hypothesis'].pk}/edit/",
                            _hypothesis),
    "hypothesis transition": Post("define",
                                  lambda o: f"/w/acme/hypotheses/{o['hypothesis'].pk}/",
                                  lambda o: {"status": "prioritized", "note": ""}),
    "experiment create": Post(
        "define", lambda o: f"/w/acme/hypotheses/{o['hypothesis'].pk}/experiments/new/",
        _experiment),
    "experiment edit": Post("define", lambda o: f"{_x(o)}edit/", _experiment),
    "experiment start": Post("define", _x, lambda o: {"action": "start"}),
    "experiment analyze": Post("define", _x, lambda o: {"action": "analyze"}),
    "experiment conclude": Post("define", _x, lambda o: {
        "action": "conclude", "outcome": "validated", "now_believe": "it works",
        "decision": "ship", "scope": "all", "override_reason": "if the rule disagrees"}),
    "decision rule": Post("manage", lambda o: "/w/acme/experiments/decision-rule/", lambda o: {
        "read": "bayesian", "chance_to_win": "0.95", "risk_tolerance": "0.0025",
        "prior_mean": "0", "prior_variance": "0.09"}),
    # administration
    "webhook create": Post("manage", lambda o: "/w/acme/webhooks/", lambda o: {
        "op": "create", "url": "https://hooks.example.com/x", "events": ["roadmap.approved"]},
        ok=200),
}
PAGES = ["/w/acme/", "/w/acme/segments/", "/w/acme/backlog/", "/w/acme/scenarios/",
         "/w/acme/hypotheses/", "/w/acme/learnings/", "/w/acme/jobs/", "/w/acme/behaviour/",
         "/w/acme/brief/", "/w/acme/webhooks/", "/w/acme/segments/new/",
         "/w/acme/investments/new/", "/w/acme/hypotheses/new/", "/w/acme/roadmap/",
         "/w/acme/roadmap/compare/", "/w/acme/experiments/decision-rule/", "/w/acme/insights/"]


class _Rollback(Exception):
    pass


@pytest.fixture
def world(objs, team) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    x = objs["experiment"]
    for arm, total in (("control", 100), ("treatment", 130)):
        ArmSummary.objects.create(experiment=x, arm=arm, metric="bought", n=1000, sum=total,
                                  sum_sq=total)
    objs["analysis"] = BehaviourAnalysis.objects.create(
        workspace=team["acme"], dataset=objs["dataset"], kind="funnel",
        params={"steps": ["signup", "purchase"]}, dataset_version=0, input_hash="x")
    # The run finished with the investment at its current figures: it can be adopted (v1).
    inv = objs["investment"]
    OptimizationRun.objects.filter(pk=objs["run"].pk).update(
        finished_at=timezone.now(), inputs={"budget": 500, "items": [
            {"id": str(inv.pk), "value": inv.expected_value, "cost": inv.cost}]})
    objs["run"].refresh_from_db()
    roadmap.roadmap_adopt(run=objs["run"], user=team["council"])
    return objs


def _post(client: Any, url: str, data: dict[str, Any]) -> Any:
    result = {}
    client.raise_request_exception = False
    try:
        with transaction.atomic():
            result["r"] = client.post(url, data)
            raise _Rollback
    except _Rollback:
        pass
    return result["r"]


def test_every_page_action_answers_by_role(world, team, client):  # type: ignore[no-untyped-def]
    mismatches: list[str] = []
    checked = 0
    for who in (*ROLES, "outsider"):
        client.force_login(team[who])
        for name, op in POSTS.items():
            url = op.url(world)
            want = 404 if who == "outsider" else (
                op.ok if op.action in ROLE_ACTIONS[who] else 403)
            r = _post(client, url, op.data(world))
            checked += 1
            if r.status_code != want:
                detail = r.content[:300].decode(errors="replace") if r.status_code == 200 else ""
                mismatches.append(f"{who:8} {name:24} POST {url}: want {want}, got "
                                  f"{r.status_code} {detail}")
    assert not mismatches, "\n".join(mismatches)
    assert checked == 5 * len(POSTS)


def test_the_successful_actions_really_act(world, team, client):  # type: ignore[no-untyped-def]
    """A 302 could be a redirect after a refusal: check a few writes landed, by the right role."""
    client.force_login(team["analyst"])
    client.post("/w/acme/hypotheses/new/", _hypothesis(world))
    client.post("/w/acme/investments/new/", _investment(world))
    client.post("/w/acme/segments/new/", {"name": "page seg", "dataset": world["dataset"].pk,
                                          "kind": "rule", "definition": RULE})
    client.post(f"/w/acme/hypotheses/{world['hypothesis'].pk}/experiments/new/",
                _experiment(world))
    client.force_login(team["council"])
    client.post(f"/w/acme/runs/{world['run'].pk}/", {
        "investment": world["investment"].pk, "verdict": "reject", "rationale": "no"})
    acme = team["acme"]
    assert acme.hypotheses.filter(statement="Page hypothesis").exists()
    assert acme.investments.filter(title="Page item").exists()
    assert acme.segments.filter(name="page seg").exists()
    assert acme.experiments.filter(name="Page test").exists()
    world["investment"].refresh_from_db()
    assert world["investment"].status == "rejected"


def test_every_page_is_404_for_another_workspace(world, team, client):  # type: ignore[no-untyped-def]
    client.force_login(team["outsider"])
    urls = [*PAGES, f"/w/acme/segments/{world['segment'].pk}/",
            f"/w/acme/investments/{world['investment'].pk}/",
            f"/w/acme/hypotheses/{world['hypothesis'].pk}/", _x(world),
            f"/w/acme/runs/{world['run'].pk}/", f"/w/acme/datasets/{world['dataset'].pk}/",
            f"/w/acme/behaviour/{world['analysis'].pk}/", "/w/acme/audit/",
            f"/w/acme/roadmap/adopt/{world['run'].pk}/", "/w/acme/roadmap/v/1/"]
    assert {u: client.get(u).status_code for u in urls} == {u: 404 for u in urls}
    # and the pages work for a member, so the 404s are about the workspace
    client.force_login(team["viewer"])
    assert {u: client.get(u).status_code for u in PAGES if "new" not in u} == {
        u: 200 for u in PAGES if "new" not in u}


def test_tokens_belong_to_their_user(team, client):  # type: ignore[no-untyped-def]
    token, _ = ApiToken.issue(user=team["admin"], name="admin's tool")
    client.force_login(team["viewer"])
    assert client.post("/account/tokens/", {"name": "mine"}).status_code == 200
    assert client.post("/account/tokens/", {"revoke": token.pk}).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert ApiToken.objects.filter(user=team["viewer"], name="mine").exists()
    client.logout()
    r = client.post("/account/tokens/", {"name": "anon"})
    assert r.status_code == 302 and "/accounts/login/" in r["Location"]


def test_anonymous_page_posts_go_to_the_login(world, client):  # type: ignore[no-untyped-def]
    for name, op in POSTS.items():
        r = _post(client, op.url(world), op.data(world))
        assert r.status_code == 302 and "/accounts/login/" in r["Location"], name
