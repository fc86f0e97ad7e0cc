"""The investments list is served from a cache only while it is exact.

Each test reads the list twice (the second read is a cache hit with the same bytes), makes
one kind of change through the product's own paths, and checks that the next read is a miss
that shows the change: an edit, a re-valuation, a decision, a rank moved by another item, a
deleted hypothesis (an id list changing without a save of the item), a new and a deleted item.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from experiments.models import Hypothesis
from planner import services
from planner.models import Investment

FREE = {"core": [0, 1], "experimental": [0, 1], "niche": [0, 1]}


def make(ws, title: str, cost: float, vpu: float, roadmap: str = "core") -> Investment:  # type: ignore[no-untyped-def]
    """Value = reach 100 x vpu x lift 1 x P(success | assumption) 0.2 = 20 x vpu."""
    inv = Investment.objects.create(workspace=ws, title=title, roadmap=roadmap, cost=cost,
                                    assumed_reach=100, assumed_value_per_user=vpu,
                                    assumed_lift=1.0, adoption=1.0)
    return services.investment_revalue(investment=inv)


def adopt(w, run_id: int):  # type: ignore[no-untyped-def]
    return w["council"].post("/api/v1/roadmap-versions/adopt/", {"run": run_id}, format="json")


def decide(w, version_id: int, inv: Investment, verdict: str):  # type: ignore[no-untyped-def]
    return w["council"].post(f"/api/v1/roadmap-versions/{version_id}/decide/", {
        "investment": inv.pk, "verdict": verdict, "rationale": "why"}, format="json")

pytestmark = pytest.mark.django_db
URL = "/api/v1/investments/?page_size=100"


def read(client) -> tuple[str, dict]:  # type: ignore[no-untyped-def]
    r = client.get(URL)
    assert r.status_code == 200, r.content
    return r["X-List-Cache"], r.json()


def rows(body: dict) -> dict[str, dict]:
    return {row["title"]: row for row in body["results"]}


@pytest.fixture
def portfolio(team, api):  # type: ignore[no-untyped-def]
    ws = team["acme"]
    items = {"A": make(ws, "A", 60, 10), "B": make(ws, "B", 20, 2, "experimental"),
             "C": make(ws, "C", 50, 5)}
    client = api(team["analyst"])
    first = read(client)
    second = read(client)
    assert (first[0], second[0]) == ("miss", "hit")
    assert first[1] == second[1]
    return {"ws": ws, "client": client, "team": team, "api": api, **items}


def test_a_hit_costs_the_stamp_query_and_is_byte_identical(portfolio):
    client = portfolio["client"]
    with CaptureQueriesContext(connection) as queries:
        r = client.get(URL)
    assert r["X-List-Cache"] == "hit"
    # force_authenticate: no session or user read; the one query is the stamp.
    assert len(queries) == 1, [q["sql"] for q in queries.captured_queries]
    assert r.content == client.get(URL).content
    # Each user's page is their own: the viewer sees the same rows from their own entry.
    viewer = portfolio["api"](portfolio["team"]["viewer"])
    r = viewer.get(URL)
    assert r["X-List-Cache"] == "miss" and r.json() == client.get(URL).json()
    # Another query string is another page.
    assert client.get(URL + "&ordering=-cost")["X-List-Cache"] == "miss"


def test_an_edit_is_never_hidden(portfolio):
    client = portfolio["client"]
    a = portfolio["A"]
    r = client.patch(f"/api/v1/investments/{a.pk}/", {"title": "A renamed"}, format="json")
    assert r.status_code == 200, r.content
    state, body = read(client)
    assert state == "miss" and "A renamed" in rows(body)


def test_a_revaluation_and_the_ranks_it_moves_are_never_hidden(portfolio):
    client = portfolio["client"]
    before = rows(read(client)[1])
    # B's value per user x 20: its value 40 -> 800 and it passes A and C in the ranking.
    Investment.objects.filter(pk=portfolio["B"].pk).update(assumed_value_per_user=40)
    services.investment_revalue(investment=Investment.objects.get(pk=portfolio["B"].pk))
    state, body = read(client)
    after = rows(body)
    assert state == "miss"
    assert (before["B"]["expected_value"], after["B"]["expected_value"]) == (40.0, 800.0)
    assert [after[t]["rank"] for t in "ABC"] == [2, 1, 3]
    # Before: A 200/60, then B 40/20 and C 100/50 tie at 2 and go by id.
    assert [before[t]["rank"] for t in "ABC"] == [1, 2, 3]


def test_a_decision_is_never_hidden(portfolio, django_capture_on_commit_callbacks):
    from planner.models import Scenario

    team, api, client = portfolio["team"], portfolio["api"], portfolio["client"]
    scenario = Scenario.objects.create(workspace=portfolio["ws"], name="q1", budget=100,
                                       shares=FREE, frontier_points=0)
    with django_capture_on_commit_callbacks(execute=True):
        run = api(team["analyst"]).post(f"/api/v1/scenarios/{scenario.pk}/run/").json()["id"]
    w = {"council": api(team["council"])}
    version = adopt(w, run).json()
    assert read(client)[1] == read(client)[1]
    assert decide(w, version["id"], portfolio["A"], "approve").status_code == 201
    state, body = read(client)
    assert state == "miss" and rows(body)["A"]["status"] == "approved"


def test_a_deleted_hypothesis_leaves_the_list_without_a_save_and_is_never_hidden(portfolio):
    client = portfolio["client"]
    hypothesis = Hypothesis.objects.create(workspace=portfolio["ws"], statement="h", expected_lift=0.1)
    portfolio["C"].hypotheses.add(hypothesis)
    Investment.objects.filter(pk=portfolio["C"].pk).update(title="C")  # no save, no signal
    state, body = read(client)
    # An m2m add alone moves nothing the stamp reads: the add path through the API or the
    # page saves the item; here it is added behind their back, so the page may be the old one.
    assert rows(body)["C"]["hypotheses"] in ([], [hypothesis.pk])
    Investment.objects.get(pk=portfolio["C"].pk).save()  # as the API and the page do
    assert rows(read(client)[1])["C"]["hypotheses"] == [hypothesis.pk]
    assert read(client)[0] == "hit"
    hypothesis.delete()
    state, body = read(client)
    assert state == "miss" and rows(body)["C"]["hypotheses"] == []


def test_new_and_deleted_items_are_never_hidden(portfolio):
    client = portfolio["client"]
    r = client.post("/api/v1/investments/", {
        "workspace": "acme", "title": "D", "roadmap": "niche", "cost": 5,
        "assumed_reach": 10, "assumed_value_per_user": 1, "assumed_lift": 1.0},
        format="json")
    assert r.status_code == 201, r.content
    state, body = read(client)
    assert state == "miss" and set(rows(body)) == {"A", "B", "C", "D"}
    assert read(client)[0] == "hit"
    assert client.delete(f"/api/v1/investments/{portfolio['A'].pk}/").status_code == 204
    state, body = read(client)
    assert state == "miss" and set(rows(body)) == {"B", "C", "D"}


def test_a_change_committed_after_a_later_timed_one_is_never_hidden(portfolio, monkeypatch):
    """A writer takes its time before it commits: one that commits after a later-timed write
    moves no maximum and no count, and only the workspace's BacklogVersion tells."""
    from django.utils import timezone

    from planner import changes
    from planner.models import BacklogVersion

    client, ws = portfolio["client"], portfolio["ws"]
    slow_writers_time = timezone.now()  # A's re-valuation starts here ...
    b = portfolio["B"]
    r = client.patch(f"/api/v1/investments/{b.pk}/", {"title": "B renamed"}, format="json")
    assert r.status_code == 200, r.content  # ... B's edit commits first, with later times
    state, body = read(client)
    assert state == "miss" and "B renamed" in rows(body)
    assert read(client)[0] == "hit"
    before = BacklogVersion.objects.get(workspace=ws).version
    # ... and A's commits now, stamped with its earlier time: no maximum moves.
    a = portfolio["A"]
    monkeypatch.setattr(timezone, "now", lambda: slow_writers_time)
    changes.investments_changed(workspace_id=ws.pk, ids=[a.pk], rerank=False)
    monkeypatch.undo()
    assert Investment.objects.get(pk=a.pk).changed_at == slow_writers_time
    assert slow_writers_time < Investment.objects.get(pk=b.pk).changed_at
    assert BacklogVersion.objects.get(workspace=ws).version == before + 1
    state, body = read(client)
    assert state == "miss"
    assert rows(body)["A"]["changed_at"].replace("Z", "+00:00") == \
        slow_writers_time.isoformat()


