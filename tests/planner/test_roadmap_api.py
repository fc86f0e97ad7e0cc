"""The versioned approved roadmap through its API, on a hand-built portfolio.

Every value is an assumption, so each item's value is reach x adoption x value per user x
lift x P(success | assumption) = 100 x 1 x vpu x 1 x 0.2 = 20 x vpu:
  A core 60 -> 200;  B experimental 20 -> 40;  C core 50 -> 100.
With budget 100 and free shares the best plan is {A, B} (cost 80, value 240): A + C costs 110,
B + C is worth 140.
"""

from __future__ import annotations

import csv
import io

import pytest

from planner import services
from planner.models import (
    Decision,
    Investment,
    InvestmentStatus,
    RoadmapItem,
    RoadmapVersion,
    Scenario,
)

pytestmark = pytest.mark.django_db
FREE = {"core": [0, 1], "experimental": [0, 1], "niche": [0, 1]}


def make(ws, title: str, cost: float, vpu: float, roadmap: str = "core", **kw) -> Investment:
    inv = Investment.objects.create(workspace=ws, title=title, roadmap=roadmap, cost=cost,
                                    assumed_reach=100, assumed_value_per_user=vpu,
                                    assumed_lift=1.0, adoption=1.0, **kw)
    return services.investment_revalue(investment=inv)


