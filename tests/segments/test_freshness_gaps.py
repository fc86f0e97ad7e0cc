"""Freshness where it was missing: the behaviour analyses API says whether a payload is stale
(segments' one rule), the behaviour page's recent analyses mark stale rows, and the investment
page and the council brief mark figures resting on a snapshot of an older dataset version.
Two imports of planted rows: v1 has 4 users, v2 adds 3 (e, f, g)."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command

from behaviour import services as bs
from events.models import Dataset
from planner import services as planner_services
from planner.models import Investment
from segments import segment_services
from segments.models import SegmentSnapshot
from tests.segments.test_freshness import EVENTS, REPORTERS, SENTENCE, import_more, refresh

pytestmark = pytest.mark.django_db


@pytest.fixture
def app(team, tmp_path):
    (tmp_path / "e.csv").write_text(EVENTS)
    call_command("import_events", workspace="acme", events=tmp_path / "e.csv", dataset="app")
    team["acme"].min_segment_size = 1
    team["acme"].save()
    return Dataset.objects.get(workspace=team["acme"], name="app")


def test_the_analyses_api_says_when_a_payload_is_stale(
        api, team, app, tmp_path, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        old = bs.analysis_start(dataset=app, kind="funnel",
                                params={"steps": ["signup", "report_created"]})
    viewer = api(team["viewer"])
    got = viewer.get(f"/api/v1/analyses/{old.pk}/").json()
    assert (got["stale"], got["dataset_version"], got["current_version"]) == (False, 1, 1)
    assert got["freshness"]["sentence"] == ""
    import_more(tmp_path, django_capture_on_commit_callbacks)
    got = viewer.get(f"/api/v1/analyses/{old.pk}/").json()
    assert (got["stale"], got["dataset_version"], got["current_version"]) == (True, 1, 2)
    assert (got["freshness"]["users_then"], got["freshness"]["users_now"]) == (4, 7)
    assert got["freshness"]["sentence"] == SENTENCE
    with django_capture_on_commit_callbacks(execute=True):
        new = bs.analysis_start(dataset=Dataset.objects.get(pk=app.pk), kind="funnel",
                                params={"steps": ["signup", "report_created"]})
    rows = {r["id"]: r for r in viewer.get("/api/v1/analyses/").json()["results"]}
    assert (rows[old.pk]["stale"], rows[new.pk]["stale"]) == (True, False)
    assert rows[new.pk]["dataset_version"] == rows[new.pk]["current_version"] == 2


def test_recent_analyses_mark_the_stale_rows(client, team, app, tmp_path,
                                             django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        old = bs.analysis_start(dataset=app, kind="funnel",
                                params={"steps": ["signup", "report_created"]})
    client.force_login(team["viewer"])
    page = client.get("/w/acme/behaviour/").content.decode()
    assert "stale: the data is now" not in page
    import_more(tmp_path, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        new = bs.analysis_start(dataset=Dataset.objects.get(pk=app.pk), kind="funnel",
                                params={"steps": ["signup", "report_created"]})
    page = client.get("/w/acme/behaviour/").content.decode()
    rows = dict(re.findall(r'<tr[^>]*>\s*<td><a href="/w/acme/behaviour/(\d+)/">(.*?)</tr>',
                           page, re.S))
    assert "app v1 <span class=\"warn stale-mark\">stale: the data is now v2</span>" \
        in rows[str(old.pk)]
    assert "stale" not in rows[str(new.pk)] and "app v2" in rows[str(new.pk)]


def test_investment_page_and_brief_mark_a_stale_snapshot(client, team, app, tmp_path,
                                                         django_capture_on_commit_callbacks):
    seg = segment_services.segment_create(dataset=app, name="reporters", definition=REPORTERS)
    refresh(app)
    snap = SegmentSnapshot.objects.get(segment=seg)
    inv = Investment.objects.create(workspace=team["acme"], title="Reports digest", cost=10,
                                    assumed_lift=0.1)
    inv.target_segments.add(seg)
    planner_services.investment_revalue(investment=inv)
    client.force_login(team["viewer"])
    page = client.get(f"/w/acme/investments/{inv.pk}/").content.decode()
    assert "stale segment snapshot" not in page
    brief = client.get("/w/acme/brief/").content.decode()
    assert "reporters" in brief and ", stale</small>" not in brief
    import_more(tmp_path, django_capture_on_commit_callbacks)  # auto-refresh is off
    page = client.get(f"/w/acme/investments/{inv.pk}/").content.decode()
    assert "rest on a stale segment snapshot" in page
    assert f"&#x27;reporters&#x27; (snapshot #{snap.pk}): {SENTENCE}" in page
    reach = re.search(r"<tr><th scope=\"row\">Reach.*?</tr>", page, re.S).group(0)
    assert '<span class="warn">stale</span>' in reach
    brief = client.get("/w/acme/brief/").content.decode()
    assert f"Segments of “app”: {SENTENCE}. The figures below" in brief
    assert "reporters <small class=\"warn\">v1, stale</small>" in brief
    # A refresh puts the snapshot on v2: the marks go.
    refresh(Dataset.objects.get(pk=app.pk))
    page = client.get(f"/w/acme/investments/{inv.pk}/").content.decode()
    assert "stale segment snapshot" not in page
    assert ", stale</small>" not in client.get("/w/acme/brief/").content.decode()


def test_reach_reads_as_a_whole_count_only_when_it_is_one(client, team):
    def reach(value: float) -> dict:
        return {"reach": {"estimate": value, "low": value, "high": value, "source": "given"}}

    whole = Investment.objects.create(workspace=team["acme"], title="Whole", cost=10,
                                      value_sources=reach(1646.0))
    part = Investment.objects.create(workspace=team["acme"], title="Part", cost=10,
                                     value_sources=reach(12.5))
    client.force_login(team["viewer"])
    row = re.search(r"<tr><th scope=\"row\">Reach.*?</tr>", client.get(
        f"/w/acme/investments/{whole.pk}/").content.decode(), re.S).group(0)
    assert '<td class="num">1,646</td><td class="num">1,646–1,646' in row
    row = re.search(r"<tr><th scope=\"row\">Reach.*?</tr>", client.get(
        f"/w/acme/investments/{part.pk}/").content.decode(), re.S).group(0)
    assert '<td class="num">12.500</td><td class="num">12.500–12.500' in row  # never cut
