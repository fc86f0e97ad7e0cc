"""The segment list and a segment's page are served from a cache only while they are exact.

Each test reads a page twice (a miss, then a hit with the same page), makes one kind of change
through the product's own paths, and checks that the next read is a miss that shows it: a
segment edit, a finished refresh, a new dataset version (the stale note), a refresh job started,
moving and finished (its card), a role change (the buttons), the owner's new name. A hit costs
the same small number of queries whatever the number of segments, and its form token is the
reading session's own.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Membership
from events.models import Dataset
from jobs import services as jobs
from segments import segment_services
from segments.models import Refresh, Segment

pytestmark = pytest.mark.django_db

EVENTS = """user_id,event,timestamp,revenue
a,signup,2025-01-01T00:00:00Z,
a,purchase,2025-01-05T00:00:00Z,30
b,signup,2025-01-01T00:00:00Z,
b,purchase,2025-01-21T00:00:00Z,10
c,signup,2025-01-02T00:00:00Z,
d,signup,2025-01-03T00:00:00Z,
"""
MORE = """user_id,event,timestamp,revenue
e,signup,2025-02-01T00:00:00Z,
f,signup,2025-02-02T00:00:00Z,
"""
USERS = """user_id,signup_time,plan
a,2025-01-01T00:00:00Z,pro
b,2025-01-01T00:00:00Z,free
c,2025-01-02T00:00:00Z,pro
d,2025-01-03T00:00:00Z,free
"""
TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _import(tmp_path, name: str, events: str) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / name).write_text(events)
    (tmp_path / "u.csv").write_text(USERS)
    call_command("import_events", workspace="acme", events=tmp_path / name,
                 users=tmp_path / "u.csv", dataset="app")


def _refresh(dataset: Dataset) -> Refresh:
    call_command("refresh_segments", workspace=dataset.workspace.slug)
    return Refresh.objects.filter(dataset=dataset).order_by("-id").first()


def read(client: Client, url: str) -> tuple[str, str]:
    r = client.get(url)
    assert r.status_code == 200, r.content[:500]
    return r["X-Page-Cache"], r.content.decode()


def untokened(html: str) -> str:
    """The page without its form tokens (a fresh mask on every render, hit or miss)."""
    return TOKEN.sub('name="csrfmiddlewaretoken" value=""', html)


def login(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def site(team, tmp_path):  # type: ignore[no-untyped-def]
    _import(tmp_path, "e.csv", EVENTS)
    ws = team["acme"]
    ws.min_segment_size = 1
    ws.save()
    dataset = Dataset.objects.get(workspace=ws, name="app")
    pro = segment_services.segment_create(dataset=dataset, name="pro buyers", owner=team["analyst"],
                                          definition={"attribute": "plan", "op": "eq",
                                                      "value": "pro"})
    free = segment_services.segment_create(dataset=dataset, name="free plan",
                                           definition={"attribute": "plan", "op": "eq",
                                                       "value": "free"})
    run = _refresh(dataset)
    client = login(team["analyst"])
    urls = {"list": "/w/acme/segments/", "page": f"/w/acme/segments/{pro.pk}/"}
    for url in urls.values():
        first, second = read(client, url), read(client, url)
        assert (first[0], second[0]) == ("miss", "hit")
        assert untokened(first[1]) == untokened(second[1])
    return {"ws": ws, "dataset": dataset, "pro": pro, "free": free, "run": run,
            "client": client, "team": team, "tmp_path": tmp_path, **urls}


def test_an_edit_shows_on_the_next_read_of_both_pages(site):
    segment_services.segment_update(segment=site["pro"], name="pro customers")
    for url in (site["list"], site["page"]):
        state, html = read(site["client"], url)
        assert state == "miss" and "pro customers" in html and "pro buyers" not in html
        assert read(site["client"], url)[0] == "hit"


def test_a_finished_refresh_shows_its_number(site):
    assert f"Last refresh #{site['run'].pk}:" in read(site["client"], site["list"])[1]
    run = _refresh(site["dataset"])
    assert run.pk != site["run"].pk
    state, html = read(site["client"], site["list"])
    assert state == "miss" and f"Last refresh #{run.pk}:" in html
    assert read(site["client"], site["page"])[0] == "miss"


def test_a_new_dataset_version_shows_the_stale_note(site):
    assert "data now v2" not in read(site["client"], site["list"])[1]
    _import(site["tmp_path"], "more.csv", MORE)
    assert Dataset.objects.get(pk=site["dataset"].pk).version == 2
    state, html = read(site["client"], site["list"])
    assert state == "miss" and "stale: v1, data now v2" in html
    state, html = read(site["client"], site["page"])
    assert state == "miss" and 'data-current-version="2"' in html


def test_a_refresh_job_card_follows_the_job_from_queued_to_finished(site):
    before = {url: read(site["client"], url)[1] for url in (site["list"], site["page"])}
    job = segment_services.refresh_start(dataset=site["dataset"], user=site["team"]["analyst"])
    card = f'data-job-id="{job.pk}"'
    for url in (site["list"], site["page"]):
        state, html = read(site["client"], url)
        assert state == "miss" and card in html and 'data-state="queued"' in html
    claimed = jobs.job_claim(job_id=job.pk)
    jobs.job_progress(claimed, 40, "evaluating segments")
    for url in (site["list"], site["page"]):
        state, html = read(site["client"], url)
        assert state == "miss" and "40% <span class=\"job-message\">evaluating segments" in html
        assert read(site["client"], url)[0] == "hit"
    jobs.job_progress(claimed, 41, "evaluating segments")  # one point more: a new page
    assert "41%" in read(site["client"], site["list"])[1]
    jobs.job_finish(claimed, "failed", error="stopped")
    for url in (site["list"], site["page"]):
        # Everything is as before the job started: the page cached then is the exact page.
        state, html = read(site["client"], url)
        assert card not in html and untokened(html) == untokened(before[url])


def test_another_datasets_job_is_not_on_a_segments_page(site, tmp_path):
    other = Dataset.objects.create(workspace=site["ws"], name="web")
    job = segment_services.refresh_start(dataset=other)
    assert f'data-job-id="{job.pk}"' in read(site["client"], site["list"])[1]
    # The page's stamp moved (a new dataset), but the card is not this segment's dataset's.
    state, html = read(site["client"], site["page"])
    assert state == "miss" and f'data-job-id="{job.pk}"' not in html
    # Its progress moves the list's card, not this page's stamp.
    jobs.job_progress(jobs.job_claim(job_id=job.pk), 30, "evaluating segments")
    state, html = read(site["client"], site["list"])
    assert state == "miss" and "30% <span class=\"job-message\">evaluating" in html
    assert read(site["client"], site["page"])[0] == "hit"


def test_a_role_change_changes_the_buttons(site):
    assert "New segment" in read(site["client"], site["list"])[1]
    Membership.objects.filter(workspace=site["ws"], user=site["team"]["analyst"]).update(
        role="viewer")
    state, html = read(site["client"], site["list"])
    assert state == "miss" and "New segment" not in html
    state, html = read(site["client"], site["page"])
    assert state == "miss" and "/edit/" not in html


def test_each_user_and_path_has_its_own_page_and_the_owner_name_follows(site):
    viewer = login(site["team"]["viewer"])
    state, html = read(viewer, site["list"])
    assert state == "miss" and "Log out viewer" in html and "Log out analyst" not in html
    assert read(site["client"], site["list"] + "?x=1")[0] == "miss"
    assert "Owner: analyst" in read(site["client"], site["page"])[1]
    User = get_user_model()
    User.objects.filter(pk=site["team"]["analyst"].pk).update(username="ana")
    state, html = read(login(User.objects.get(username="ana")), site["page"])
    assert state == "miss" and "Owner: ana ·" in html and "Log out ana" in html


def test_the_workspace_settings_shown_on_the_page_are_in_the_key(site):
    site["ws"].min_segment_size = 7
    site["ws"].save()
    state, html = read(site["client"], site["list"])
    assert state == "miss" and "Segments under 7 users are hidden" in html


def test_a_hit_costs_the_same_few_queries_whatever_the_segments(site):
    def hit_queries(url: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            state, _ = read(site["client"], url)
        assert state == "hit"
        return len(queries)

    # session, user, membership with workspace, stamp (with the segment's row on its page)
    assert hit_queries(site["list"]) == 4
    assert hit_queries(site["page"]) == 4
    for n in range(6):
        segment_services.segment_create(dataset=site["dataset"], name=f"extra {n}",
                                        definition={"attribute": "plan", "op": "eq",
                                                    "value": "pro"})
    _refresh(site["dataset"])
    assert read(site["client"], site["list"])[0] == "miss"
    assert hit_queries(site["list"]) == 4
    assert read(site["client"], site["page"])[0] == "miss"
    assert hit_queries(site["page"]) == 4
    assert Segment.objects.filter(workspace=site["ws"]).count() == 8


def test_a_hit_carries_a_form_token_of_the_readers_own_session(site):
    # A second session of the same user reads the page the first one cached.
    other = Client(enforce_csrf_checks=True)
    other.force_login(site["team"]["analyst"])
    state, html = read(other, site["list"])
    assert state == "hit"
    assert "\x1f" not in html
    token = TOKEN.search(html).group(1)
    r = other.post("/w/acme/segments/refresh/", {"dataset": site["dataset"].pk,
                                                  "csrfmiddlewaretoken": token})
    assert r.status_code == 302, r.status_code
    # A made-up token is refused: the check is on.
    r = other.post("/w/acme/segments/refresh/", {"dataset": site["dataset"].pk,
                                                  "csrfmiddlewaretoken": "x" * 64})
    assert r.status_code == 403


def test_a_segment_outside_the_workspace_is_a_404_never_cached(site, team):
    theirs_ds = Dataset.objects.create(workspace=team["other"], name="theirs")
    theirs = Segment.objects.create(workspace=team["other"], dataset=theirs_ds, name="t",
                                    definition={"all": []})
    for pk in (theirs.pk, 999999):
        for _ in range(2):
            assert site["client"].get(f"/w/acme/segments/{pk}/").status_code == 404
    site["pro"].delete()
    assert site["client"].get(site["page"]).status_code == 404


def test_an_edit_committed_after_a_later_timed_one_shows_on_the_next_read(site, monkeypatch):
    """A writer takes its time before it commits: an edit that commits after a later-timed
    one moves no latest time and no count; only the workspace's write count tells."""
    from django.utils import timezone

    from accounts.models import WorkspaceVersion

    slow_writers_time = timezone.now()  # the edit of "free plan" starts here ...
    segment_services.segment_update(segment=site["pro"], name="pro customers")  # commits first
    state, html = read(site["client"], site["list"])
    assert state == "miss" and "pro customers" in html
    assert read(site["client"], site["list"])[0] == "hit"
    before = WorkspaceVersion.objects.get(workspace=site["ws"], topic="segments").version
    # ... and commits now, with its earlier time: the latest edit time stays the other one's.
    monkeypatch.setattr(timezone, "now", lambda: slow_writers_time)
    segment_services.segment_update(segment=Segment.objects.get(pk=site["free"].pk),
                                    name="free tier")
    monkeypatch.undo()
    assert Segment.objects.get(pk=site["free"].pk).updated_at == slow_writers_time
    assert slow_writers_time < Segment.objects.get(pk=site["pro"].pk).updated_at
    assert WorkspaceVersion.objects.get(workspace=site["ws"], topic="segments").version > before
    state, html = read(site["client"], site["list"])
    assert state == "miss" and "free tier" in html and "free plan" not in html


def test_deleting_a_workspace_with_segments_and_datasets_makes_no_write_count_again(site):
    from accounts.models import Workspace, WorkspaceVersion

    ws = site["ws"]
    pk = ws.pk
    assert set(WorkspaceVersion.objects.filter(workspace=ws).values_list("topic", flat=True)) \
        == {"segments", "datasets"}
    ws.delete()
    assert not Workspace.objects.filter(pk=pk).exists()
    assert not WorkspaceVersion.objects.filter(workspace_id=pk).exists()
