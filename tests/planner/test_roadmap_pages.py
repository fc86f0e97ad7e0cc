"""Roadmap pages: the run against the roadmap, adopting (and its form errors), the timeline
with decisions, comparing versions, and the brief's timeline and funded items.

Values as in test_roadmap_api.py: 20 x value per user. A core 60 -> 200 (web 2 units),
B experimental 20 -> 40, C core 50 -> 100 (web 2 units). Budget 200 funds all three; the
web team has 2 units a quarter over 2027Q1-Q2, so A and C start in different quarters.
"""

from __future__ import annotations

import html
import re

import pytest

from planner import services
from planner.models import Investment, RoadmapItem, Scenario

pytestmark = pytest.mark.django_db
FREE = {"core": [0, 1], "experimental": [0, 1], "niche": [0, 1]}


def make(ws, title: str, cost: float, vpu: float, roadmap: str = "core", **kw) -> Investment:
    inv = Investment.objects.create(workspace=ws, title=title, roadmap=roadmap, cost=cost,
                                    assumed_reach=100, assumed_value_per_user=vpu,
                                    assumed_lift=1.0, adoption=1.0, **kw)
    return services.investment_revalue(investment=inv)


@pytest.fixture
def world(team, client, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    ws = team["acme"]
    w = {"A": make(ws, "A", 60, 10, effort={"web": 2}), "B": make(ws, "B", 20, 2, "experimental"),
         "C": make(ws, "C", 50, 5, effort={"web": 2}), "ws": ws, "team": team}
    scenario = Scenario.objects.create(
        workspace=ws, name="q1", budget=200, shares=FREE, frontier_points=0,
        quarters=["2027Q1", "2027Q2"], schedule=True,
        capacity={"web|2027Q1": 2, "web|2027Q2": 2})
    with django_capture_on_commit_callbacks(execute=True):
        w["run"] = services.run_start(scenario=scenario)
    w["run"].refresh_from_db()
    client.force_login(team["council"])
    return w


def text(response) -> str:  # type: ignore[no-untyped-def]
    return html.unescape(re.sub(r"\s+", " ", response.content.decode()))


def test_adopt_from_the_run_then_the_timeline_and_decisions(world, client):
    w = world
    assert "No roadmap adopted yet" in text(client.get("/w/acme/roadmap/"))
    page = text(client.get(f"/w/acme/runs/{w['run'].pk}/"))
    assert "This run against the approved roadmap" in page
    assert f"/w/acme/roadmap/adopt/{w['run'].pk}/" in page
    adopt = f"/w/acme/roadmap/adopt/{w['run'].pk}/"
    assert "Adopt run" in text(client.get(adopt))
    r = client.post(adopt, {"note": "nothing ticked"})
    assert r.status_code == 400
    assert "items: choose at least one item of the run to adopt" in text(r)
    r = client.post(adopt, {"items": [w["A"].pk, w["B"].pk, w["C"].pk], "note": "Q1 plan"})
    assert r.status_code == 302 and r["Location"] == "/w/acme/roadmap/"
    quarters = dict(RoadmapItem.objects.values_list("title", "start_quarter"))
    assert sorted([quarters["A"], quarters["C"]]) == ["2027Q1", "2027Q2"]
    page = text(client.get("/w/acme/roadmap/"))
    assert "Approved roadmap: v1 (current)" in page and "Note: Q1 plan" in page
    heads = re.findall(r'<div class="tl-head" role="columnheader">([^<]+)</div>', page)
    assert heads == ["Team", "2027Q1", "2027Q2"]
    lanes = re.findall(r'<div class="tl-team" role="rowheader"[^>]*>([^<]+)</div>', page)
    assert lanes == ["web", "no team"]
    assert "What changed since no roadmap yet" in page
    # Decisions on the page: approve A; an item not on v1 is a form error naming it.
    r = client.post("/w/acme/roadmap/", {"investment": w["A"].pk, "verdict": "approve",
                                         "rationale": "go"})
    assert r.status_code == 302
    assert RoadmapItem.objects.get(title="A").state == "approve"
    d = make(w["ws"], "D", 5, 1)
    r = client.post("/w/acme/roadmap/", {"investment": d.pk, "verdict": "approve",
                                         "rationale": "go"})
    assert r.status_code == 400
    assert f"investment: #{d.pk} 'D' is not on roadmap v1" in text(r)
    client.force_login(w["team"]["viewer"])
    assert client.post("/w/acme/roadmap/", {"investment": w["B"].pk, "verdict": "approve",
                                            "rationale": "go"}).status_code == 403
    assert client.post(adopt, {"items": [w["A"].pk]}).status_code == 403
    # The brief: the timeline, the funded items by roadmap and shares of spend (not budget).
    brief = text(client.get("/w/acme/brief/"))
    assert "Approved roadmap: v1" in brief and "Funded items" in brief
    assert "Share of spend" in brief and "Decisions recorded on roadmap v1" in brief
    # Spend 130: core (A + C) 110 / 130 = 84.6%, experimental 20 / 130 = 15.4%.
    assert re.search(r"Core</th><td class=\"num\">2</td><td class=\"num\">110</td>"
                     r"<td class=\"num\">84.6%</td>", brief), brief[:200]


def test_a_stale_run_is_refused_on_the_adopt_form(world, client):
    w = world
    Investment.objects.filter(pk=w["C"].pk).update(cost=55)
    r = client.post(f"/w/acme/roadmap/adopt/{w['run'].pk}/", {"items": [w["A"].pk]})
    assert r.status_code == 400
    assert (f"run: run #{w['run'].pk} is stale: #{w['C'].pk} 'C' cost was 50.00, now 55.00"
            in text(r))
    assert RoadmapItem.objects.count() == 0


def test_compare_two_versions_and_refuse_unknown_ones(world, client, django_capture_on_commit_callbacks):
    w = world
    adopt = f"/w/acme/roadmap/adopt/{w['run'].pk}/"
    assert client.post(adopt, {"items": [w["A"].pk]}).status_code == 302
    assert client.post(adopt, {"items": [w["A"].pk, w["B"].pk]}).status_code == 302
    page = text(client.get("/w/acme/roadmap/compare/?a=1&b=2"))
    assert "From v1 to v2" in page
    assert re.search(r'<span class="change change-added">added</span></td><th scope="row">B</th>',
                     page)
    r = client.get("/w/acme/roadmap/compare/?a=1&b=9")
    assert r.status_code == 400 and "b: '9' is not a version of this roadmap" in text(r)
    page = text(client.get("/w/acme/roadmap/v/1/"))
    assert "(history; current is" in page
    assert client.get("/w/acme/roadmap/v/7/").status_code == 404


def test_forms_set_keep_approved_and_the_external_reference(team, client):
    client.force_login(team["admin"])
    r = client.post("/w/acme/scenarios/", {"name": "loose", "budget": "100",
                                           "robust_draws": "0", "frontier_points": "0",
                                           "time_limit": "5"})  # the checkbox left unticked
    assert r.status_code == 302
    assert Scenario.objects.get(name="loose").keep_approved is False
    assert Scenario(workspace=team["acme"], name="x", budget=1).keep_approved is True
    r = client.post("/w/acme/investments/new/", {
        "title": "Tracked", "roadmap": "core", "cost": "10", "effort": "{}",
        "duration_quarters": "1", "external_ref": "PLAN-42", "adoption": "0.2",
        "value_basis": "ltv_90", "horizon_months": "12", "impact": "1", "confidence": "0.5",
        "ease": "5"})
    assert r.status_code == 302
    assert Investment.objects.get(title="Tracked").external_ref == "PLAN-42"
