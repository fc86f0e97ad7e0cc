"""Event kinds (activity / system) and a dataset's retention definition: the default
classifier, overrides through the API and the dataset page, bad input naming the field, the
definition reaching the segments' D1/D7/D30 and their snapshots' provenance, and behaviour
retention's new parameters."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from events.event_kinds import (
    activity_events,
    check_overrides,
    default_kind,
    describe_return_set,
    event_kinds,
)
from events.models import Dataset

CATALOG = [{"event": "session_start"}, {"event": "upgrade", "revenue_events": 3},
           {"event": "Invoice Paid"}, {"event": "email_opened"}, {"event": "feature_used"},
           {"event": "experiment_assigned"}, {"event": "subscription_renewed"},
           {"event": "purchase"}]


def test_the_default_classifier_marks_billing_and_system_events():
    kinds = event_kinds(CATALOG)
    assert kinds == {"session_start": "activity", "upgrade": "system",
                     "Invoice Paid": "system", "email_opened": "system",
                     "feature_used": "activity", "experiment_assigned": "system",
                     "subscription_renewed": "system", "purchase": "system"}
    assert default_kind("report_created") == "activity"
    assert default_kind("report_created", revenue_events=1) == "system"
    # An override wins; the activity set follows.
    kinds = event_kinds(CATALOG, {"upgrade": "activity", "email_opened": "activity"})
    assert activity_events(kinds) == ["email_opened", "feature_used", "session_start",
                                      "upgrade"]
    text = describe_return_set(["session_start", "feature_used"], event_kinds(CATALOG))["text"]
    assert text.startswith("returned with: feature_used, session_start; excluded: ")
    assert "purchase (billing/system)" in text
    with pytest.raises(ValueError, match="'upgrade': the kind must be"):
        check_overrides({"upgrade": "billing"})
    with pytest.raises(ValueError, match="'nope' is not an event"):
        check_overrides({"nope": "system"}, ["upgrade"])


@pytest.fixture
def demo(team, tmp_path):
    from events.demo import generate_demo

    data = generate_demo(users=1500, seed=7)
    data.events.to_csv(tmp_path / "e.csv", index=False)
    data.users.to_csv(tmp_path / "u.csv", index=False)
    call_command("import_events", workspace="acme", events=tmp_path / "e.csv",
                 users=tmp_path / "u.csv", dataset="demo")
    return {"data": data, "dataset": Dataset.objects.get(name="demo"), **team}


@pytest.mark.django_db
def test_the_catalog_counts_revenue_events_and_the_api_changes_kinds(demo, api):
    dataset = demo["dataset"]
    events = demo["data"].events
    revenue = {e["event"]: e["revenue_events"] for e in dataset.event_catalog}
    assert revenue["purchase"] == int((events[events.event == "purchase"].revenue > 0).sum())
    assert revenue["session_start"] == 0
    client = api(demo["analyst"])
    url = f"/api/v1/datasets/{dataset.pk}/"
    got = client.get(url).json()
    assert got["event_kinds"] == {} and got["retention_return_events"] == []
    r = client.patch(url, {"event_kinds": {"upgrade": "activity", "purchase": "system"},
                           "retention_start_event": "feature_used",
                           "retention_return_events": ["session_start", "report_created"]},
                     format="json")
    assert r.status_code == 200, r.content
    # purchase is system by default: no override is kept for it.
    assert r.json()["event_kinds"] == {"upgrade": "activity"}
    assert r.json()["retention_start_event"] == "feature_used"
    assert r.json()["retention_return_events"] == ["report_created", "session_start"]
    for body, field in [
        ({"event_kinds": {"upgrade": "billing"}}, "event_kinds"),
        ({"event_kinds": {"nope": "system"}}, "event_kinds"),
        ({"event_kinds": ["upgrade"]}, "event_kinds"),
        ({"retention_start_event": "nope"}, "retention_start_event"),
        ({"retention_return_events": "session_start"}, "retention_return_events"),
        ({"retention_return_events": ["session_start", "nope"]},
         "retention_return_events[1]"),
    ]:
        r = client.patch(url, body, format="json")
        assert r.status_code == 400 and field in r.json(), (body, r.content)
    dataset.refresh_from_db()  # nothing stored was lost
    assert dataset.event_kinds == {"upgrade": "activity"}
    assert dataset.retention_return_events == ["report_created", "session_start"]
    assert api(demo["viewer"]).patch(url, {"retention_start_event": ""},
                                     format="json").status_code == 403
    r = client.patch(url, {"retention_start_event": "signup", "retention_return_events": []},
                     format="json")
    assert r.json()["retention_start_event"] == "" and r.json()["retention_return_events"] == []


@pytest.mark.django_db
def test_the_dataset_page_shows_and_edits_kinds_and_the_definition(demo, client):
    dataset = demo["dataset"]
    client.force_login(demo["analyst"])
    page = client.get(f"/w/acme/datasets/{dataset.pk}/").content.decode()
    assert "Retention: what counts as coming back" in page
    assert "purchase (billing/system)" in page  # excluded from the default return set
    assert 'name="kind:purchase"' in page and "carries revenue" in page
    url = f"/w/acme/datasets/{dataset.pk}/retention/"
    r = client.post(url, {"part": "kinds", "kind:invite_sent": "system",
                          "kind:purchase": "system"}, follow=True)
    assert "Saved the event kinds." in r.content.decode()
    dataset.refresh_from_db()
    assert dataset.event_kinds == {"invite_sent": "system"}
    page = r.content.decode()
    assert "set by hand (default activity: user action)" in page
    r = client.post(url, {"part": "definition", "start_event": "", "return_set": "chosen"},
                    follow=True)
    assert "retention_return_events: choose at least one return event" in r.content.decode()
    r = client.post(url, {"part": "definition", "start_event": "nope",
                          "return_set": "activity"}, follow=True)
    assert "retention_start_event: &#x27;nope&#x27; is not an event" in r.content.decode()
    client.post(url, {"part": "definition", "start_event": "session_start",
                      "return_set": "chosen", "return_events": ["feature_used"]})
    dataset.refresh_from_db()
    assert dataset.retention_start_event == "session_start"
    assert dataset.retention_return_events == ["feature_used"]
    client.force_login(demo["viewer"])
    assert client.post(url, {"part": "kinds", "kind:upgrade": "activity"}).status_code == 403
    assert 'name="kind:purchase"' not in client.get(f"/w/acme/datasets/{dataset.pk}/").content.decode()


@pytest.mark.django_db
def test_a_refresh_measures_with_the_definition_and_records_it(demo, client):
    from segments import segment_services
    from segments.models import Refresh, SegmentSnapshot

    dataset = demo["dataset"]
    seg = segment_services.segment_create(
        dataset=dataset, name="team", definition={"attribute": "plan", "op": "eq",
                                                  "value": "team"})

    def refresh() -> Refresh:
        call_command("refresh_segments", workspace="acme")
        return Refresh.objects.filter(dataset=dataset).order_by("-id").first()

    first = refresh()
    snap = SegmentSnapshot.objects.get(segment=seg, refresh=first)
    definition = snap.retention["definition"]
    assert definition["start_event"] == "signup"
    assert "purchase" in definition["excluded"] and "purchase" not in definition["return_events"]
    assert definition["text"].startswith("returned with: feature_used, invite_sent, ")
    assert snap.signals["retention_d30"]["unit"] == "share active on day 30 (any activity event)"
    assert first.summary["retention"] == definition
    d30 = snap.signals["retention_d30"]["estimate"]
    assert d30 < snap.signals["retention_d7"]["estimate"]
    dataset.retention_return_events = ["purchase", "session_start"]
    dataset.save()
    second = refresh()
    snap2 = SegmentSnapshot.objects.get(segment=seg, refresh=second)
    assert snap2.signals["retention_d30"]["unit"] == \
        "share active on day 30 (any of: purchase, session_start)"
    assert snap2.signals["retention_d30"]["estimate"] > d30
    client.force_login(demo["viewer"])
    page = client.get(f"/w/acme/segments/{seg.pk}/").content.decode()
    assert "returned with: purchase, session_start; excluded:" in page


@pytest.mark.django_db
def test_behaviour_retention_params_default_and_bad_ones_name_the_field(demo, api):
    from behaviour.models import BehaviourAnalysis

    client = api(demo["analyst"])
    ds = demo["dataset"].pk
    for params, field in [
        ({"period_kind": "sliding"}, "period_kind"),
        ({"period_kind": "rolling", "period_days": 0}, "period_days"),
        ({"period_kind": "rolling", "period_days": 1.5}, "period_days"),
        ({"period_kind": "rolling", "period_days": "x"}, "period_days"),
        ({"return_on": "within", "within": 1}, "within"),
        ({"return_on": "around"}, "return_on"),
        ({"start_event": "nope"}, "start_event"),
        ({"return_events": ["session_start", "nope"]}, "return_events[1]"),
        ({"return_events": {"a": 1}}, "return_events"),
    ]:
        r = client.post("/api/v1/analyses/", {"dataset": ds, "kind": "retention",
                                              "params": params}, format="json")
        assert r.status_code == 400 and field in r.json(), (params, r.content)
    assert BehaviourAnalysis.objects.count() == 0
    # Old parameters still work; the default return set is the activity events.
    r = client.post("/api/v1/analyses/", {"dataset": ds, "kind": "retention", "params": {
        "cohort_by": "signup", "period": "week", "return_on": "on"}}, format="json")
    assert r.status_code == 202, r.content
    params = BehaviourAnalysis.objects.get().params
    assert "purchase" not in params["return_events"]
    assert "session_start" in params["return_events"]
    assert params["period_kind"] == "calendar" and params["start_event"] == "signup"


@pytest.mark.django_db
def test_a_large_catalog_types_the_names_instead_of_listing_them(team, client):
    catalog = [{"event": f"name_{i:03d}", "count": 1, "users": 1,
                "weekly": {"weeks": [], "counts": []}} for i in range(60)]
    catalog.append({"event": "invoice_sent", "count": 1, "users": 1,
                    "weekly": {"weeks": [], "counts": []}})
    dataset = Dataset.objects.create(workspace=team["acme"], name="wide", version=1,
                                     event_catalog=catalog)
    client.force_login(team["analyst"])
    page = client.get(f"/w/acme/datasets/{dataset.pk}/").content.decode()
    assert 'name="return_events_text"' in page and 'value="name_059"' not in page
    assert "60 return events (any activity event), 1 excluded" in page
    url = f"/w/acme/datasets/{dataset.pk}/retention/"
    client.post(url, {"part": "definition", "start_event": "name_003", "return_set": "chosen",
                      "return_events_text": "name_001, name_059"})
    dataset.refresh_from_db()
    assert dataset.retention_start_event == "name_003"
    assert dataset.retention_return_events == ["name_001", "name_059"]
    r = client.post(url, {"part": "definition", "return_set": "chosen",
                          "return_events_text": "name_001, nope"}, follow=True)
    assert "retention_return_events[1]: &#x27;nope&#x27; is not an event" in r.content.decode()
