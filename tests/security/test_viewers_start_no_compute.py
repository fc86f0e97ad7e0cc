"""Viewers read results but start no computation: every page POST and API endpoint that queues
a job answers a viewer 403 with the reason and creates no Job row; the role that may gets its
success answer and exactly one new job of the expected kind. Jobs are queued on commit, which
never comes inside the test transaction, so nothing runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from events.models import Dataset
from experiments.models import ArmSummary
from jobs.models import Job

pytestmark = pytest.mark.django_db

EVENTS = ("user_id,event,timestamp\n"
          "u1,signup,2025-01-01T00:00:00Z\nu1,upgrade,2025-01-03T00:00:00Z\n"
          "u2,signup,2025-01-02T00:00:00Z\nu3,signup,2025-01-02T00:00:00Z\n"
          "u3,upgrade,2025-01-09T00:00:00Z\n")


@dataclass(frozen=True)
class Start:
    page: bool  # a page form (session client) or the API
    url: Callable[[dict[str, Any]], str]
    data: Callable[[dict[str, Any]], dict[str, Any]]
    job_kind: str
    ok: int
    allowed: str = "analyst"  # a role that may start it
    multipart: bool = False


STARTS: dict[str, Start] = {
    "page: segment refresh": Start(True, lambda w: "/w/acme/segments/refresh/",
                                   lambda w: {"dataset": w["events"].pk}, "refresh", 302),
    "page: cluster suggestions": Start(
        True, lambda w: f"/w/acme/segments/clusters/?dataset={w['events'].pk}",
        lambda w: {}, "clusters", 302),
    "page: behaviour analysis": Start(
        True, lambda w: "/w/acme/behaviour/",
        lambda w: {"dataset": w["events"].pk, "kind": "funnel", "steps": "signup, upgrade",
                   "window_days": "14"}, "behaviour", 302),
    "page: optimizer run": Start(True, lambda w: "/w/acme/scenarios/",
                                 lambda w: {"run": w["scenario"].pk}, "optimize", 302),
    "page: experiment analysis": Start(
        True, lambda w: f"/w/acme/experiments/{w['experiment'].pk}/",
        lambda w: {"action": "analyze"}, "experiment_analyze", 302),
    "page: erasure": Start(True, lambda w: f"/w/acme/datasets/{w['events'].pk}/erase/",
                           lambda w: {"user_id": "u1", "reason": "request"}, "erase", 302,
                           allowed="admin"),
    "api: refresh": Start(False, lambda w: "/api/v1/refreshes/",
                          lambda w: {"dataset": w["events"].pk}, "refresh", 202),
    "api: behaviour analysis": Start(
        False, lambda w: "/api/v1/analyses/",
        lambda w: {"dataset": w["events"].pk, "kind": "funnel",
                   "params": {"steps": ["signup", "upgrade"], "window_days": 14}},
        "behaviour", 202),
    "api: optimizer run": Start(False, lambda w: f"/api/v1/scenarios/{w['scenario'].pk}/run/",
                                lambda w: {}, "optimize", 202),
    "api: experiment analysis": Start(
        False, lambda w: f"/api/v1/experiments/{w['experiment'].pk}/analyze/", lambda w: {},
        "experiment_analyze", 202),
    "api: import": Start(
        False, lambda w: "/api/v1/imports/",
        lambda w: {"dataset": w["events"].pk,
                   "events": SimpleUploadedFile("more.csv", b"user_id,event,timestamp\n"
                                                b"u4,signup,2025-02-01T00:00:00Z\n",
                                                content_type="text/csv")},
        "import", 202, multipart=True),
    "api: erasure": Start(False, lambda w: f"/api/v1/datasets/{w['events'].pk}/erase/",
                          lambda w: {"user_id": "u1", "reason": "request"}, "erase", 202,
                          allowed="admin"),
}


@pytest.fixture
def world(objs, team, tmp_path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    (tmp_path / "events.csv").write_text(EVENTS)
    call_command("import_events", workspace="acme", dataset="events",
                 events=tmp_path / "events.csv")
    for arm, total in (("control", 100), ("treatment", 130)):
        ArmSummary.objects.create(experiment=objs["experiment"], arm=arm, metric="bought",
                                  n=1000, sum=total, sum_sq=total)
    return {**objs, "events": Dataset.objects.get(workspace=team["acme"], name="events")}


def _post(start: Start, world: dict[str, Any], user: Any, client: Any, api: Any) -> Any:
    url, data = start.url(world), start.data(world)
    if start.page:
        client.force_login(user)
        return client.post(url, data)
    return api(user).post(url, data, format="multipart" if start.multipart else "json")


@pytest.mark.parametrize("name", list(STARTS))
def test_viewer_is_refused_and_no_job_is_created(name, world, team, client, api):  # type: ignore[no-untyped-def]
    start = STARTS[name]
    before = Job.objects.count()
    r = _post(start, world, team["viewer"], client, api)
    assert r.status_code == 403, r.content[:300]
    if start.page:
        assert "Not allowed" in r.content.decode()
    else:
        assert "viewers read every result" in r.json()["detail"]
    assert Job.objects.count() == before


@pytest.mark.parametrize("name", list(STARTS))
def test_a_role_that_may_starts_exactly_one_job(name, world, team, client, api):  # type: ignore[no-untyped-def]
    start = STARTS[name]
    before = set(Job.objects.values_list("pk", flat=True))
    r = _post(start, world, team[start.allowed], client, api)
    assert r.status_code == start.ok, r.content[:300]
    new = list(Job.objects.exclude(pk__in=before).values_list("kind", flat=True))
    assert new == [start.job_kind]


def test_viewers_see_no_compute_buttons(world, team, client):  # type: ignore[no-untyped-def]
    """The pages hide the forms that would start work from a viewer; an analyst sees them."""
    pages = {"/w/acme/segments/": 'action="/w/acme/segments/refresh/"',
             f"/w/acme/segments/clusters/?dataset={world['events'].pk}": "Suggest clusters",
             "/w/acme/behaviour/": 'name="kind"',
             "/w/acme/scenarios/": 'name="run"'}
    for url, marker in pages.items():
        client.force_login(team["viewer"])
        assert marker not in client.get(url).content.decode(), url
        client.force_login(team["analyst"])
        assert marker in client.get(url).content.decode(), url


def test_a_sweep_computes_so_viewers_may_not(world, team, api):  # type: ignore[no-untyped-def]
    """A sweep stores nothing and queues no job, but computes over the dataset."""
    from segments.models import Segment

    seg = Segment.objects.create(workspace=team["acme"], dataset=world["events"], name="buyers",
                                 definition={"all": [{"event": "signup", "min_count": 1},
                                                     {"event": "upgrade", "min_count": 1}]})
    url, body = f"/api/v1/segments/{seg.pk}/sweep/", {"path": "all[1]", "thresholds": [1, 2]}
    r = api(team["viewer"]).post(url, body, format="json")
    assert r.status_code == 403 and "viewers read every result" in r.json()["detail"]
    r = api(team["analyst"]).post(url, body, format="json")
    assert r.status_code == 200, r.content
    # u1 and u3 signed up and upgraded once each (EVENTS): 2 users at k=1 (below the
    # workspace's minimum size, so hidden), none at k=2.
    rows = r.json()["rows"]
    assert [row.get("hidden", False) for row in rows] == [True, False]
    assert rows[1]["size"] == 0
