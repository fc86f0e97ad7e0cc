"""Per-step filters, conversion by entry week and the paths coverage through the API and the
pages; bad filters are refused naming the field; parameters are shown by name."""

from __future__ import annotations

import pandas as pd
import pytest
from django.core.management import call_command

from behaviour.models import BehaviourAnalysis
from events.demo import generate_demo
from events.models import Dataset

pytestmark = pytest.mark.django_db

TEAM_UPGRADE = {"event": "upgrade", "filter": {"key": "to_plan", "op": "eq", "value": "team"}}


@pytest.fixture
def demo(team, tmp_path):
    data = generate_demo(users=1500, seed=11)
    data.events.to_csv(tmp_path / "e.csv", index=False)
    data.users.to_csv(tmp_path / "u.csv", index=False)
    call_command("import_events", workspace="acme", events=tmp_path / "e.csv",
                 users=tmp_path / "u.csv", dataset="demo")
    return {"data": data, "dataset": Dataset.objects.get(name="demo"), **team}


def expected_team_upgrades(events: pd.DataFrame, days: float) -> int:
    """Users with a signup and, within ``days`` of it (inclusive), an upgrade to team."""
    ev = events.assign(t=pd.to_datetime(events["timestamp"], utc=True))
    signups = ev[ev.event == "signup"][["user_id", "t"]]
    ups = ev[(ev.event == "upgrade") & ev["properties"].fillna("").str.contains(
        '"to_plan":"team"', regex=False)][["user_id", "t"]]
    both = signups.merge(ups, on="user_id", suffixes=("_s", "_u"))
    ok = (both.t_u >= both.t_s) & (both.t_u - both.t_s <= pd.Timedelta(days=days))
    return int(both[ok].user_id.nunique())


def test_filtered_funnel_through_the_api(demo, api, django_capture_on_commit_callbacks):
    client = api(demo["analyst"])
    body = {"dataset": demo["dataset"].pk, "kind": "funnel",
            "params": {"steps": ["signup", TEAM_UPGRADE], "window_days": 60}}
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post("/api/v1/analyses/", body, format="json")
    assert r.status_code == 202, r.content
    got = client.get(f"/api/v1/analyses/{r.json()['id']}/").json()
    assert got["params"]["steps"] == ["signup", TEAM_UPGRADE]
    result = got["result"]
    steps = result["overall"]["steps"]
    assert steps[1]["label"] == "upgrade [to_plan = team]"
    want = expected_team_upgrades(demo["data"].events, 60)
    assert want > 0 and steps[1]["users"] == want
    # Every upgrade, unfiltered, is more.
    assert expected_team_upgrades(demo["data"].events, 60) < demo["data"].events.query(
        "event == 'upgrade'").user_id.nunique()
    weeks = result["over_time"]
    assert sum(w["entered"] for w in weeks) == result["overall"]["entered"]
    assert sum(w["converted"] for w in weeks) == steps[1]["users"]
    whole = result["overall"]["time_to_convert"]
    assert whole["n"] == steps[1]["users"] == sum(b["users"] for b in whole["bins"])


@pytest.mark.parametrize(("steps", "field"), [
    (["signup", {"event": "upgrade", "filter": {"key": "colour", "op": "eq", "value": "x"}}],
     "steps[1].filter.key"),
    (["signup", {"event": "nope"}], "steps[1].event"),
    (["signup", {"event": "upgrade", "filter": {"key": "to_plan", "op": "like",
                                                "value": "x"}}], "steps[1].filter.op"),
    (["signup", {"event": "upgrade", "filter": {"key": "to_plan", "op": "in",
                                                "value": "team"}}], "steps[1].filter.value"),
    ([{"event": "signup", "filter": "plan=pro"}, "upgrade"], "steps[0].filter"),
])
def test_bad_step_filters_name_the_field(demo, api, steps, field):
    r = api(demo["analyst"]).post("/api/v1/analyses/", {
        "dataset": demo["dataset"].pk, "kind": "funnel", "params": {"steps": steps}},
        format="json")
    assert r.status_code == 400 and field in r.json(), r.content
    assert BehaviourAnalysis.objects.count() == 0


def test_pages_filter_rows_summary_and_paths_coverage(demo, client,
                                                      django_capture_on_commit_callbacks):
    client.force_login(demo["analyst"])
    form = {"dataset": demo["dataset"].pk, "kind": "funnel", "steps": "signup, upgrade",
            "window_days": "60", "mode": "ordered", "filter_step": ["2", "", ""],
            "filter_key": ["to_plan", "", ""], "filter_op": ["eq", "eq", "eq"],
            "filter_value": ["team", "", ""]}
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post("/w/acme/behaviour/", form)
    assert r.status_code == 302, r.content.decode()[:2000]
    funnel = BehaviourAnalysis.objects.get()
    assert funnel.params["steps"] == ["signup", TEAM_UPGRADE]
    page = client.get(r["Location"]).content.decode()
    assert ("All users · Steps: signup → upgrade [to_plan = team] · Window: 60 days · "
            "Mode: in order") in page
    assert "{&#x27;" not in page and "Conversion by entry week" in page
    assert "Time to convert" in page and "Whole funnel (1 → 2)" in page
    listing = client.get("/w/acme/behaviour/").content.decode()
    assert "Steps: signup → upgrade [to_plan = team]" in listing
    bad = client.post("/w/acme/behaviour/", {**form, "filter_key": ["colour", "", ""]})
    assert bad.status_code == 400 and "steps[1].filter.key" in bad.content.decode()
    bad = client.post("/w/acme/behaviour/", {**form, "filter_step": ["7", "", ""]})
    assert bad.status_code == 400 and "filter_step" in bad.content.decode()

    paths = {"dataset": demo["dataset"].pk, "kind": "paths", "end_event": "upgrade",
             "paths_outcome": "upgrade", "path_steps": "3"}
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post("/w/acme/behaviour/", paths)
    analysis = BehaviourAnalysis.objects.get(kind="paths")
    assert analysis.params["outcome_event"] == "upgrade"
    cov = analysis.result["sankey"]["coverage"]
    upgraders = demo["data"].events.query("event == 'upgrade'").user_id.nunique()
    assert cov["total_users"] == upgraders == analysis.result["users"]
    assert cov["drawn_users"] + cov["other_users"] == upgraders
    page = client.get(r["Location"]).content.decode()
    assert "is the end event" in page and "rates are 1 and lifts 1 by construction" in page
    assert f"of {upgraders} users" in page
    # Without choosing an outcome there is none: it is never the end event by default.
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/w/acme/behaviour/", {**paths, "paths_outcome": ""})
    latest = BehaviourAnalysis.objects.filter(kind="paths").order_by("-id").first()
    assert latest.params["outcome_event"] is None and not latest.result["outcome_is_end"]
