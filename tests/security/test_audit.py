"""The audit history: who, what, when, before and after, for the tracked models."""

from __future__ import annotations

import math

import pytest

from accounts.models import ApiToken
from audit import context
from audit.models import AuditEntry
from audit.recorder import json_safe
from experiments.models import Hypothesis
from planner import services as planner_services
from planner.models import Investment
from segments.models import Segment

pytestmark = pytest.mark.django_db


def entries(obj: object, action: str | None = None) -> list[AuditEntry]:
    qs = AuditEntry.objects.filter(object_type=obj._meta.label_lower,  # type: ignore[attr-defined]
                                   object_id=str(obj.pk)).order_by("id")  # type: ignore[attr-defined]
    return list(qs.filter(action=action) if action else qs)


def test_create_update_delete_are_recorded_with_before_and_after(team):
    with context.actor(team["analyst"], "command"):
        h = Hypothesis.objects.create(workspace=team["acme"], statement="A", expected_lift=0.1)
        h.statement = "B"
        h.expected_lift = 0.2
        h.save()
        h.save()  # nothing changed: no entry
        pk = h.pk
        h.delete()
    rows = list(AuditEntry.objects.filter(object_type="experiments.hypothesis", object_id=str(pk))
                .order_by("id"))
    assert [r.action for r in rows] == ["create", "update", "delete"]
    create, update, delete = rows
    assert create.after["statement"] == "A" and create.before == {}
    assert update.changed_fields == ["statement", "expected_lift"]
    assert update.before == {"statement": "A", "expected_lift": 0.1}
    assert update.after == {"statement": "B", "expected_lift": 0.2}
    assert delete.before["statement"] == "B" and delete.after == {}
    assert all(r.actor == team["analyst"] and r.actor_name == "analyst" for r in rows)
    assert all(r.source == "command" and r.workspace == team["acme"] for r in rows)
    assert len({r.request_id for r in rows}) == 1 and rows[0].request_id


def test_without_a_request_or_context_the_source_is_system(team):
    h = Hypothesis.objects.create(workspace=team["acme"], statement="A")
    (entry,) = entries(h)
    assert entry.source == "system" and entry.actor is None


def test_computed_investment_fields_are_left_to_the_value_history(objs):
    inv = objs["investment"]
    before = len(entries(inv))
    planner_services.investment_revalue(investment=inv, reason="test")
    inv.refresh_from_db()
    assert inv.expected_value > 0
    inv.save()  # a save that only rewrites computed fields and updated_at
    assert len(entries(inv)) == before
    assert "expected_value" not in entries(inv, "create")[0].after


def test_computed_experiment_fields_are_not_recorded(objs):
    x = objs["experiment"]
    x.result = {"anything": 1}
    x.design = {"n": 10}
    x.save()
    assert entries(x, "update") == []
    x.mde = 0.1
    x.save(update_fields=["mde", "result"])
    (entry,) = entries(x, "update")
    assert entry.changed_fields == ["mde"] and entry.before == {"mde": 0.05}


def test_non_finite_and_json_values_are_stored_json_safe(objs):
    # An audited model's floats all have a domain the database holds (README "Number
    # domains"), so NaN no longer reaches a saved row (PostgreSQL refuses it, SQLite stores
    # NULL); the recorder still writes any non-finite value as null.
    assert json_safe({"lift": math.nan, "items": [math.inf, 1.5]}) == {
        "lift": None, "items": [None, 1.5]}
    inv = objs["investment"]
    inv.effort = {"growth": 2}
    inv.assumed_lift = 0.25
    inv.save()
    (entry,) = entries(inv, "update")
    assert entry.after == {"effort": {"growth": 2}, "assumed_lift": 0.25}


def test_many_to_many_links_are_recorded_both_ways(objs, team):
    inv, seg, h = objs["investment"], objs["segment"], objs["hypothesis"]
    with context.actor(team["admin"], "command"):
        inv.target_segments.add(seg)
        inv.hypotheses.add(h)
        seg.hypotheses.add(h)  # the reverse side of Hypothesis.segments
        inv.target_segments.remove(seg)
        h.segments.clear()
    links = [(e.action, e.changed_fields[0], e.before, e.after) for e in entries(inv)[1:]]
    assert links == [
        ("link", "target_segments", {"target_segments": []}, {"target_segments": [seg.pk]}),
        ("link", "hypotheses", {"hypotheses": []}, {"hypotheses": [h.pk]}),
        ("unlink", "target_segments", {"target_segments": [seg.pk]}, {"target_segments": []}),
    ]
    h_links = [(e.action, e.before, e.after) for e in entries(h) if e.action != "create"]
    assert h_links == [("link", {"segments": []}, {"segments": [seg.pk]}),
                       ("unlink", {"segments": [seg.pk]}, {"segments": []})]


def test_api_changes_name_the_token_user_and_the_api(objs, team, api):
    _, key = ApiToken.issue(user=team["analyst"], name="t")
    client = api(None)
    r = client.patch(f"/api/v1/hypotheses/{objs['hypothesis'].pk}/", {"statement": "New"},
                     format="json", HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_X_REQUEST_ID="req-42")
    assert r.status_code == 200, r.content
    (entry,) = entries(objs["hypothesis"], "update")
    assert (entry.actor, entry.source, entry.request_id) == (team["analyst"], "api", "req-42")
    assert r.headers["X-Request-ID"] == "req-42"
    assert entry.before == {"statement": "Shorter checkout lifts buys"}
    assert entry.after == {"statement": "New"}


