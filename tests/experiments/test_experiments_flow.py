"""Hypotheses, experiments and learnings through the database, the job, the API and the pages."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command

from events.demo import generate_demo
from events.models import Dataset
from experiments import stats
from experiments.models import Evidence, Experiment, Hypothesis, HypothesisStatus, Learning
from planner.models import Investment
from segments import segment_services

pytestmark = pytest.mark.django_db

USERS = 3000
ONBOARDED = {"name": "onboarded_7d", "kind": "conversion", "event": "onboarding_completed",
             "window_days": 7}


@pytest.fixture
def demo_ws(team, tmp_path):
    data = generate_demo(users=USERS, seed=7)
    data.events.to_csv(tmp_path / "e.csv", index=False)
    data.users.to_csv(tmp_path / "u.csv", index=False)
    call_command("import_events", workspace="acme", events=tmp_path / "e.csv",
                 users=tmp_path / "u.csv", dataset="demo")
    dataset = Dataset.objects.get(name="demo")
    web = segment_services.segment_create(
        dataset=dataset, name="Web", definition={"attribute": "device", "op": "eq",
                                                 "value": "web"})
    mobile = segment_services.segment_create(
        dataset=dataset, name="Mobile", definition={"attribute": "device", "op": "in",
                                                    "value": ["ios", "android"]})
    call_command("refresh_segments", workspace="acme")
    hyp = Hypothesis.objects.create(workspace=team["acme"], statement="Checklist lifts web",
                                    metric="onboarded_7d", expected_lift=0.1,
                                    evidence=Evidence.ASSUMPTION)
    hyp.segments.add(web)
    inv = Investment.objects.create(workspace=team["acme"], title="Checklist", cost=1000,
                                    assumed_reach=1000, assumed_value_per_user=10.0)
    inv.hypotheses.add(hyp)
    return {"data": data, "dataset": dataset, "web": web, "mobile": mobile, "hyp": hyp,
            "inv": inv, **team}


def design(ws, **kw):  # type: ignore[no-untyped-def]
    body = {"hypothesis": ws["hyp"].pk, "name": "Checklist A/B", "kind": "ab",
            "dataset": ws["dataset"].pk, "breakdown_segments": [ws["web"].pk, ws["mobile"].pk],
            "arms": [{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
            "primary_metric": ONBOARDED,
            "guardrail_metrics": [{"name": "sessions", "kind": "count",
                                   "event": "session_start", "window_days": 14}],
            "data_source": "events",
            "assignment": {"event": "experiment_assigned", "experiment_key": "experiment",
                           "experiment_id": "onboarding_checklist_v2", "arm_key": "arm"}}
    body.update(kw)
    return body


def test_bad_designs_are_rejected_with_the_field_and_nothing_is_stored(demo_ws, api):
    client = api(demo_ws["analyst"])
    cases = [
        ({"arms": [{"name": "control", "weight": 0.5}, {"name": "t", "weight": 0.6}]}, "arms"),
        ({"arms": [{"name": "control", "weight": 1.0}]}, "arms"),
        ({"primary_metric": {"kind": "clicks"}}, "primary_metric.kind"),
        ({"primary_metric": {"kind": "count", "window_days": 7}}, "primary_metric.event"),
        ({"assignment": {}}, "assignment.event"),
        ({"mde": 0}, "mde"),
        ({"kind": "did", "quasi": {"launch": "2026-06-01"}}, "quasi.treated_segment"),
        ({"kind": "did", "quasi": {"launch": "not a date"}}, "quasi.launch"),
    ]
    for change, field in cases:
        r = client.post("/api/v1/experiments/", design(demo_ws, **change), format="json")
        assert r.status_code == 400, (change, r.content)
        assert field in r.json(), (change, r.json())
    assert Experiment.objects.count() == 0
    # Viewers may not write; outsiders cannot see the hypothesis at all.
    assert api(demo_ws["viewer"]).post("/api/v1/experiments/", design(demo_ws),
                                       format="json").status_code == 403
    r = api(demo_ws["outsider"]).post("/api/v1/experiments/", design(demo_ws), format="json")
    assert r.status_code == 400 and "hypothesis" in r.json()


def test_ab_experiment_from_design_to_learning(demo_ws, api, django_capture_on_commit_callbacks):
    client = api(demo_ws["analyst"])
    r = client.post("/api/v1/experiments/", design(demo_ws), format="json")
    assert r.status_code == 201, r.content
    xid = r.json()["id"]
    hyp = demo_ws["hyp"]

    # The workflow refuses a jump, then start moves the hypothesis to testing, recorded.
    r = client.post(f"/api/v1/hypotheses/{hyp.pk}/transition/", {"status": "validated"},
                    format="json")
    assert r.status_code == 400 and "proposed" in r.json()["status"][0]
    assert client.post(f"/api/v1/experiments/{xid}/start/").status_code == 200
    history = client.get(f"/api/v1/hypotheses/{hyp.pk}/history/").json()["results"]
    assert [(h["from_status"], h["to_status"], h["changed_by"]) for h in reversed(history)] == [
        ("proposed", "prioritized", "analyst"), ("prioritized", "testing", "analyst")]

    # Power: the baseline is measured in the data; check it and the size independently.
    r = client.post(f"/api/v1/experiments/{xid}/power/", {}, format="json")
    assert r.status_code == 200, r.content
    power = r.json()
    events, users = demo_ws["data"].events, demo_ws["data"].users
    ts = pd.to_datetime(events["timestamp"], utc=True)
    signup = pd.to_datetime(users.set_index("user_id")["signup_time"], utc=True)
    as_of = ts.max() + pd.Timedelta(microseconds=1)
    full = signup[signup + pd.Timedelta(days=7) <= as_of]
    onb = events[events["event"] == "onboarding_completed"].assign(t=ts)
    onb = onb[onb["user_id"].isin(full.index)]
    rel = onb["t"] - onb["user_id"].map(full)
    hit = onb.loc[(rel >= pd.Timedelta(0)) & (rel < pd.Timedelta(days=7)), "user_id"].nunique()
    assert power["inputs"]["baseline_mean"] == pytest.approx(hit / len(full), abs=1e-12)
    expected = stats.sample_size(baseline_mean=hit / len(full), mde_relative=0.05, binary=True,
                                 allocation=[0.5, 0.5])
    assert power["n_per_arm"] == expected.n_per_arm

    # Analysis as a job; the per-segment counts are the generator's own.
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(f"/api/v1/experiments/{xid}/analyze/")
    assert r.status_code == 202
    job = client.get(f"/api/v1/jobs/{r.json()['job']}/").json()
    assert job["state"] == "succeeded", job
    result = client.get(f"/api/v1/experiments/{xid}/").json()["result"]
    truth = demo_ws["data"].truth["experiment"]["segments"]
    rows = {(r["scope"], r["metric"]): r for r in result["rows"]}
    for key, seg in (("web", demo_ws["web"]), ("mobile", demo_ws["mobile"])):
        row = rows[(f"segment:{seg.pk}", "onboarded_7d")]
        real = truth[key]["realized"]
        assert (row["n_control"], row["n_treatment"]) == (real["control"]["users"],
                                                          real["treatment"]["users"])
        assert row["absolute"] == pytest.approx(real["effect"], abs=1e-12)
    assert len(result["rows"]) == 6  # 2 metrics x 3 scopes
    assert result["srm_flagged"] is False

    # Concluding records the learning and moves the measured lift onto the investment.
    web_row = rows[(f"segment:{demo_ws['web'].pk}", "onboarded_7d")]
    r = client.post(f"/api/v1/experiments/{xid}/conclude/", {
        "outcome": "validated", "scope": f"segment:{demo_ws['web'].pk}",
        "now_believe": "works on web", "decision": "ship on web", "tags": ["onboarding"]},
        format="json")
    assert r.status_code == 201, r.content
    learning = Learning.objects.get()
    assert learning.estimates["headline"]["absolute"] == web_row["absolute"]
    assert list(learning.segments.all()) == [demo_ws["web"]]
    hyp.refresh_from_db()
    assert hyp.status == HypothesisStatus.VALIDATED and hyp.evidence == Evidence.EXPERIMENT
    assert (hyp.measured_lift, hyp.measured_lift_low, hyp.measured_lift_high) == (
        web_row["relative"], *web_row["relative_ci"])
    inv = demo_ws["inv"]
    inv.refresh_from_db()
    # 1000 reach x 0.2 adoption x 10 per user x measured lift x P(success | experiment) 0.7
    assert inv.expected_value == pytest.approx(1000 * 0.2 * 10.0 * web_row["relative"] * 0.7)
    assert inv.estimates.first().reason == "experiment 'Checklist A/B' concluded: validated"
    assert "experiment estimate" in inv.value_sources["lift"]["source"]
    # Concluded once only.
    again = client.post(f"/api/v1/experiments/{xid}/conclude/", {
        "outcome": "validated", "now_believe": "x", "decision": "y"}, format="json")
    assert again.status_code == 400 and "status" in again.json()

    # The learnings library: filters and search.
    lib = client.get("/api/v1/learnings/", {"outcome": "validated"}).json()
    assert [x["id"] for x in lib["results"]] == [learning.pk]
    assert client.get("/api/v1/learnings/", {"outcome": "invalidated"}).json()["count"] == 0
    assert client.get("/api/v1/learnings/", {"q": "ship on web"}).json()["count"] == 1
    assert client.get("/api/v1/learnings/",
                      {"segment": demo_ws["mobile"].pk}).json()["count"] == 0
    assert client.get("/api/v1/learnings/", {"since": "bad"}).status_code == 400
    assert api(demo_ws["outsider"]).get("/api/v1/learnings/").json()["count"] == 0


def test_summary_statistics_path(demo_ws, api, django_capture_on_commit_callbacks):
    client = api(demo_ws["analyst"])
    body = design(demo_ws, data_source="summary", dataset=None, breakdown_segments=[],
                  guardrail_metrics=[], name="From summaries")
    xid = client.post("/api/v1/experiments/", body, format="json").json()["id"]
    assert client.post(f"/api/v1/experiments/{xid}/analyze/").status_code == 400  # no data
    bad = {"rows": [{"arm": "control", "metric": "onboarded_7d", "n": 100, "sum": 40,
                     "sum_sq": 40},
                    {"arm": "treatment", "metric": "onboarded_7d", "n": 100, "sum": 50,
                     "sum_sq": 20}]}
    r = client.put(f"/api/v1/experiments/{xid}/summaries/", bad, format="json")
    assert r.status_code == 400 and "rows[1].sum_sq" in r.json()
    bad["rows"][1]["sum_sq"] = 50
    r = client.put(f"/api/v1/experiments/{xid}/summaries/", bad, format="json")
    assert r.status_code == 200 and len(r.json()) == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/api/v1/experiments/{xid}/analyze/").status_code == 202
    row = Experiment.objects.get(pk=xid).result["rows"][0]
    # 0.5 - 0.4 with the z interval: se = sqrt(.4*.6/100 + .5*.5/100)
    se = np.sqrt(0.4 * 0.6 / 100 + 0.5 * 0.5 / 100)
    assert row["absolute"] == pytest.approx(0.1, abs=1e-12)
    assert row["absolute_ci"][1] - row["absolute_ci"][0] == pytest.approx(2 * 1.959963984540054
                                                                           * se, rel=1e-9)


def test_assignment_table_upload(demo_ws, api, django_capture_on_commit_callbacks):
    client = api(demo_ws["analyst"])
    body = design(demo_ws, data_source="assignments", breakdown_segments=[],
                  guardrail_metrics=[], name="From a table")
    xid = client.post("/api/v1/experiments/", body, format="json").json()["id"]
    users = demo_ws["data"].users["user_id"].tolist()
    bad = "user_id,arm,assigned_at\n" + f"{users[0]},control,2026-05-01T00:00:00Z\n" + \
        f"{users[1]},treat,2026-05-01T00:00:00Z\n"
    r = client.post(f"/api/v1/experiments/{xid}/assignments/",
                    {"file": io.BytesIO(bad.encode())}, format="multipart")
    assert r.status_code == 400
    assert "line 3" in r.json()["file"][0] and "arm is not one of" in r.json()["file"][0]
    good = "user_id,arm,assigned_at\n" + "".join(
        f"{u},{'control' if i % 2 else 'treatment'},2026-05-01T00:00:00Z\n"
        for i, u in enumerate(users[:200])) + "nobody,control,2026-05-01T00:00:00Z\n"
    r = client.post(f"/api/v1/experiments/{xid}/assignments/",
                    {"file": io.BytesIO(good.encode())}, format="multipart")
    assert r.status_code == 200 and r.json()["assignments_rows"] == 201
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/api/v1/experiments/{xid}/analyze/")
    result = Experiment.objects.get(pk=xid).result
    assert result["counts"] == [100, 100] and result["left_out"]["unknown_users"] == 1


def test_pages_render_and_respect_roles(demo_ws, client):
    xs_design = design(demo_ws)
    from experiments import services as xs

    x = xs.experiment_save(Experiment(
        hypothesis=demo_ws["hyp"], name=xs_design["name"], dataset=demo_ws["dataset"],
        arms=xs_design["arms"], primary_metric=ONBOARDED, assignment=xs_design["assignment"]),
        breakdown=[demo_ws["web"]])
    xs.experiment_analyze(x)
    client.force_login(demo_ws["viewer"])
    for url, text in [("/w/acme/hypotheses/", "Checklist lifts web"),
                      (f"/w/acme/hypotheses/{demo_ws['hyp'].pk}/", "Status workflow"),
                      (f"/w/acme/experiments/{x.pk}/", "Sample ratio check"),
                      ("/w/acme/learnings/?since=nonsense", "Learnings library")]:
        r = client.get(url)
        assert r.status_code == 200 and text in r.content.decode(), url
    assert client.post(f"/w/acme/experiments/{x.pk}/", {"action": "analyze"}).status_code == 403
    client.force_login(demo_ws["outsider"])
    assert client.get(f"/w/acme/experiments/{x.pk}/").status_code == 404
    client.force_login(demo_ws["analyst"])
    r = client.post(f"/w/acme/experiments/{x.pk}/", {
        "action": "conclude", "outcome": "inconclusive", "scope": "all",
        "now_believe": "unclear", "decision": "rerun with more users", "tags": "a, b"})
    assert r.status_code == 302
    learning = Learning.objects.get()
    assert learning.tags == ["a", "b"] and learning.outcome == "inconclusive"
    demo_ws["hyp"].refresh_from_db()
    assert demo_ws["hyp"].status == HypothesisStatus.INCONCLUSIVE
    assert demo_ws["hyp"].measured_lift is None  # inconclusive moves no lift
    r = client.get("/w/acme/learnings/?outcome=inconclusive")
    assert "rerun with more users" in r.content.decode()
