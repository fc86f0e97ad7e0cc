"""Trends through the API, the job and the pages; saved insights on the dashboard (CRUD, roles)
and re-read after a new dataset version (a second import), with figures counted independently
from the imported rows."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from django.core.management import call_command

from behaviour.models import BehaviourAnalysis, SavedInsight
from events.models import Dataset
from jobs.models import Job

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday


def make_events(seed: int, users: range, days: int = 60, n: int = 500) -> pd.DataFrame:
    rng = random.Random(seed)
    rows, seen = [], set()
    while len(rows) < n:
        u = rng.choice(list(users))
        when = START + timedelta(seconds=rng.randrange(days * 86400))
        name = rng.choice(["view", "view", "buy", "share"])
        if (u, name, when) in seen:
            continue
        seen.add((u, name, when))
        rows.append({"user_id": f"u{u:03d}", "event": name,
                     "timestamp": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "revenue": float(rng.randint(1, 40)) if name == "buy" else None,
                     "properties": json.dumps({"source": rng.choice(["ad", "mail", "web"])})})
    return pd.DataFrame(rows)


def make_users(users: range) -> pd.DataFrame:
    return pd.DataFrame({"user_id": [f"u{u:03d}" for u in users],
                         "signup_time": [START.strftime("%Y-%m-%dT%H:%M:%SZ")] * len(users),
                         "plan": [("free", "pro", "team")[u % 3] for u in users]})


def import_csv(tmp_path, name: str, events: pd.DataFrame, users: pd.DataFrame) -> None:
    events.to_csv(tmp_path / f"{name}-e.csv", index=False)
    users.to_csv(tmp_path / f"{name}-u.csv", index=False)
    call_command("import_events", workspace="acme", events=tmp_path / f"{name}-e.csv",
                 users=tmp_path / f"{name}-u.csv", dataset="shop")


@pytest.fixture
def shop(team, tmp_path):
    events = make_events(1, range(40))
    import_csv(tmp_path, "v1", events, make_users(range(40)))
    return {"events": events, "dataset": Dataset.objects.get(name="shop"), **team}


def weekly(events: pd.DataFrame, event: str, measure: str, lo: str, hi: str,
           keep=None) -> list[float]:
    """The measure per Monday week over [lo, hi] (inclusive days) with pandas, 0 when empty."""
    ev = events.assign(ts=pd.to_datetime(events.timestamp, utc=True))
    ev = ev[(ev.ts >= pd.Timestamp(lo, tz="UTC"))
            & (ev.ts < pd.Timestamp(hi, tz="UTC") + pd.Timedelta(days=1))]
    if event != "any":
        ev = ev[ev.event == event]
    if keep is not None:
        ev = ev[keep(ev)]
    week = (ev.ts.dt.tz_localize(None).dt.normalize()
            - pd.to_timedelta(ev.ts.dt.day_of_week, unit="D"))
    weeks = pd.date_range(pd.Timestamp(lo) - pd.Timedelta(days=pd.Timestamp(lo).weekday()),
                          pd.Timestamp(hi), freq="7D")
    grouped = ev.groupby(week)
    if measure == "count":
        s = grouped.size()
    elif measure == "unique_users":
        s = grouped.user_id.nunique()
    else:
        s = grouped.revenue.sum()
    return [float(s.get(w, 0)) for w in weeks]


def run(client, dataset, params, capture):
    with capture(execute=True):
        r = client.post("/api/v1/analyses/", {"dataset": dataset.pk, "kind": "trends",
                                              "params": params}, format="json")
    assert r.status_code in (200, 202), r.content
    got = client.get(f"/api/v1/analyses/{r.json()['id']}/").json()
    assert got["job"]["state"] == "succeeded", got["job"]["error"]
    return got


def test_trends_job_matches_pandas(shop, api, django_capture_on_commit_callbacks):
    client = api(shop["analyst"])
    params = {"series": [{"event": "view", "measure": "count"},
                         {"event": "buy", "measure": "unique_users"},
                         {"event": "buy", "measure": "sum_revenue"}],
              "interval": "week", "date_from": "2026-03-04", "date_to": "2026-04-20",
              "breakdown_by": "attribute", "breakdown_key": "plan", "top": 2,
              "formula": "B / A * 100"}
    got = run(client, shop["dataset"], params, django_capture_on_commit_callbacks)
    r, ev = got["result"], shop["events"]
    lo, hi = "2026-03-04", "2026-04-20"
    assert r["buckets"][0] == "2026-03-02" and r["buckets"][-1] == "2026-04-20"
    a = weekly(ev, "view", "count", lo, hi)
    b = weekly(ev, "buy", "unique_users", lo, hi)
    assert r["series"][0]["values"] == a
    assert r["series"][1]["values"] == b
    assert r["series"][2]["values"] == pytest.approx(weekly(ev, "buy", "sum_revenue", lo, hi))
    assert r["formula"]["values"] == pytest.approx(
        [None if x == 0 else y / x * 100 for x, y in zip(a, b, strict=True)])
    # Plans by view count over the range; the third plan is "other".
    plan = {f"u{u:03d}": ("free", "pro", "team")[u % 3] for u in range(40)}
    in_range = ev[(ev.event == "view") & (ev.timestamp >= lo) & (ev.timestamp < "2026-04-21")]
    totals = in_range.user_id.map(plan).value_counts()
    top = sorted(totals.index, key=lambda p: (-totals[p], p))[:2]
    assert r["breakdown"]["groups"] == [*top, "other"]
    for row, name in zip(r["series"][0]["breakdown"], top, strict=False):
        assert row["values"] == weekly(ev, "view", "count", lo, hi,
                                       keep=lambda e, n=name: e.user_id.map(plan) == n)
    other = r["series"][0]["breakdown"][2]["values"]
    assert other == weekly(ev, "view", "count", lo, hi,
                           keep=lambda e: ~e.user_id.map(plan).isin(top))


def test_trends_property_breakdown_previous_period_and_default_range(
        shop, api, django_capture_on_commit_callbacks):
    client = api(shop["analyst"])
    ev = shop["events"]
    got = run(client, shop["dataset"], {
        "series": [{"event": "any", "measure": "count"}], "interval": "week",
        "breakdown_by": "property", "breakdown_key": "source", "top": 5, "compare": True},
        django_capture_on_commit_callbacks)
    r = got["result"]
    last = pd.to_datetime(ev.timestamp, utc=True).max().date()
    first = last - timedelta(days=89)
    assert (r["from"], r["to"]) == (first.isoformat(), last.isoformat())
    assert r["breakdown"]["groups"] == sorted(
        ["ad", "mail", "web"], key=lambda s: (-(ev.properties.str.contains(s)
                                                & (ev.timestamp >= first.isoformat())).sum(), s))
    assert r["breakdown"]["other"] is False
    for row in r["series"][0]["breakdown"]:
        assert row["values"] == weekly(ev, "any", "count", first.isoformat(), last.isoformat(),
                                       keep=lambda e, s=row["label"]: e.properties.str.contains(s))
    # The data start inside the window: the previous 90 days have no events (zeros, not gaps).
    assert r["previous"]["to"] == (first - timedelta(days=1)).isoformat()
    assert r["series"][0]["previous"] == [0.0] * len(r["buckets"])


def test_bad_trends_params_name_the_field(shop, api):
    client = api(shop["analyst"])
    ok = {"event": "view", "measure": "count"}
    for params, field in [
        ({}, "series"),
        ({"series": [ok, {"event": "nope"}]}, "series[1].event"),
        ({"series": [ok, {"event": ""}]}, "series[1].event"),
        ({"series": [{"event": "view", "measure": "median"}]}, "series[0].measure"),
        ({"series": [ok], "interval": "hour"}, "interval"),
        ({"series": [ok], "date_from": "2026-13-01"}, "date_from"),
        ({"series": [ok], "date_from": "2026-04-02", "date_to": "2026-04-01"}, "date_to"),
        ({"series": [ok], "formula": "A ** 2"}, "formula"),
        ({"series": [ok], "formula": "B / A"}, "formula"),
        ({"series": [ok], "formula": "__import__('os').system('x')"}, "formula"),
        ({"series": [ok], "breakdown_by": "attribute", "breakdown_key": "shoe"}, "breakdown_key"),
        ({"series": [ok], "breakdown_by": "property", "breakdown_key": "colour"},
         "breakdown_key"),
        ({"series": [ok], "breakdown_by": "segments", "breakdown_segments": [99999]},
         "breakdown_segments[0]"),
        ({"series": [ok], "breakdown_by": "colour"}, "breakdown_by"),
        ({"series": [ok], "top": 0}, "top"),
    ]:
        r = client.post("/api/v1/analyses/", {"dataset": shop["dataset"].pk, "kind": "trends",
                                              "params": params}, format="json")
        assert r.status_code == 400 and field in r.json(), (params, r.content)
    assert BehaviourAnalysis.objects.count() == 0


def test_saved_insight_is_reread_after_a_new_version(shop, api, client, tmp_path,
                                                     django_capture_on_commit_callbacks):
    analyst = api(shop["analyst"])
    params = {"series": [{"event": "buy", "measure": "count"}], "interval": "month",
              "date_from": "2026-03-01", "date_to": "2026-06-30"}
    with django_capture_on_commit_callbacks(execute=True):
        r = analyst.post("/api/v1/insights/", {"workspace": "acme", "dataset": shop["dataset"].pk,
                                              "name": "Purchases per month", "kind": "trends",
                                              "params": params}, format="json")
    assert r.status_code == 201, r.content
    iid = r.json()["id"]

    def monthly(events: pd.DataFrame) -> list[float]:
        buys = events[events.event == "buy"]
        return [float((buys.timestamp.str[:7] == m).sum())
                for m in ("2026-03", "2026-04", "2026-05", "2026-06")]

    v1 = monthly(shop["events"])
    got = analyst.get(f"/api/v1/insights/{iid}/").json()
    assert got["current"]["dataset_version"] == 1
    assert got["current"]["result"]["series"][0]["values"] == v1
    # Viewers read, never write.
    viewer = api(shop["viewer"])
    assert viewer.get("/api/v1/insights/").json()["results"][0]["id"] == iid
    assert viewer.post("/api/v1/insights/", {"workspace": "acme", "dataset": shop["dataset"].pk,
                                             "name": "x", "kind": "trends", "params": params},
                       format="json").status_code == 403
    assert viewer.delete(f"/api/v1/insights/{iid}/").status_code == 403
    # A second import (new users, later events): the import's hook queues the re-read job.
    more = make_events(2, range(40, 70), days=100, n=300)
    with django_capture_on_commit_callbacks(execute=True):
        import_csv(tmp_path, "v2", more, make_users(range(40, 70)))
    dataset = Dataset.objects.get(pk=shop["dataset"].pk)
    assert dataset.version == 2
    # The re-read job queued the analysis on v2 (its own job, run here at commit).
    job = Job.objects.get(kind="insights")
    assert job.state == "succeeded"
    assert job.result == {"insights": 1, "current": 0, "queued": 1, "errors": []}
    fresh = BehaviourAnalysis.objects.get(kind="trends", dataset_version=2)
    assert fresh.job.state == "succeeded"
    v2 = monthly(pd.concat([shop["events"], more]))
    assert v2 != v1
    got = analyst.get(f"/api/v1/insights/{iid}/").json()
    assert got["current"]["dataset_version"] == 2 and got["current"]["updating_to"] is None
    assert got["current"]["result"]["series"][0]["values"] == v2
    assert SavedInsight.objects.get(pk=iid).analysis_id == fresh.pk
    # The dashboard shows the new numbers and the version they come from.
    client.force_login(shop["viewer"])
    page = client.get("/w/acme/insights/").content.decode()
    assert "Purchases per month" in page and "computed on v2" in page
    for value in v2:
        assert f">{value:,.0f}<" in page
    assert "Rename" not in page  # a viewer sees no edit forms


def test_dashboard_rereads_and_shows_updating_until_done(shop, api, client, tmp_path,
                                                         django_capture_on_commit_callbacks):
    from behaviour import insights

    with django_capture_on_commit_callbacks(execute=True):
        r = api(shop["analyst"]).post("/api/v1/analyses/", {
            "dataset": shop["dataset"].pk, "kind": "trends",
            "params": {"series": [{"event": "view", "measure": "unique_users"}]}}, format="json")
    analysis = BehaviourAnalysis.objects.get(pk=r.json()["id"])
    insight = insights.insight_save(analysis=analysis, name="Viewers", user=shop["analyst"])
    # A new version with the hook left out: the dashboard itself notices and queues the job;
    # without a worker (commit callbacks not run) it says "updating to v2".
    from events.signals import import_succeeded

    import_succeeded.disconnect(dispatch_uid="behaviour-insights-reread")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            import_csv(tmp_path, "v2", make_events(3, range(40, 50), n=50),
                       make_users(range(40, 50)))
    finally:
        insights.register()
    client.force_login(shop["analyst"])
    with django_capture_on_commit_callbacks(execute=False) as queued:
        page = client.get("/w/acme/insights/").content.decode()
    assert "updating to v2" in page and "computed on v1" in page and len(queued) == 1
    queued[0]()  # the worker runs the job
    page = client.get("/w/acme/insights/").content.decode()
    assert "computed on v2" in page and "updating to" not in page
    assert SavedInsight.objects.get(pk=insight.pk).analysis.dataset_version == 2


def test_dashboard_rename_reorder_remove_and_save_from_the_page(
        shop, api, client, django_capture_on_commit_callbacks):
    client.force_login(shop["analyst"])
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post("/w/acme/behaviour/", {
            "dataset": shop["dataset"].pk, "kind": "trends", "trend_event_0": "view",
            "trend_measure_0": "count", "trend_event_1": "buy", "trend_measure_1": "count",
            "trend_interval": "week", "trend_breakdown": "attribute:plan", "trend_top": "2",
            "trend_formula": "B / A", "trend_compare": "1"})
    assert r.status_code == 302, r.content.decode()[:2000]
    aid = int(r.url.rstrip("/").split("/")[-1])
    page = client.get(r.url).content.decode()
    assert "Save to dashboard" in page and "formula B / A" in page and "A · other" in page
    a = BehaviourAnalysis.objects.get(pk=aid)
    assert a.params["breakdown_by"] == "attribute" and a.params["compare"] is True
    for name in ("First", "Second", "Third"):
        client.post(f"/w/acme/behaviour/{aid}/save-insight/", {"name": name})
    assert list(SavedInsight.objects.values_list("name", flat=True)) == ["First", "Second",
                                                                         "Third"]
    third = SavedInsight.objects.get(name="Third")
    client.post("/w/acme/insights/", {"insight": third.pk, "action": "up"})
    client.post("/w/acme/insights/", {"insight": third.pk, "action": "rename", "name": "3rd"})
    first = SavedInsight.objects.get(name="First")
    client.post("/w/acme/insights/", {"insight": first.pk, "action": "remove"})
    assert list(SavedInsight.objects.values_list("name", flat=True)) == ["3rd", "Second"]
    assert client.post(f"/w/acme/behaviour/{aid}/save-insight/", {"name": " "}).status_code == 302
    assert SavedInsight.objects.count() == 2
    # API: rename and move to the front; bad name names the field.
    analyst = api(shop["analyst"])
    second = SavedInsight.objects.get(name="Second")
    r = analyst.patch(f"/api/v1/insights/{second.pk}/", {"position": 0, "name": "2nd"},
                      format="json")
    assert r.status_code == 200, r.content
    assert list(SavedInsight.objects.values_list("name", flat=True)) == ["2nd", "3rd"]
    assert analyst.patch(f"/api/v1/insights/{second.pk}/", {"name": ""},
                         format="json").status_code == 400
    r = analyst.post("/api/v1/insights/", {"workspace": "acme", "dataset": shop["dataset"].pk,
                                           "name": "bad", "kind": "trends",
                                           "params": {"series": [{"event": "nope"}]}},
                     format="json")
    assert r.status_code == 400 and "series[0].event" in r.json()
    # Viewers: no save form, no page writes.
    client.force_login(shop["viewer"])
    assert "Save to dashboard" not in client.get(f"/w/acme/behaviour/{aid}/").content.decode()
    assert client.post(f"/w/acme/behaviour/{aid}/save-insight/",
                       {"name": "v"}).status_code == 403
    assert client.post("/w/acme/insights/", {"insight": second.pk,
                                             "action": "remove"}).status_code == 403


def test_demo_analyses_include_trends_and_a_saved_insight(team, tmp_path):
    from events.demo import generate_demo

    data = generate_demo(users=300, seed=7)
    data.events.to_csv(tmp_path / "e.csv", index=False)
    data.users.to_csv(tmp_path / "u.csv", index=False)
    call_command("import_events", workspace="acme", events=tmp_path / "e.csv",
                 users=tmp_path / "u.csv", dataset="demo")
    call_command("create_demo_analyses", workspace="acme")
    call_command("create_demo_analyses", workspace="acme")  # again: nothing saved twice
    insight = SavedInsight.objects.get()
    assert insight.kind == "trends" and insight.analysis.result["breakdown"]["key"] == "plan"
    r = insight.analysis.result
    # Series A: weekly active users; the last bucket's value counted from the raw rows.
    ev = data.events.assign(ts=pd.to_datetime(data.events.timestamp, utc=True))
    last_week = pd.Timestamp(r["buckets"][-1], tz="UTC")
    active = ev[(ev.ts >= last_week) & (ev.ts < last_week + pd.Timedelta(days=7))]
    assert r["series"][0]["values"][-1] == active.user_id.nunique()


def test_trends_breakdown_by_segments(shop, api, django_capture_on_commit_callbacks):
    from segments import segment_services

    pro = segment_services.segment_create(
        dataset=shop["dataset"], name="Pro", definition={"attribute": "plan", "op": "eq",
                                                         "value": "pro"})
    few = segment_services.segment_create(  # overlaps Pro: users may sit in both
        dataset=shop["dataset"], name="Few", definition={"attribute": "plan", "op": "in",
                                                         "value": ["pro", "team"]})
    got = run(api(shop["analyst"]), shop["dataset"], {
        "series": [{"event": "buy", "measure": "sum_revenue"}], "interval": "week",
        "date_from": "2026-03-02", "date_to": "2026-04-26", "breakdown_by": "segments",
        "breakdown_segments": [pro.pk, few.pk], "top": 1}, django_capture_on_commit_callbacks)
    r, ev = got["result"], shop["events"]
    pro_users = {f"u{u:03d}" for u in range(40) if u % 3 == 1}
    few_users = {f"u{u:03d}" for u in range(40) if u % 3 in (1, 2)}
    buys = ev[ev.event == "buy"]
    totals = {"segment: Pro": buys[buys.user_id.isin(pro_users)].revenue.sum(),
              "segment: Few": buys[buys.user_id.isin(few_users)].revenue.sum()}
    top = min(totals, key=lambda k: (-totals[k], k))
    assert r["breakdown"]["groups"] == [top, "other"]
    members = pro_users if top == "segment: Pro" else few_users
    lo, hi = "2026-03-02", "2026-04-26"
    assert r["series"][0]["breakdown"][0]["values"] == pytest.approx(
        weekly(ev, "buy", "sum_revenue", lo, hi, keep=lambda e: e.user_id.isin(members)))
    assert r["series"][0]["breakdown"][1]["values"] == pytest.approx(
        weekly(ev, "buy", "sum_revenue", lo, hi, keep=lambda e: ~e.user_id.isin(members)))
