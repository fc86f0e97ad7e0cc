"""`?updated_since=` on /api/v1/investments/ misses nothing: every path that changes what the
endpoint returns (value, interval, rank, status, evidence, cost, effort, dependencies) moves
the item's change time, and only the items it changed (rank moves included) are returned."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.utils import timezone

from events.models import Dataset
from experiments.models import Hypothesis
from planner import services
from planner.models import Investment, OptimizationRun, Scenario
from segments import segment_services

pytestmark = pytest.mark.django_db

BOUGHT = {"name": "bought", "kind": "conversion", "event": "purchase", "window_days": 30}


def make(ws, title, value_per_user, cost=10.0, **kw):  # type: ignore[no-untyped-def]
    """An item worth 100 users x value_per_user x lift 1 x P(success | assumption) 0.2."""
    inv = Investment.objects.create(workspace=ws, title=title, cost=cost, adoption=1.0,
                                    assumed_reach=100, assumed_value_per_user=value_per_user,
                                    assumed_lift=kw.pop("assumed_lift", 1.0), **kw)
    services.investment_revalue(investment=inv)
    inv.refresh_from_db()
    return inv


@pytest.fixture
def feed(team, api):  # type: ignore[no-untyped-def]
    """P, Q, R: values 200, 100, 40 at cost 10 (value per cost 20, 10, 4): ranks 1, 2, 3."""
    ws = team["acme"]
    items = {"P": make(ws, "P", 10), "Q": make(ws, "Q", 5), "R": make(ws, "R", 2)}
    ranks = {k: Investment.objects.get(pk=v.pk).rank for k, v in items.items()}
    assert ranks == {"P": 1, "Q": 2, "R": 3}
    client = api(team["analyst"])

    def since(moment):  # type: ignore[no-untyped-def]
        res = client.get("/api/v1/investments/", {"updated_since": moment.isoformat()})
        assert res.status_code == 200, res.content
        return sorted(r["title"] for r in res.json()["results"])

    return {"ws": ws, "client": client, "since": since, **items, **team}


def test_a_cost_edit_moves_the_item_and_those_whose_rank_moved(feed):
    client, since = feed["client"], feed["since"]
    before = timezone.now()
    assert since(before) == []
    # R: value per cost 4 -> 3.6, still last: only R.
    assert client.patch(f"/api/v1/investments/{feed['R'].pk}/", {"cost": 11},
                        format="json").status_code == 200
    assert since(before) == ["R"]
    # Q: 10 -> 3.33, below R (3.6): Q drops to 3, R rises to 2.
    before = timezone.now()
    res = client.patch(f"/api/v1/investments/{feed['Q'].pk}/", {"cost": 30}, format="json")
    assert res.status_code == 200 and res.json()["rank"] == 3
    assert since(before) == ["Q", "R"]
    listed = client.get("/api/v1/investments/").json()["results"]
    assert [(r["title"], r["rank"]) for r in listed] == [("P", 1), ("R", 2), ("Q", 3)]


def test_an_effort_edit(feed):
    before = timezone.now()
    res = feed["client"].patch(f"/api/v1/investments/{feed['P'].pk}/",
                               {"effort": {"growth": 2.5}}, format="json")
    assert res.status_code == 200 and res.json()["effort_total"] == 2.5
    assert feed["since"](before) == ["P"]


def test_a_dependency_added_and_one_removed_with_its_item(feed):
    client, since = feed["client"], feed["since"]
    before = timezone.now()
    assert client.patch(f"/api/v1/investments/{feed['P'].pk}/", {"depends_on": [feed["Q"].pk]},
                        format="json").status_code == 200
    assert since(before) == ["P"]
    # Deleting Q takes P's dependency with it, and R moves up to rank 2.
    before = timezone.now()
    assert client.delete(f"/api/v1/investments/{feed['Q'].pk}/").status_code == 204
    assert since(before) == ["P", "R"]
    p = client.get(f"/api/v1/investments/{feed['P'].pk}/").json()
    assert (p["depends_on"], p["rank"]) == ([], 1)


def test_a_decision_recorded(feed, api, django_capture_on_commit_callbacks):
    scenario = Scenario.objects.create(workspace=feed["ws"], name="s", budget=100,
                                       frontier_points=0)
    with django_capture_on_commit_callbacks(execute=True):
        run_id = feed["client"].post(f"/api/v1/scenarios/{scenario.pk}/run/").json()["id"]
    assert OptimizationRun.objects.get(pk=run_id).finished_at is not None
    before = timezone.now()
    res = api(feed["council"]).post(f"/api/v1/runs/{run_id}/decide/", {
        "investment": feed["R"].pk, "verdict": "defer", "rationale": "later"}, format="json")
    assert res.status_code == 201
    assert feed["since"](before) == ["R"]
    assert feed["client"].get(f"/api/v1/investments/{feed['R'].pk}/").json()["status"] == \
        "deferred"


def test_a_hypothesis_status_change_revalues_and_reranks(feed):
    client, since = feed["client"], feed["since"]
    hyp = Hypothesis.objects.create(workspace=feed["ws"], statement="h", expected_lift=1.0)
    # S rests on the hypothesis alone: 100 x 3 x 1.0 x 0.2 = 60 at cost 10 (6: rank 3 of 4).
    s = make(feed["ws"], "S", 3, assumed_lift=None)
    s.hypotheses.add(hyp)
    services.investment_revalue(investment=s)
    assert Investment.objects.get(pk=s.pk).rank == 3
    before = timezone.now()
    for status in ("prioritized", "testing"):  # the value does not move: nothing to report
        assert client.post(f"/api/v1/hypotheses/{hyp.pk}/transition/", {"status": status},
                           format="json").status_code == 200
    assert since(before) == []
    assert client.post(f"/api/v1/hypotheses/{hyp.pk}/transition/", {"status": "invalidated"},
                       format="json").status_code == 200
    # S loses its lift (value 0, last), R moves up from 4th to 3rd.
    assert since(before) == ["R", "S"]
    assert Investment.objects.get(pk=s.pk).expected_value == 0.0


def test_an_experiment_concluded_revalues_the_linked_investment(
        feed, django_capture_on_commit_callbacks):
    client, since = feed["client"], feed["since"]
    hyp = Hypothesis.objects.create(workspace=feed["ws"], statement="h", expected_lift=0.5)
    # T: 100 x 1 x 0.5 x 0.2 = 10 at cost 10 (1: last either way).
    t = make(feed["ws"], "T", 1, assumed_lift=None)
    t.hypotheses.add(hyp)
    services.investment_revalue(investment=t)
    r = client.post("/api/v1/experiments/", {
        "hypothesis": hyp.pk, "name": "A/B", "kind": "ab", "data_source": "summary",
        "arms": [{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
        "primary_metric": BOUGHT, "guardrail_metrics": []}, format="json")
    xid = r.json()["id"]
    rows = [{"arm": "control", "metric": "bought", "n": 100, "sum": 40, "sum_sq": 40},
            {"arm": "treatment", "metric": "bought", "n": 100, "sum": 50, "sum_sq": 50}]
    client.put(f"/api/v1/experiments/{xid}/summaries/", {"rows": rows}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/api/v1/experiments/{xid}/analyze/").status_code == 202
    before = timezone.now()
    assert since(before) == []  # analysing alone changes no value
    res = client.post(f"/api/v1/experiments/{xid}/conclude/", {
        "outcome": "validated", "now_believe": "works", "decision": "ship",
        "override_reason": "the summary rows are a planted truth"}, format="json")
    assert res.status_code == 201, res.content
    # Measured +25% (0.5 / 0.4 - 1) with P(success | experiment) 0.7: 100 x 1 x 0.25 x 0.7.
    body = client.get(f"/api/v1/investments/{t.pk}/").json()
    assert body["expected_value"] == pytest.approx(17.5) and body["rank"] == 4
    assert since(before) == ["T"]


EVENTS = "user_id,event,timestamp,revenue\n" + "".join(
    f"u{i},signup,2025-01-01T00:00:00Z,\nu{i},purchase,2025-01-02T00:00:00Z,10\n"
    for i in range(20)) + "u1,session_start,2025-06-01T00:00:00Z,\n"  # data beyond 90 days
MORE = "user_id,event,timestamp,revenue\n" + "".join(
    f"u{i},purchase,2025-01-05T00:00:00Z,30\n" for i in range(0, 20, 2))
USERS = "user_id,signup_time,plan\n" + "".join(
    f"u{i},2025-01-01T00:00:00Z,{'pro' if i % 2 == 0 else 'free'}\n" for i in range(20))


def test_a_segment_refresh_revalues_the_items_that_target_it(feed, tmp_path):
    (tmp_path / "e.csv").write_text(EVENTS)
    (tmp_path / "more.csv").write_text(MORE)
    (tmp_path / "u.csv").write_text(USERS)
    call_command("import_events", workspace="acme", events=tmp_path / "e.csv",
                 users=tmp_path / "u.csv", dataset="app")
    seg = segment_services.segment_create(
        dataset=Dataset.objects.get(name="app"), name="pro",
        definition={"attribute": "plan", "op": "eq", "value": "pro"})
    call_command("refresh_segments", workspace="acme")
    # U: the 10 pro users x LTV90 10 x lift 1 x 0.2 = 20 at cost 0.5 (40: rank 1 of 4).
    u = Investment.objects.create(workspace=feed["ws"], title="U", cost=0.5, adoption=1.0,
                                  value_basis="ltv_90", assumed_lift=1.0)
    u.target_segments.add(seg)
    services.investment_revalue(investment=u)
    u.refresh_from_db()
    assert (u.expected_value, u.rank) == (pytest.approx(20.0), 1)
    before = timezone.now()
    call_command("import_events", workspace="acme", events=tmp_path / "more.csv",
                 dataset="app")
    call_command("refresh_segments", workspace="acme")
    # Each pro user spent 10 + 30: U = 10 x 40 x 0.2 = 80, still first; P, Q, R untouched.
    u.refresh_from_db()
    assert (u.expected_value, u.rank) == (pytest.approx(80.0), 1)
    assert feed["since"](before) == ["U"]


def test_an_edit_on_the_page_that_changes_no_figure(feed, client):
    r = feed["R"]
    client.force_login(feed["analyst"])
    before = timezone.now()
    res = client.post(f"/w/acme/investments/{r.pk}/edit/", {
        "title": "R renamed", "description": "", "roadmap": "core", "cost": "10", "effort": "{}",
        "duration_quarters": "1", "exclusion_group": "", "adoption": "1", "value_basis": "ltv_90",
        "horizon_months": "12", "assumed_reach": "100", "assumed_value_per_user": "2",
        "assumed_lift": "1", "impact": "1", "confidence": "0.5", "ease": "5"})
    assert res.status_code == 302, res.content.decode()[:2000]
    assert Investment.objects.get(pk=r.pk).expected_value == pytest.approx(40.0)
    assert feed["since"](before) == ["R renamed"]
