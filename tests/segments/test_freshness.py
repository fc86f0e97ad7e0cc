"""Freshness: snapshots on an older dataset version say so everywhere; auto-refresh after an
import, a workspace setting."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from events.models import Dataset
from segments import segment_services
from segments.analytics.freshness import freshness
from segments.models import Refresh, SegmentSnapshot

EVENTS = """user_id,event,timestamp,revenue
a,signup,2025-01-01T00:00:00Z,
a,report_created,2025-01-02T00:00:00Z,
a,purchase,2025-01-05T00:00:00Z,30
b,signup,2025-01-01T00:00:00Z,
b,purchase,2025-01-21T00:00:00Z,10
c,signup,2025-01-02T00:00:00Z,
c,report_created,2025-01-03T00:00:00Z,
d,signup,2025-01-03T00:00:00Z,
"""
# Three new users (e, f, g) and one more event of a known user (a).
MORE = """user_id,event,timestamp,revenue
a,report_created,2025-01-04T00:00:00Z,
e,signup,2025-01-05T00:00:00Z,
e,report_created,2025-01-06T00:00:00Z,
f,signup,2025-01-06T00:00:00Z,
g,signup,2025-01-07T00:00:00Z,
g,report_created,2025-01-07T01:00:00Z,
"""
REPORTERS = {"event": "report_created", "min_count": 1}


# ----- the pure rule -----------------------------------------------------------------------------
def test_a_result_is_stale_exactly_when_the_dataset_has_a_newer_version():
    old = freshness(dataset_version=1, current_version=3, users_then=1_000, users_now=25_000)
    assert old.stale is True and old.users_added == 24_000
    assert old.sentence() == "computed on v1; the data is now v3 (+24,000 users)"
    same = freshness(dataset_version=3, current_version=3, users_then=25_000, users_now=25_000)
    assert same.stale is False and same.sentence() == ""
    lost = freshness(dataset_version=2, current_version=3, users_then=10, users_now=9)
    assert lost.sentence() == "computed on v2; the data is now v3 (-1 user)"
    unknown = freshness(dataset_version=1, current_version=2)
    assert unknown.users_added is None
    assert unknown.sentence() == "computed on v1; the data is now v2"


# ----- through the database ----------------------------------------------------------------------
@pytest.fixture
def dataset(team, tmp_path, db):
    (tmp_path / "e.csv").write_text(EVENTS)
    call_command("import_events", workspace="acme", events=tmp_path / "e.csv", dataset="app")
    team["acme"].min_segment_size = 1
    team["acme"].save()
    return Dataset.objects.get(workspace=team["acme"], name="app")


def import_more(tmp_path, capture) -> Dataset:
    (tmp_path / "more.csv").write_text(MORE)
    with capture(execute=True):
        call_command("import_events", workspace="acme", events=tmp_path / "more.csv",
                     dataset="app")
    return Dataset.objects.get(workspace__slug="acme", name="app")


def refresh(dataset: Dataset) -> Refresh:
    call_command("refresh_segments", workspace=dataset.workspace.slug)
    return Refresh.objects.filter(dataset=dataset).order_by("-id").first()


SENTENCE = "computed on v1; the data is now v2 (+3 users)"


def test_after_an_import_every_snapshot_payload_and_page_says_it_is_stale(
        api, client, team, dataset, tmp_path, django_capture_on_commit_callbacks):
    seg = segment_services.segment_create(dataset=dataset, name="reporters",
                                          definition=REPORTERS)
    refresh(dataset)
    fresh = api(team["viewer"]).get(f"/api/v1/segments/{seg.pk}/").json()
    assert (fresh["stale"], fresh["dataset_version"], fresh["current_version"]) == (False, 1, 1)
    ds = import_more(tmp_path, django_capture_on_commit_callbacks)
    assert (ds.version, ds.total_users) == (2, 7)

    body = api(team["viewer"]).get(f"/api/v1/segments/{seg.pk}/").json()
    assert (body["stale"], body["dataset_version"], body["current_version"]) == (True, 1, 2)
    assert body["latest"]["stale"] is True and body["latest"]["current_version"] == 2
    snap = api(team["viewer"]).get(f"/api/v1/snapshots/{body['latest']['id']}/").json()
    assert (snap["stale"], snap["dataset_version"], snap["current_version"]) == (True, 1, 2)
    assert snap["freshness"]["users_then"] == 4 and snap["freshness"]["users_now"] == 7
    assert snap["freshness"]["sentence"] == SENTENCE

    client.force_login(team["analyst"])
    pages = ["/w/acme/segments/", f"/w/acme/segments/{seg.pk}/",
             f"/w/acme/segments/compare/?s={seg.pk}", "/w/acme/"]
    for url in pages:
        html = client.get(url).content.decode()
        assert SENTENCE in html.lower(), url
        assert 'class="stale-note' in html and ">Refresh</button>" in html, url
    client.force_login(team["viewer"])
    for url in pages:
        html = client.get(url).content.decode()
        assert SENTENCE in html.lower() and ">Refresh</button>" not in html, url

    # The note's button queues the refresh and comes back to the page it sits on.
    client.force_login(team["analyst"])
    with django_capture_on_commit_callbacks(execute=True):
        res = client.post("/w/acme/segments/refresh/",
                          {"dataset": ds.pk, "next": f"/w/acme/segments/{seg.pk}/"})
    assert res.status_code == 302 and res["Location"] == f"/w/acme/segments/{seg.pk}/"
    latest = SegmentSnapshot.objects.filter(segment=seg).order_by("-id").first()
    assert latest.dataset_version == 2 and latest.size == 4  # a, c, e, g
    after = api(team["viewer"]).get(f"/api/v1/segments/{seg.pk}/").json()
    assert (after["stale"], after["dataset_version"], after["current_version"]) == (False, 2, 2)
    for url in pages:
        assert "stale-note" not in client.get(url).content.decode(), url


def test_the_refresh_button_refuses_a_next_address_off_the_site(client, team, dataset):
    client.force_login(team["analyst"])
    res = client.post("/w/acme/segments/refresh/",
                      {"dataset": dataset.pk, "next": "https://evil.example/"})
    assert res["Location"] == "/w/acme/segments/"


def test_auto_refresh_after_import_puts_snapshots_on_the_new_version(
        api, team, dataset, tmp_path, django_capture_on_commit_callbacks):
    seg = segment_services.segment_create(dataset=dataset, name="reporters",
                                          definition=REPORTERS)
    refresh(dataset)
    url = "/api/v1/workspaces/acme/settings/"
    assert api(team["viewer"]).get(url).json() == {"auto_refresh_segments": False}
    assert api(team["analyst"]).patch(url, {"auto_refresh_segments": True},
                                      format="json").status_code == 403
    bad = api(team["admin"]).patch(url, {"auto_refresh_segments": "sometimes"}, format="json")
    assert bad.status_code == 400 and "auto_refresh_segments" in bad.json()
    empty = api(team["admin"]).patch(url, {}, format="json")
    assert empty.status_code == 400 and "auto_refresh_segments" in empty.json()
    res = api(team["admin"]).patch(url, {"auto_refresh_segments": True}, format="json")
    assert res.status_code == 200 and res.json() == {"auto_refresh_segments": True}
    listed = api(team["viewer"]).get("/api/v1/workspaces/acme/").json()
    assert listed["auto_refresh_segments"] is True

    import_more(tmp_path, django_capture_on_commit_callbacks)
    latest = SegmentSnapshot.objects.filter(segment=seg).order_by("-id").first()
    assert (latest.dataset_version, latest.size) == (2, 4)  # a, c, e, g did report_created
    assert Refresh.objects.filter(dataset=dataset).count() == 2
    body = api(team["viewer"]).get(f"/api/v1/segments/{seg.pk}/").json()
    assert body["stale"] is False and body["current_version"] == 2


def test_without_the_setting_an_import_leaves_snapshots_where_they_were(
        team, dataset, tmp_path, django_capture_on_commit_callbacks):
    seg = segment_services.segment_create(dataset=dataset, name="reporters",
                                          definition=REPORTERS)
    refresh(dataset)
    import_more(tmp_path, django_capture_on_commit_callbacks)
    assert [s.dataset_version for s in SegmentSnapshot.objects.filter(segment=seg)] == [1]
    assert Refresh.objects.filter(dataset=dataset).count() == 1


def test_the_settings_page_changes_the_setting_for_admins_only(client, team, dataset):
    client.force_login(team["viewer"])
    page = client.get("/w/acme/settings/").content.decode()
    assert "Refresh segments automatically after each import" in page and "disabled" in page
    assert client.post("/w/acme/settings/", {"auto_refresh_segments": "on"}).status_code == 403
    client.force_login(team["admin"])
    assert client.post("/w/acme/settings/", {"auto_refresh_segments": "on"}).status_code == 302
    team["acme"].refresh_from_db()
    assert team["acme"].auto_refresh_segments is True
    client.post("/w/acme/settings/", {})
    team["acme"].refresh_from_db()
    assert team["acme"].auto_refresh_segments is False


def test_a_behaviour_analysis_on_an_older_version_says_so_and_reruns(
        client, team, dataset, tmp_path, django_capture_on_commit_callbacks):
    from behaviour import services as bs
    from behaviour.models import BehaviourAnalysis

    with django_capture_on_commit_callbacks(execute=True):
        old = bs.analysis_start(dataset=dataset, kind="funnel",
                                params={"steps": ["signup", "report_created"]})
    old.refresh_from_db()
    assert old.dataset_version == 1 and old.result
    client.force_login(team["analyst"])
    assert "stale-note" not in client.get(f"/w/acme/behaviour/{old.pk}/").content.decode()
    import_more(tmp_path, django_capture_on_commit_callbacks)
    html = client.get(f"/w/acme/behaviour/{old.pk}/").content.decode()
    assert SENTENCE in html.lower() and ">Re-run on v2</button>" in html
    client.force_login(team["viewer"])
    html = client.get(f"/w/acme/behaviour/{old.pk}/").content.decode()
    assert SENTENCE in html.lower() and "Re-run on v2" not in html
    assert client.post(f"/w/acme/behaviour/{old.pk}/", {"rerun": "1"}).status_code == 403
    client.force_login(team["analyst"])
    with django_capture_on_commit_callbacks(execute=True):
        res = client.post(f"/w/acme/behaviour/{old.pk}/", {"rerun": "1"})
    new = BehaviourAnalysis.objects.order_by("-id").first()
    assert res.status_code == 302 and res["Location"] == f"/w/acme/behaviour/{new.pk}/"
    assert (new.pk != old.pk, new.dataset_version, new.params) == (True, 2, old.params)
    # The funnel on v2 counts the three new users who signed up: 4 + 3 entered.
    assert new.result["overall"]["entered"] == 7
    assert "stale-note" not in client.get(res["Location"]).content.decode()


def test_a_failing_import_subscriber_never_fails_the_import(
        team, dataset, tmp_path, django_capture_on_commit_callbacks):
    from events.signals import import_succeeded

    heard: list[dict] = []

    def broken(sender, **kwargs):  # type: ignore[no-untyped-def]
        heard.append(kwargs)
        raise RuntimeError("subscriber bug")

    import_succeeded.connect(broken, dispatch_uid="test-broken")
    try:
        ds = import_more(tmp_path, django_capture_on_commit_callbacks)
    finally:
        import_succeeded.disconnect(dispatch_uid="test-broken")
    assert ds.version == 2 and ds.imports.order_by("-id").first().status == "succeeded"
    assert heard == [{"signal": import_succeeded, "import_id": ds.imports.order_by("-id")
                      .first().pk, "dataset_id": ds.pk, "version": 2}]