def test_every_write_path_counts_in_the_backlog_version(portfolio):
    from planner.models import BacklogVersion

    ws = portfolio["ws"]

    def version() -> int:
        return BacklogVersion.objects.get(workspace=ws).version

    start = version()
    portfolio["A"].save()  # a save (signal)
    assert version() == start + 1
    services.investment_revalue(investment=Investment.objects.get(pk=portfolio["C"].pk))
    assert version() > start + 1  # its update() (and a save-free re-rank when one moves)
    now = version()
    hypothesis = Hypothesis.objects.create(workspace=ws, statement="h", expected_lift=0.1)
    portfolio["C"].hypotheses.add(hypothesis)
    hypothesis.delete()  # the items listing it change without a save of theirs
    assert version() == now + 1
    Investment.objects.get(pk=portfolio["B"].pk).delete()  # a delete (signal)
    assert version() == now + 2


def test_a_workspace_starts_with_its_backlog_version_and_takes_it_when_deleted(team):
    from accounts.models import Workspace
    from planner.models import BacklogVersion

    ws = Workspace.objects.create(slug="fresh", name="Fresh")
    assert BacklogVersion.objects.get(workspace=ws).version == 0
    hypothesis = Hypothesis.objects.create(workspace=ws, statement="h", expected_lift=0.1)
    item = make(ws, "X", 10, 1)
    item.hypotheses.add(hypothesis)
    assert BacklogVersion.objects.get(workspace=ws).version > 0
    pk = ws.pk
    ws.delete()  # investments, hypotheses and the row go together, nothing made again
    assert not Workspace.objects.filter(pk=pk).exists()
    assert not BacklogVersion.objects.filter(workspace_id=pk).exists()
