"""The workspace dashboard, the council brief and API tokens in the UI."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import ApiToken
from events.models import Dataset
from planner import services
from planner.dashboard import dashboard
from planner.models import Allocation, Investment, OptimizationRun, Scenario
from segments import segment_services
from segments.models import SegmentSnapshot

pytestmark = pytest.mark.django_db


def events_csv(users: int, amount: float) -> str:
    rows = [f"u{i},signup,2025-01-01T00:00:00Z,\nu{i},purchase,2025-01-02T00:00:00Z,"
            f"{amount * (1 + i % 2)}\n" for i in range(users)]
    # One later session gives every user 90 days of history (the LTV needs it).
    return "user_id,event,timestamp,revenue\n" + "".join(rows) + \
        "u0,session_start,2025-06-01T00:00:00Z,\n"


USERS = "user_id,signup_time,plan\n" + "".join(
    f"u{i},2025-01-01T00:00:00Z,{'pro' if i % 2 else 'free'}\n" for i in range(40))


@pytest.fixture
def ws(team, tmp_path, django_capture_on_commit_callbacks):
    (tmp_path / "e.csv").write_text(events_csv(40, 10))
    (tmp_path / "u.csv").write_text(USERS)
    call_command("import_events", workspace="acme", events=tmp_path / "e.csv",
                 users=tmp_path / "u.csv", dataset="app")
    dataset = Dataset.objects.get(name="app")
    for name, plan in (("pro", "pro"), ("free", "free")):
        segment_services.segment_create(dataset=dataset, name=name, definition={
            "attribute": "plan", "op": "eq", "value": plan})
    call_command("refresh_segments", workspace="acme")
    acme = team["acme"]
    for title, roadmap, cost, value in (("A", "core", 60, 10), ("B", "experimental", 20, 2),
                                        ("C", "niche", 10, 3)):
        inv = Investment.objects.create(workspace=acme, title=title, roadmap=roadmap, cost=cost,
                                        assumed_reach=100, assumed_value_per_user=value,
                                        assumed_lift=1.0, adoption=1.0)
        services.investment_revalue(investment=inv)
    scenario = Scenario.objects.create(workspace=acme, name="q1", budget=100,
                                       shares={"core": [0, 1], "experimental": [0, 1],
                                               "niche": [0, 1]}, frontier_points=2)
    with django_capture_on_commit_callbacks(execute=True):
        services.run_start(scenario=scenario)
    return {"dataset": dataset, "tmp": tmp_path, **team}


def test_dashboard_sections_hold_the_stored_numbers(ws, tmp_path):
    d = dashboard(ws["acme"], ws["analyst"])
    top = d["top_segments"]
    # pro users paid 20 each, free users 10: pro first; values are the snapshots' own.
    assert [r["segment"].name for r in top] == ["pro", "free"]
    for r in top:
        snap = SegmentSnapshot.objects.filter(segment=r["segment"]).latest("computed_at")
        assert r["signal"] == "ltv_90"
        assert r["value"] == snap.signals["ltv_90"]["estimate"] and r["size"] == 20
        assert r["change"] is None  # one snapshot only
    run = OptimizationRun.objects.get()
    alloc = {r["roadmap"]: r for r in d["allocation"]["by_roadmap"]}
    for key, label in (("core", "Core"), ("experimental", "Experimental"), ("niche", "Niche")):
        rows = Allocation.objects.filter(run=run, chosen=True, roadmap=key)
        assert alloc[label]["cost"] == sum(a.cost for a in rows)
        assert alloc[label]["items"] == rows.count()
    # Share of spend (as the run page shows it), not of the budget: A, B and C cost 90 of 100.
    assert d["allocation"]["spend"] == 90
    assert alloc["Core"]["share"] == pytest.approx(60 / 90)
    assert alloc["Niche"]["share"] == pytest.approx(10 / 90)
    funded = {g["roadmap"]: [(i["title"], i["value"], i["cost"]) for i in g["items"]]
              for g in d["allocation"]["funded"]}
    # 100 users x value per user x lift 1 x P(success | assumption) 0.2
    assert funded == {"core": [("A", pytest.approx(200.0), 60)],
                      "experimental": [("B", pytest.approx(40.0), 20)],
                      "niche": [("C", pytest.approx(60.0), 10)]}
    # value per cost = 100 reach x value x lift 1 x P(success) 0.2 / cost: C 6, A 3.33, B 2
    assert [i.title for i in d["backlog_head"]] == ["C", "A", "B"]
    assert d["last_refresh"] is not None and d["quality"][0]["import"].rows_kept == 81

    # New data doubles every amount: the change since the last snapshot is the difference.
    before = {r["segment"].name: r["value"] for r in top}
    (tmp_path / "e2.csv").write_text(events_csv(40, 10).replace(
        "2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z"))
    call_command("import_events", workspace="acme", events=tmp_path / "e2.csv", dataset="app")
    call_command("refresh_segments", workspace="acme")
    after = {r["segment"].name: r for r in dashboard(ws["acme"], ws["analyst"])["top_segments"]}
    for name in ("pro", "free"):
        assert after[name]["value"] == pytest.approx(2 * before[name])
        assert after[name]["change"] == pytest.approx(before[name])


def test_home_page_query_count_does_not_grow_with_the_data(ws, client):
    client.force_login(ws["admin"])

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/w/acme/").status_code == 200
        return len(ctx)

    small = count()
    dataset = ws["dataset"]
    for i in range(6):
        segment_services.segment_create(dataset=dataset, name=f"extra {i}", definition={
            "attribute": "plan", "op": "eq", "value": "pro"})
        Investment.objects.create(workspace=ws["acme"], title=f"more {i}", cost=5)
    call_command("refresh_segments", workspace="acme")
    assert count() == small


def test_pages_render_for_every_role(ws, client):
    for role in ("viewer", "analyst", "council", "admin"):
        client.force_login(ws[role])
        home = client.get("/w/acme/").content.decode()
        assert "Segments by value" in home and "Latest allocation" in home
        brief = client.get("/w/acme/brief/").content.decode()
        for heading in ("1. Which segments carry value", "2. Proposed allocation",
                        "3. Backlog head", "4. Hypotheses in flight", "5. What we learned"):
            assert heading in brief
    client.force_login(ws["outsider"])
    assert client.get("/w/acme/brief/").status_code == 404


def test_tokens_are_created_shown_once_used_and_revoked(ws, client):
    client.force_login(ws["analyst"])
    assert client.post("/account/tokens/", {"name": ""}).status_code == 400
    page = client.post("/account/tokens/", {"name": "roadmap tool"}).content.decode()
    key = page.split('id="new-key">')[1].split("<")[0]
    assert key.startswith("spk_")
    token = ApiToken.objects.get(user=ws["analyst"])
    assert token.key_hash == ApiToken.hash_key(key) and key not in client.get(
        "/account/tokens/").content.decode()
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get("/api/v1/investments/").status_code == 200
    # Someone else cannot revoke it; its owner can, and then it stops working.
    client.force_login(ws["viewer"])
    assert client.post("/account/tokens/", {"revoke": token.pk}).status_code == 404
    client.force_login(ws["analyst"])
    assert client.post("/account/tokens/", {"revoke": token.pk}).status_code == 302
    assert api.get("/api/v1/investments/").status_code == 401
