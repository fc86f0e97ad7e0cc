"""Behaviour analyses through the API, the job, the cache and the pages; results into segments
and exploratory hypotheses."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command

from behaviour.models import BehaviourAnalysis
from events.demo import generate_demo
from events.models import Dataset
from experiments.models import Hypothesis
from segments.models import Segment

pytestmark = pytest.mark.django_db

STEPS = ["signup", "onboarding_completed", "report_created", "invite_sent", "upgrade"]


@pytest.fixture
def demo(team, tmp_path):
    data = generate_demo(users=2000, seed=7)
    data.events.to_csv(tmp_path / "e.csv", index=False)
    data.users.to_csv(tmp_path / "u.csv", index=False)
    call_command("import_events", workspace="acme", events=tmp_path / "e.csv",
                 users=tmp_path / "u.csv", dataset="demo")
    return {"data": data, "dataset": Dataset.objects.get(name="demo"), **team}


def test_funnel_job_cache_and_dropoff_segment(demo, api, django_capture_on_commit_callbacks):
    client = api(demo["analyst"])
    body = {"dataset": demo["dataset"].pk, "kind": "funnel",
            "params": {"steps": STEPS, "window_days": 14}}
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post("/api/v1/analyses/", body, format="json")
    assert r.status_code == 202, r.content
    aid = r.json()["id"]
    got = client.get(f"/api/v1/analyses/{aid}/").json()
    assert got["job"]["state"] == "succeeded"
    steps = got["result"]["overall"]["steps"]
    # Independent count: users with a signup event, and of them those with an upgrade at all.
    ev = demo["data"].events
    assert steps[0]["users"] == ev.loc[ev.event == "signup", "user_id"].nunique()
    assert steps[-1]["users"] <= ev.loc[ev.event == "upgrade", "user_id"].nunique()
    # The same input on the same dataset version: the cached result, no new job.
    again = client.post("/api/v1/analyses/", body, format="json")
    assert again.status_code == 200 and again.json()["id"] == aid
    assert BehaviourAnalysis.objects.count() == 1
    # Drop-off after step 2 saved as a segment: exactly that step's dropped users.
    r = client.post(f"/api/v1/analyses/{aid}/save/", {"name": "Stalled after onboarding",
                                                      "step": 2}, format="json")
    assert r.status_code == 201, r.content
    seg = Segment.objects.get(name="Stalled after onboarding")
    assert len(seg.definition["members"]) == steps[1]["dropped"]
    assert client.post(f"/api/v1/analyses/{aid}/save/", {"name": "x", "step": 5},
                       format="json").status_code == 400
    assert api(demo["viewer"]).post(f"/api/v1/analyses/{aid}/save/", {"name": "y", "step": 1},
                                    format="json").status_code == 403


def test_bad_input_names_the_field(demo, api):
    client = api(demo["analyst"])
    ds = demo["dataset"].pk
    for kind, params, field in [
        ("funnel", {"steps": ["signup"]}, "steps"),
        ("funnel", {"steps": ["signup", "nope"]}, "steps[1]"),
        ("funnel", {"steps": STEPS, "mode": "sideways"}, "mode"),
        ("funnel", {"steps": STEPS, "exclusions": ["upgrade"]}, "exclusions[0]"),
        ("funnel", {"steps": STEPS, "breakdown": "shoe_size"}, "breakdown"),
        ("paths", {"start_event": "signup", "end_event": "upgrade"}, "end_event"),
        ("retention", {"period": "fortnight"}, "period"),
        ("discovery", {}, "outcome_event"),
        ("funnel", {"steps": STEPS, "segment": 999999}, "segment"),
    ]:
        r = client.post("/api/v1/analyses/", {"dataset": ds, "kind": kind, "params": params},
                        format="json")
        assert r.status_code == 400 and field in r.json(), (kind, params, r.content)
    assert BehaviourAnalysis.objects.count() == 0
    assert api(demo["outsider"]).post("/api/v1/analyses/", {
        "dataset": ds, "kind": "retention", "params": {}}, format="json").status_code == 404


def test_discovery_to_segment_and_exploratory_hypothesis(demo, api, client,
                                                         django_capture_on_commit_callbacks):
    api_client = api(demo["analyst"])
    with django_capture_on_commit_callbacks(execute=True):
        r = api_client.post("/api/v1/analyses/", {
            "dataset": demo["dataset"].pk, "kind": "discovery",
            "params": {"outcome_event": "upgrade", "outcome_days": 60,
                       "events": ["report_created", "session_start"],
                       "thresholds": [1, 2], "windows": [7]}}, format="json")
    aid = r.json()["id"]
    result = BehaviourAnalysis.objects.get(pk=aid).result
    assert result["correlational"] is True and len(result["signals"]) == 4
    top = result["signals"][0]
    r = api_client.post(f"/api/v1/analyses/{aid}/save/", {"name": "Top behaviour", "rank": 1,
                                                          "hypothesis": True}, format="json")
    assert r.status_code == 201, r.content
    seg = Segment.objects.get(name="Top behaviour")
    cand = top["candidate"]
    assert seg.definition == {"event": cand["event"], "min_count": cand["min_count"],
                              "window": {"from_signup_days": [0, int(cand["window_days"])]}}
    hyp = Hypothesis.objects.get()
    assert hyp.exploratory and hyp.source["analysis"] == aid
    assert list(hyp.segments.all()) == [seg]
    # Pages: the form, the result with its table; a viewer sees no save form.
    client.force_login(demo["viewer"])
    assert client.get("/w/acme/behaviour/").status_code == 200
    page = client.get(f"/w/acme/behaviour/{aid}/").content.decode()
    assert "Correlational" in page and cand["label"] in page and "segment name" not in page
    # q-values print as people read them: "< 0.0001" when tiny, never 0.0000.
    q_cells = re.findall(r'<td class="num nowrap">([^<]*)</td><td>(?:<strong>confirmed|not confirmed'
                         r'|—)', page)
    assert q_cells == [("&lt; 0.0001" if s["q_value"] < 1e-4 else f"{s['q_value']:.4f}")
                       for s in result["signals"]]
    assert "0.0000" not in q_cells
    assert client.post(f"/w/acme/behaviour/{aid}/", {"name": "z", "rank": 1}).status_code == 403
    assert client.post("/w/acme/behaviour/", {"dataset": demo["dataset"].pk, "kind": "funnel",
                                              "steps": "signup"}).status_code == 403
    client.force_login(demo["analyst"])
    r = client.post("/w/acme/behaviour/", {"dataset": demo["dataset"].pk, "kind": "funnel",
                                           "steps": "signup"})
    assert r.status_code == 400 and "steps" in r.content.decode()


def test_funnel_breakdown_by_segments(demo, api, django_capture_on_commit_callbacks):
    from segments import segment_services

    web = segment_services.segment_create(dataset=demo["dataset"], name="Web", definition={
        "attribute": "device", "op": "eq", "value": "web"})
    mobile = segment_services.segment_create(dataset=demo["dataset"], name="Mobile",
                                             definition={"attribute": "device", "op": "in",
                                                         "value": ["ios", "android"]})
    with django_capture_on_commit_callbacks(execute=True):
        r = api(demo["analyst"]).post("/api/v1/analyses/", {
            "dataset": demo["dataset"].pk, "kind": "funnel",
            "params": {"steps": STEPS[:3], "breakdown": "device",
                       "breakdown_segments": [web.pk, mobile.pk]}}, format="json")
    result = BehaviourAnalysis.objects.get(pk=r.json()["id"]).result
    series = {b["label"]: b for b in result["breakdown"]}
    # Segment series equal the attribute series they coincide with (not refreshed: the rule
    # is evaluated on the data), and every series is a funnel over its own users.
    web_users = series["segment: Web"]["steps"]
    assert [s["users"] for s in web_users] == [s["users"] for s in series["web"]["steps"]]
    mobile_sum = [a["users"] + b["users"] for a, b in zip(series["ios"]["steps"],
                                                          series["android"]["steps"],
                                                          strict=True)]
    assert [s["users"] for s in series["segment: Mobile"]["steps"]] == mobile_sum
    users = demo["data"].users
    ev = demo["data"].events
    signed = set(ev.loc[ev.event == "signup", "user_id"])
    assert web_users[0]["users"] == len(signed & set(users.loc[users.device == "web",
                                                               "user_id"]))