def test_api_session_and_forced_users_are_recorded(objs, team, api):
    r = api(team["admin"]).post("/api/v1/investments/", {
        "workspace": "acme", "title": "Onboarding", "cost": 50,
        "target_segments": [objs["segment"].pk]}, format="json")
    assert r.status_code == 201, r.content
    inv = Investment.objects.get(pk=r.json()["id"])
    rows = entries(inv)
    assert [e.action for e in rows] == ["create", "link"]
    assert all(e.actor == team["admin"] and e.source == "api" for e in rows)


def test_page_changes_name_the_session_user_and_the_web(objs, team, client):
    client.force_login(team["analyst"])
    h = objs["hypothesis"]
    r = client.post(f"/w/acme/hypotheses/{h.pk}/", {"status": "prioritized", "note": "go"})
    assert r.status_code == 302
    (entry,) = entries(h, "update")
    assert (entry.actor, entry.source) == (team["analyst"], "web")
    assert entry.before == {"status": "proposed"} and entry.after == {"status": "prioritized"}


def test_a_council_decision_records_the_status_bulk_write(objs, team, api):
    inv, run = objs["investment"], objs["run"]
    r = api(team["council"]).post(f"/api/v1/runs/{run.pk}/decide/", {
        "investment": inv.pk, "verdict": "approve", "rationale": "best value"}, format="json")
    assert r.status_code == 201, r.content
    (bulk,) = entries(inv, "bulk_update")
    assert bulk.before == {"status": "proposed"} and bulk.after == {"status": "approved"}
    assert bulk.actor == team["council"] and bulk.source == "api"
    (decision,) = AuditEntry.objects.filter(object_type="planner.decision", action="create")
    assert decision.after["verdict"] == "approve" and decision.actor == team["council"]
    inv.refresh_from_db()
    assert inv.status == "approved"


def test_record_bulk_updates_every_row_and_skips_unchanged_ones(objs, team):
    import audit

    acme = team["acme"]
    second = Investment.objects.create(workspace=acme, title="Second", cost=1,
                                       status="deferred")
    n = audit.record_bulk(Investment.objects.filter(workspace=acme),
                          {"status": "deferred"}, team["admin"])
    assert n == 2
    assert Investment.objects.filter(workspace=acme, status="deferred").count() == 2
    assert [e.object_id for e in AuditEntry.objects.filter(action="bulk_update")] == [
        str(objs["investment"].pk)]
    assert entries(second, "bulk_update") == []


def test_segment_definition_changes_are_recorded(objs, team):
    seg = objs["segment"]
    with context.actor(team["analyst"], "job"):
        seg.definition = {"all": [{"attribute": "plan", "op": "eq", "value": "free"}]}
        seg.save()
    (entry,) = entries(seg, "update")
    assert entry.changed_fields == ["definition"] and entry.source == "job"
    assert entry.before["definition"]["all"][0]["value"] == "pro"


def test_deleting_a_workspace_takes_its_history_without_errors(objs, team):
    team["acme"].delete()
    assert not AuditEntry.objects.filter(workspace_id=team["acme"].pk).exists()
    assert not Segment.objects.filter(pk=objs["segment"].pk).exists()


def test_the_audit_page_is_for_council_and_admins(objs, team, client):
    objs["hypothesis"].save()
    for who, status in (("viewer", 403), ("analyst", 403), ("council", 200), ("admin", 200),
                        ("outsider", 404)):
        client.force_login(team[who])
        assert client.get("/w/acme/audit/").status_code == status, who
    client.force_login(team["admin"])
    r = client.get("/w/acme/audit/", {"object_type": "experiments.hypothesis"})
    assert b"Shorter checkout" in r.content and b"Checkout A/B" not in r.content
    r = client.get("/w/acme/audit/", {"object_type": "segment", "since": "2000-01-01"})
    assert b"segments.segment #" in r.content and b"experiments.hypothesis #" not in r.content
    assert b"No changes recorded match" in client.get("/w/acme/audit/", {"actor": "nobody"}).content


def test_the_audit_api_is_read_only_and_scoped(objs, team, api):
    with context.actor(team["analyst"], "command"):
        objs["hypothesis"].statement = "Changed"
        objs["hypothesis"].save()
    admin = api(team["admin"])
    rows = admin.get("/api/v1/audit/").json()["results"]
    assert {r["workspace"] for r in rows} == {"acme"}
    assert api(team["viewer"]).get("/api/v1/audit/").json()["results"] == []
    assert api(team["analyst"]).get("/api/v1/audit/").json()["results"] == []
    assert all(r["workspace"] != "acme" for r in
               api(team["outsider"]).get("/api/v1/audit/").json()["results"])
    r = api(team["council"]).get("/api/v1/audit/", {"object_type": "hypothesis",
                                                     "actor": "analyst", "action": "update"})
    (row,) = r.json()["results"]
    assert row["before"] == {"statement": "Shorter checkout lifts buys"}
    assert row["actor"] == "analyst" and row["source"] == "command"
    assert admin.get("/api/v1/audit/", {"since": "yesterday"}).status_code == 400
    assert admin.get("/api/v1/audit/", {"until": "2000-01-01"}).json()["results"] == []
    for method in ("post", "put", "patch", "delete"):
        assert getattr(admin, method)("/api/v1/audit/").status_code == 405
    assert api(None).get("/api/v1/audit/").status_code == 401
