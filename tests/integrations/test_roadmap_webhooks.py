"""Signed roadmap webhooks arrive at a real local receiver: one ``roadmap.adopted`` per adopted
version and one ``roadmap.decision`` per decision (approve, reject, defer, revoke), with
absolute URLs that answer."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from test_webhooks import Receiver, subscribe

from planner import roadmap, services
from planner.models import Investment, RoadmapVersion, Scenario

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _private_targets_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.PUBLIC_BASE_URL = "https://planner.example.org"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_adoption_and_every_decision_arrive_signed_with_absolute_urls(
        team, api, receiver, django_capture_on_commit_callbacks):
    ws = team["acme"]
    subscribe(receiver, ws, "/roadmap", ["roadmap.adopted", "roadmap.decision"])
    subscribe(receiver, ws, "/values", ["investment.changed"])
    subscribe(receiver, team["other"], "/other", ["roadmap.adopted", "roadmap.decision"])
    items = []
    for title, cost, vpu in (("A", 60, 10), ("B", 20, 2), ("C", 10, 1)):
        inv = Investment.objects.create(workspace=ws, title=title, cost=cost, assumed_reach=100,
                                        assumed_value_per_user=vpu, assumed_lift=1.0,
                                        adoption=1.0, external_ref=f"PLAN-{title}")
        items.append(services.investment_revalue(investment=inv))
    a, b, c = items
    scenario = Scenario.objects.create(workspace=ws, name="s", budget=100, frontier_points=0,
                                       shares={"core": [0, 1]})
    council = api(team["council"])
    with django_capture_on_commit_callbacks(execute=True):
        run_id = api(team["analyst"]).post(f"/api/v1/scenarios/{scenario.pk}/run/").json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        r = council.post("/api/v1/roadmap-versions/adopt/", {"run": run_id, "note": "Q1"},
                         format="json")
        assert r.status_code == 201, r.content
    vid = r.json()["id"]
    url = f"/api/v1/roadmap-versions/{vid}/decide/"
    with django_capture_on_commit_callbacks(execute=True):
        for inv, verdict in ((a, "approve"), (b, "defer"), (c, "reject"), (a, "revoke")):
            assert council.post(url, {"investment": inv.pk, "verdict": verdict,
                                      "rationale": f"{verdict} it"},
                                format="json").status_code == 201
    hits = receiver.at("/roadmap")
    assert all(h["valid"] for h in hits)
    assert [h["body"]["event"] for h in hits] == ["roadmap.adopted"] + ["roadmap.decision"] * 4
    adopted = hits[0]["body"]["data"]
    assert adopted["version"]["number"] == 1 and adopted["version"]["note"] == "Q1"
    assert adopted["version"]["adopted_by"] == "council" and adopted["run"] == run_id
    assert sorted(i["title"] for i in adopted["items"]) == ["A", "B", "C"]
    # The request's own host (APIClient: http://testserver), not the fallback setting.
    assert adopted["version_url"] == f"http://testserver/api/v1/roadmap-versions/{vid}/"
    assert adopted["current_url"] == ("http://testserver/api/v1/roadmap-versions/current/"
                                      "?workspace=acme")
    assert adopted["page_url"] == "http://testserver/w/acme/roadmap/v/1/"
    assert adopted["run_url"] == f"http://testserver/w/acme/runs/{run_id}/"
    assert adopted["diff_url"] is None  # nothing before v1
    decisions = [h["body"]["data"] for h in hits[1:]]
    assert [(d["investment"]["title"], d["verdict"], d["state"], d["rationale"])
            for d in decisions] == [("A", "approve", "approve", "approve it"),
                                    ("B", "defer", "defer", "defer it"),
                                    ("C", "reject", "reject", "reject it"),
                                    ("A", "revoke", "proposed", "revoke it")]
    assert decisions[0]["investment"]["external_ref"] == "PLAN-A"
    assert decisions[0]["investment"]["url"] == f"http://testserver/api/v1/investments/{a.pk}/"
    assert decisions[0]["version"] == {"id": vid, "number": 1}
    assert decisions[0]["decided_by"] == "council"
    for link in (adopted["version_url"], adopted["current_url"], decisions[0]["investment"]["url"]):
        parts = urlsplit(link)
        assert council.get(parts.path + ("?" + parts.query if parts.query else "")).status_code \
            == 200
    assert receiver.at("/other") == []


def test_outside_a_request_the_links_use_public_base_url(team, receiver,
                                                         django_capture_on_commit_callbacks):
    ws = team["acme"]
    subscribe(receiver, ws, "/roadmap", ["roadmap.adopted"])
    inv = services.investment_revalue(investment=Investment.objects.create(
        workspace=ws, title="A", cost=10, assumed_reach=10, assumed_value_per_user=1,
        assumed_lift=1.0, adoption=1.0))
    scenario = Scenario.objects.create(workspace=ws, name="s", budget=100, frontier_points=0,
                                       shares={"core": [0, 1]})
    with django_capture_on_commit_callbacks(execute=True):
        run = services.run_start(scenario=scenario)
    run.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        version = roadmap.roadmap_adopt(run=run, user=team["council"])
    [hit] = receiver.at("/roadmap")
    assert hit["valid"] and version == RoadmapVersion.objects.get()
    assert hit["body"]["data"]["version_url"] == (
        f"https://planner.example.org/api/v1/roadmap-versions/{version.pk}/")
    assert [i["investment"] for i in hit["body"]["data"]["items"]] == [inv.pk]