@pytest.fixture
def world(team, api, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    ws = team["acme"]
    w = {"ws": ws, "A": make(ws, "A", 60, 10, effort={"web": 2}),
         "B": make(ws, "B", 20, 2, "experimental"), "C": make(ws, "C", 50, 5),
         "council": api(team["council"]), "analyst": api(team["analyst"]),
         "viewer": api(team["viewer"])}
    w["scenario"] = Scenario.objects.create(workspace=ws, name="q1", budget=100, shares=FREE,
                                            frontier_points=0)

    def run(scenario: Scenario | None = None) -> int:
        with django_capture_on_commit_callbacks(execute=True):
            r = w["analyst"].post(f"/api/v1/scenarios/{(scenario or w['scenario']).pk}/run/")
        assert r.status_code == 202, r.content
        return r.json()["id"]

    w["run"] = run
    return w


def adopt(w, run_id: int, **body):  # type: ignore[no-untyped-def]
    return w["council"].post("/api/v1/roadmap-versions/adopt/", {"run": run_id, **body},
                             format="json")


def decide(w, version_id: int, inv: Investment, verdict: str, rationale: str = "why"):  # type: ignore[no-untyped-def]
    return w["council"].post(f"/api/v1/roadmap-versions/{version_id}/decide/", {
        "investment": inv.pk, "verdict": verdict, "rationale": rationale}, format="json")


def test_a_run_before_any_roadmap_is_all_added_then_adopted_as_v1(world):
    w = world
    run_id = w["run"]()
    body = w["viewer"].get(f"/api/v1/runs/{run_id}/against-roadmap/").json()
    assert (body["base"], body["new"], body["stale"]) == ("no roadmap yet", f"run #{run_id}",
                                                          None)
    assert [(c["kind"], c["title"]) for c in body["changes"]] == [("added", "A"), ("added", "B")]
    assert w["viewer"].get("/api/v1/roadmap-versions/current/?workspace=acme").status_code == 404
    assert adopt({**w, "council": w["analyst"]}, run_id).status_code == 403
    r = adopt(w, run_id, note="first plan")
    assert r.status_code == 201, r.content
    v1 = r.json()
    assert (v1["number"], v1["adopted_from"], v1["adopted_by"], v1["note"]) == (
        1, run_id, "council", "first plan")
    assert v1["context"]["budget"] == 100
    assert v1["context"]["roadmap_spend"] == {"core": 60.0, "experimental": 20.0, "niche": 0.0}
    items = {i["title"]: i for i in v1["items"]}
    assert set(items) == {"A", "B"}
    assert items["A"]["value"] == pytest.approx(200.0) and items["A"]["cost"] == 60
    assert items["A"]["state"] == "proposed" and items["A"]["teams"] == {"web": 2}
    assert items["A"]["evidence"] == "assumption"
    assert items["A"]["external_id"] == f"sp-acme-inv-{w['A'].pk}"
    current = w["viewer"].get("/api/v1/roadmap-versions/current/?workspace=acme").json()
    assert current["id"] == v1["id"]
    assert w["viewer"].get("/api/v1/roadmap-versions/current/").status_code == 400


def test_decisions_move_the_item_and_the_investment_and_bad_ones_name_the_item(world):
    w = world
    v1 = adopt(w, w["run"]()).json()
    r = decide(w, v1["id"], w["A"], "approve", "best value per cost")
    assert r.status_code == 201, r.content
    assert (r.json()["version"], r.json()["run"], r.json()["verdict"]) == (v1["id"], None,
                                                                          "approve")
    assert RoadmapItem.objects.get(version_id=v1["id"], investment=w["A"]).state == "approve"
    assert Investment.objects.get(pk=w["A"].pk).status == InvestmentStatus.APPROVED
    # C is not on v1: a 400 naming the field and the item, nothing written.
    before = Decision.objects.count()
    r = decide(w, v1["id"], w["C"], "approve")
    assert r.status_code == 400
    assert r.json() == {"investment": [f"#{w['C'].pk} 'C' is not on roadmap v1"]}
    r = decide(w, v1["id"], w["B"], "approve", "  ")
    assert r.status_code == 400 and "rationale" in r.json()
    r = decide(w, v1["id"], w["B"], "revoke")
    assert r.json() == {"verdict": [f"#{w['B'].pk} 'B' is not approved on v1 (proposed): "
                                    "nothing to revoke"]}
    assert Decision.objects.count() == before
    assert decide({**w, "council": w["analyst"]}, v1["id"], w["B"], "approve").status_code == 403


def test_revoking_a_prerequisite_of_an_approved_item_is_refused(world):
    w = world
    w["B"].depends_on.add(w["A"])
    v1 = adopt(w, w["run"]()).json()
    assert decide(w, v1["id"], w["A"], "approve").status_code == 201
    assert decide(w, v1["id"], w["B"], "approve").status_code == 201
    decisions = Decision.objects.count()
    for verdict in ("revoke", "defer", "reject"):
        r = decide(w, v1["id"], w["A"], verdict)
        assert r.status_code == 400
        assert r.json() == {"investment": [f"#{w['A'].pk} 'A' cannot be revoked: approved "
                                           f"#{w['B'].pk} 'B' depends on it"]}
    assert Decision.objects.count() == decisions
    assert RoadmapItem.objects.get(version_id=v1["id"], investment=w["A"]).state == "approve"
    assert Investment.objects.get(pk=w["A"].pk).status == "approved"
    # Revoke the dependent first, then the prerequisite: both allowed.
    assert decide(w, v1["id"], w["B"], "revoke").status_code == 201
    assert decide(w, v1["id"], w["A"], "revoke").status_code == 201
    assert Investment.objects.get(pk=w["A"].pk).status == "proposed"


def test_approved_items_stay_in_the_next_run_until_revoked(world):
    w = world
    v1 = adopt(w, w["run"]()).json()
    assert decide(w, v1["id"], w["A"], "approve").status_code == 201
    # C becomes worth 20 x 50 = 1,000: without A kept, {B, C} (cost 70, value 1,040) wins.
    w["C"].assumed_value_per_user = 50
    w["C"].save()
    services.investment_revalue(investment=w["C"])
    loose = Scenario.objects.create(workspace=w["ws"], name="loose", budget=100, shares=FREE,
                                    frontier_points=0, keep_approved=False)
    kept_run = w["run"]()
    loose_run = w["run"](loose)

    def chosen(run_id: int) -> list[str]:
        rows = w["viewer"].get(f"/api/v1/runs/{run_id}/allocations/").json()["results"]
        return sorted(r["title"] for r in rows if r["chosen"])

    assert chosen(kept_run) == ["A", "B"]
    inputs = w["viewer"].get(f"/api/v1/runs/{kept_run}/inputs/").json()["inputs"]
    a_input = next(i for i in inputs["items"] if i["id"] == str(w["A"].pk))
    assert a_input["must_do"] is True and a_input["kept_approved"] is True
    assert chosen(loose_run) == ["B", "C"]
    # The loose run against v1: A dropped (budget and approval), C added.
    body = w["viewer"].get(f"/api/v1/runs/{loose_run}/against-roadmap/").json()
    assert [(c["kind"], c["title"], c["reasons"]) for c in body["changes"]] == [
        ("added", "C", [f"new in run #{loose_run}: chosen for its value 1,000 at cost 50"]),
        ("dropped", "A", ["the budget binds: it costs 60 and 30 of 100 is left",
                          "it was approved in v1: revoked, or approved items were not kept"]),
    ]
    # Revoked, A is no longer forced in: the kept scenario now picks {B, C}.
    assert decide(w, v1["id"], w["A"], "revoke", "C is better").status_code == 201
    assert chosen(w["run"]()) == ["B", "C"]


def test_stale_runs_and_items_outside_the_run_are_refused(world):
    w = world
    run_id = w["run"]()
    done = make(w["ws"], "D", 10, 1, status=InvestmentStatus.DONE)
    r = adopt(w, run_id, items=[w["A"].pk, done.pk])
    assert r.status_code == 400
    assert r.json() == {"items": [f"#{done.pk} 'D' is not part of run #{run_id}"]}
    w["C"].cost = 55
    w["C"].save()
    r = adopt(w, run_id)
    assert r.status_code == 400
    assert r.json() == {"run": [f"run #{run_id} is stale: #{w['C'].pk} 'C' cost was 50.00, "
                                "now 55.00; run the scenario again"]}
    assert RoadmapVersion.objects.count() == 0 and RoadmapItem.objects.count() == 0


def test_chosen_items_a_second_version_and_any_two_versions_compared(world):
    w = world
    v1 = adopt(w, w["run"](), items=[w["A"].pk]).json()
    assert [i["title"] for i in v1["items"]] == ["A"]
    assert decide(w, v1["id"], w["A"], "approve").status_code == 201
    w["scenario"].budget = 200
    w["scenario"].save()
    run2 = w["run"]()  # budget 200: all three (cost 130)
    v2 = adopt(w, run2).json()
    assert v2["number"] == 2
    states = {i["title"]: i["state"] for i in v2["items"]}
    assert states == {"A": "approve", "B": "proposed", "C": "proposed"}  # A's decision carries
    body = w["viewer"].get(f"/api/v1/roadmap-versions/{v2['id']}/diff/").json()
    assert (body["base"], body["new"]) == ("v1", "v2")
    assert [(c["kind"], c["title"], c["reasons"]) for c in body["changes"]] == [
        ("added", "B", ["budget changed: 100 → 200"]),
        ("added", "C", ["budget changed: 100 → 200"])]
    back = w["viewer"].get(f"/api/v1/roadmap-versions/{v1['id']}/diff/?against={v2['id']}")
    assert [(c["kind"], c["title"]) for c in back.json()["changes"]] == [("dropped", "B"),
                                                                        ("dropped", "C")]
    assert w["viewer"].get(f"/api/v1/roadmap-versions/{v1['id']}/diff/?against=x").status_code \
        == 400
    listing = w["viewer"].get("/api/v1/roadmap-versions/?workspace=acme").json()["results"]
    assert [v["number"] for v in listing] == [2, 1]
    # v1 is history now: decisions go on the current version.
    r = decide(w, v1["id"], w["A"], "defer")
    assert r.json() == {"version": ["v1 is not the current roadmap version (v2): decisions go "
                                    "on the current version"]}


def test_exports_carry_the_external_ref_and_stable_ids(world):
    w = world
    empty = w["viewer"].get("/api/v1/roadmap-versions/export/?workspace=acme&as=jira")
    assert empty.status_code == 200
    assert list(csv.reader(io.StringIO(empty.content.decode())))[0][:3] == [
        "Issue key", "Summary", "Description"]
    assert len(empty.content.decode().splitlines()) == 1
    r = w["analyst"].patch(f"/api/v1/investments/{w['A'].pk}/", {"external_ref": "PLAN-7"},
                           format="json")
    assert r.status_code == 200 and r.json()["external_ref"] == "PLAN-7"
    v1 = adopt(w, w["run"]()).json()
    assert decide(w, v1["id"], w["A"], "approve").status_code == 201
    for _ in range(2):  # a re-export keeps the reference and the id
        data = w["viewer"].get("/api/v1/roadmap-versions/export/?workspace=acme&as=json").json()
        assert data["version"] == 1 and data["workspace"] == "acme"
        assert [(i["title"], i["external_ref"], i["external_id"]) for i in data["items"]] == [
            ("A", "PLAN-7", f"sp-acme-inv-{w['A'].pk}")]
    rows = list(csv.DictReader(io.StringIO(w["viewer"].get(
        "/api/v1/roadmap-versions/export/?workspace=acme&as=productboard").content.decode())))
    assert [(r["Feature name"], r["Value"], r["Cost"], r["Team"], r["External reference"])
            for r in rows] == [("A", "200.00", "60.00", "web", "PLAN-7")]
    jira = w["viewer"].get("/api/v1/roadmap-versions/export/?workspace=acme&as=jira")
    assert jira["Content-Disposition"] == 'attachment; filename="roadmap-acme-v1-jira.csv"'
    assert w["viewer"].get("/api/v1/roadmap-versions/export/?workspace=acme&as=xls").json() == {
        "as": ["one of json, jira, productboard"]}
