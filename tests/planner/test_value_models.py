"""Value models through the database and the API: bad intervals refused by field with nothing
saved, an entered mapping scaling the lift, a mapping measured from a segment's planted users,
the provenance table, and forecast shrinking."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.core.management import call_command

from events.models import Dataset
from experiments.models import Evidence, Hypothesis, HypothesisStatus, Learning
from planner import services
from planner.mapping import measure_mapping
from planner.models import Investment, ValueEstimate, ValueModel
from segments import segment_services

pytestmark = pytest.mark.django_db

N = 240


def planted_rows() -> tuple[str, str, np.ndarray, np.ndarray]:
    """240 users signed up 2025-01-01; onboarding within 7 days (x) adds 30 to 90-day revenue:
    value = 40 + 30 x + noise, paid on day 20. Revenue on day 100 is outside the 90 days."""
    rng = np.random.default_rng(4)
    x = (rng.random(N) < 0.45).astype(float)
    y = np.round(40 + 30 * x + rng.normal(0, 12, N), 2)
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

    def at(days: float) -> str:
        return (start + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

    lines = ["user_id,event,timestamp,revenue"]
    for i in range(N):
        lines.append(f"u{i:03d},signup,{at(0)},")
        if x[i]:
            lines.append(f"u{i:03d},onboarding_completed,{at(2 + i % 4)},")
        elif i % 5 == 0:  # onboarded, but after the 7-day window: counts as 0
            lines.append(f"u{i:03d},onboarding_completed,{at(9)},")
        lines.append(f"u{i:03d},purchase,{at(20)},{y[i]}")
        lines.append(f"u{i:03d},purchase,{at(100)},500")
    lines.append(f"u000,session_start,{at(200)},")
    users = "user_id,signup_time,plan\n" + "".join(f"u{i:03d},{at(0)},pro\n" for i in range(N))
    # users sort by id: u000..u239 are user codes 0..239, the order of x and y
    return "\n".join(lines) + "\n", users, x, y


@pytest.fixture
def segment(team, tmp_path):
    events, users, x, y = planted_rows()
    (tmp_path / "e.csv").write_text(events)
    (tmp_path / "u.csv").write_text(users)
    call_command("import_events", workspace="acme", events=tmp_path / "e.csv",
                 users=tmp_path / "u.csv", dataset="app")
    seg = segment_services.segment_create(
        dataset=Dataset.objects.get(name="app"), name="pro",
        definition={"attribute": "plan", "op": "eq", "value": "pro"})
    call_command("refresh_segments", workspace="acme")
    seg.planted = (x, y)
    return seg


def post(client, url, body):  # type: ignore[no-untyped-def]
    return client.post(url, body, format="json")


ENTERED = {"workspace": "acme", "name": "reports -> LTV", "metric": "reports_7d",
           "kind": "entered", "low": 0.2, "mid": 0.4, "high": 0.7,
           "source": "2025 cohort study, slide 4"}


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"low": 0.5}, "low", "must not exceed mid (0.4)"),
    ({"high": 0.3}, "high", "must not be below mid (0.4)"),
    ({"low": 0.4, "high": 0.4}, "high", "the interval has no width: give the range you believe "
                                        "the mapping lies in (only 'value itself' maps exactly)"),
    ({"mid": None}, "mid", "an entered mapping needs low, mid and high"),
    ({"source": " "}, "source", "say where the entered mapping comes from"),
    ({"high": 101}, "high", "Ensure this value is less than or equal to 100.0."),
    ({"kind": "measured", "segment": None}, "segment",
     "a measured mapping needs the segment whose users it reads"),
])
def test_a_bad_mapping_is_refused_naming_the_field_and_nothing_is_saved(team, api, change,
                                                                        field, message):
    body = {**ENTERED, **change}
    if change.get("mid", 0) is None:
        body.pop("mid")
    r = post(api(team["analyst"]), "/api/v1/value-models/", body)
    assert r.status_code == 400
    assert r.json()[field] == [message]
    assert not ValueModel.objects.exists()


def test_an_entered_mapping_scales_the_lift_and_widens_the_range(team, api):
    client = api(team["analyst"])
    hyp = Hypothesis.objects.create(workspace=team["acme"], statement="reports", metric="reports_7d",
                                    expected_lift=0.2, expected_lift_low=0.1,
                                    expected_lift_high=0.3, evidence=Evidence.OBSERVATIONAL)
    inv = post(client, "/api/v1/investments/", {
        "workspace": "acme", "title": "share flow", "cost": 100, "assumed_reach": 1000,
        "assumed_value_per_user": 50, "adoption": 0.5, "hypotheses": [hyp.pk]}).json()
    # No value model on a proxy metric: one to one, and flagged.
    assert inv["expected_value"] == pytest.approx(1000 * 0.5 * 50 * 0.2 * 0.35)
    assert inv["value_sources"]["mapping"]["unmapped"] is True
    model = post(client, "/api/v1/value-models/", ENTERED).json()
    r = client.patch(f"/api/v1/investments/{inv['id']}/", {"value_model": model["id"]},
                     format="json")
    assert r.status_code == 200
    got = r.json()
    # 1000 x 0.5 x 50 x (0.2 lift x 0.4 mapping) x 0.35
    assert got["expected_value"] == pytest.approx(1000 * 0.5 * 50 * 0.2 * 0.4 * 0.35)
    mapping = got["value_sources"]["mapping"]
    assert (mapping["estimate"], mapping["low"], mapping["high"], mapping["level"]) == (
        0.4, 0.2, 0.7, 0.8)
    assert mapping["kind"] == "entered" and mapping["source_text"] == "2025 cohort study, slide 4"
    assert got["value_sources"]["value_lift"]["estimate"] == pytest.approx(0.08)
    # Editing the model re-values the investment in the same write.
    r = client.patch(f"/api/v1/value-models/{model['id']}/", {"mid": 0.6}, format="json")
    assert r.status_code == 200
    assert Investment.objects.get(pk=inv["id"]).expected_value == pytest.approx(
        1000 * 0.5 * 50 * 0.2 * 0.6 * 0.35)
    assert ValueEstimate.objects.filter(
        investment_id=inv["id"], reason="value model saved: 'reports -> LTV'").exists()
    # A value model of another workspace cannot be used.
    other = ValueModel.objects.create(workspace=team["other"], name="x", kind="identity",
                                      low=1, mid=1, high=1)
    r = client.patch(f"/api/v1/investments/{inv['id']}/", {"value_model": other.pk},
                     format="json")
    assert r.status_code == 400 and "value_model" in r.json()
    assert api(team["outsider"]).get(f"/api/v1/value-models/{model['id']}/").status_code == 404
    assert api(team["viewer"]).patch(f"/api/v1/value-models/{model['id']}/", {"mid": 0.5},
                                     format="json").status_code == 403
    # Deleting it re-values the investment without it (one to one again).
    assert client.delete(f"/api/v1/value-models/{model['id']}/").status_code == 204
    assert Investment.objects.get(pk=inv["id"]).expected_value == pytest.approx(
        1000 * 0.5 * 50 * 0.2 * 0.35)


def test_a_measured_mapping_reads_the_segments_users_and_recovers_the_planted_slope(
        team, api, segment):
    client = api(team["analyst"])
    body = {"workspace": "acme", "name": "onboarding -> LTV 90", "metric": "onboarded_7d",
            "kind": "measured", "segment": segment.pk, "value_days": 90,
            "metric_spec": {"kind": "conversion", "event": "onboarding_completed",
                            "window_days": 7}}
    r = post(client, "/api/v1/value-models/", body)
    assert r.status_code == 201, r.json()
    model = r.json()
    # The same fit on the planted arrays (onboarded by day 7, revenue of days 0-89):
    x, y = segment.planted
    expected = measure_mapping(x, y)
    assert model["fit"]["n_users"] == N
    assert model["mid"] == pytest.approx(expected.elasticity, rel=1e-9)
    assert (model["low"], model["high"]) == pytest.approx((expected.low, expected.high),
                                                          rel=1e-9)
    cal = model["fit"]["calibration"]
    assert cal["low"] <= 30 <= cal["high"]  # the planted slope
    assert model["fit"]["observational"] is True and model["fit"]["holdout_agrees"] is True
    # An investment using it shows the basis in its provenance and on its page.
    hyp = Hypothesis.objects.create(workspace=team["acme"], statement="checklist",
                                    metric="onboarded_7d", expected_lift=0.1,
                                    expected_lift_low=0.05, expected_lift_high=0.15)
    inv = Investment.objects.create(workspace=team["acme"], title="checklist", cost=10,
                                    adoption=1.0, value_model_id=model["id"])
    inv.target_segments.add(segment)
    inv.hypotheses.add(hyp)
    services.investment_revalue(investment=inv)
    basis = inv.value_sources["mapping"]
    assert basis["kind"] == "measured" and basis["n"] == N and basis["observational"]
    assert basis["n_calibration"] + basis["n_holdout"] == N
    client.force_login(team["analyst"])
    page = client.get(f"/w/acme/investments/{inv.pk}/").content.decode()
    assert "measured, observational" in page and "Out-of-sample check" in page
    assert f"{N:,} users of &#x27;pro&#x27;" in page
    # A metric the data never saw cannot be measured: 400 on the field, nothing saved.
    r = post(client, "/api/v1/value-models/", {**body, "name": "bad", "metric_spec": {
        "kind": "conversion", "event": "never_seen", "window_days": 7}})
    assert r.status_code == 400
    assert r.json() == {"metric": ["the metric takes one value for every user: no relation to "
                                   "value can be measured"]}
    assert not ValueModel.objects.filter(name="bad").exists()
    r = post(client, "/api/v1/value-models/", {**body, "name": "bad", "metric_spec": {
        "kind": "conversion", "window_days": 7}})
    assert r.json() == {"metric_spec.event": ["a conversion metric needs an event name"]}


def concluded(ws, owner, predicted, low, high, realized, status):  # type: ignore[no-untyped-def]
    h = Hypothesis.objects.create(workspace=ws, statement=f"h{predicted}", owner=owner,
                                  expected_lift=predicted, expected_lift_low=low,
                                  expected_lift_high=high, measured_lift=realized,
                                  measured_lift_low=realized - 0.02,
                                  measured_lift_high=realized + 0.02, status=status,
                                  evidence=Evidence.EXPERIMENT)
    Learning.objects.create(workspace=ws, hypothesis=h, outcome=status, believed="b",
                            happened="h", now_believe="n", decision="d",
                            estimates={"forecast": {"expected_lift": predicted,
                                                    "expected_lift_low": low,
                                                    "expected_lift_high": high,
                                                    "evidence": "assumption"}})
    return h


def test_calibration_page_api_and_forecast_shrinking(team, api):
    ws = team["acme"]
    # Six concluded forecasts, realized exactly half of predicted: ratio 0.5.
    for k, p in enumerate([0.1, 0.2, 0.1, 0.3, 0.2, 0.1]):
        concluded(ws, team["analyst"] if k % 2 else team["council"], p, p * 0.4, p * 1.5,
                  p / 2, HypothesisStatus.VALIDATED if k < 4 else HypothesisStatus.INVALIDATED)
    concluded(ws, team["analyst"], 0.2, None, None, 0.1, HypothesisStatus.VALIDATED)
    client = api(team["viewer"])
    data = client.get("/api/v1/hypotheses/calibration/?workspace=acme").json()["results"][0]
    assert data["workspace"] == "acme" and data["shrink_forecasts"] is False
    overall = data["overall"]
    assert overall["ratio"] == pytest.approx(0.5)
    # inside [0.4 p, 1.5 p] for every one (0.5 p): 6 of 6
    assert (overall["forecasts"], overall["inside"], overall["coverage"]) == (6, 6, 1.0)
    assert data["excluded"] == 1
    assert {g["name"]: g["forecasts"] for g in data["by_author"]} == {"analyst": 3, "council": 3}
    assert [g["name"] for g in data["by_evidence"]] == ["assumption"]
    assert client.get("/api/v1/hypotheses/calibration/").json()["results"][0] == data
    outsider = api(team["outsider"])
    assert outsider.get("/api/v1/hypotheses/calibration/?workspace=acme").status_code == 404
    assert [r["workspace"] for r in outsider.get(
        "/api/v1/hypotheses/calibration/").json()["results"]] == ["other"]
    one = Hypothesis.objects.filter(workspace=ws, expected_lift=0.3).first()
    check = client.get(f"/api/v1/hypotheses/{one.pk}/").json()["forecast_check"]
    assert check["inside"] is True and check["ratio"] == pytest.approx(0.5)
    # The page: figures, exclusions, the chart's data.
    client.force_login(team["viewer"])
    page = client.get("/w/acme/calibration/").content.decode()
    assert "100.0%" in page and "0.50" in page and "1 concluded hypothesis excluded" in page
    assert 'id="calibration-data"' in page
    assert client.post("/w/acme/calibration/", {"shrink_forecasts": "on"}).status_code == 403
    page = client.get(f"/w/acme/hypotheses/{one.pk}/").content.decode()
    assert "Forecast against result" in page and "fell inside the stated interval" in page
    assert "12.0% to 45.0% (stated, read as 80%)" in page and "Realized / predicted 0.50" in page
    # An open forecast: valued as written, then shrunk by 0.5 once an admin turns it on.
    fresh = Hypothesis.objects.create(workspace=ws, statement="new", expected_lift=0.2,
                                      expected_lift_low=0.1, expected_lift_high=0.3)
    inv = Investment.objects.create(workspace=ws, title="new", cost=10, assumed_reach=100,
                                    assumed_value_per_user=10, adoption=1.0)
    inv.hypotheses.add(fresh)
    services.investment_revalue(investment=inv)
    assert inv.expected_value == pytest.approx(100 * 10 * 0.2 * 0.2)
    client.force_login(team["admin"])
    assert client.post("/w/acme/calibration/", {"shrink_forecasts": "on"}).status_code == 302
    inv.refresh_from_db()
    assert inv.expected_value == pytest.approx(100 * 10 * 0.2 * 0.5 * 0.2)
    assert inv.value_sources["forecast_shrink"] == {"on": True, "factor": 0.5, "applied": True}
    assert "shrunk x0.50" in inv.value_sources["lift"]["source"]
    assert inv.value_sources["lift"]["low"] == pytest.approx(0.05)
    page = client.get(f"/w/acme/investments/{inv.pk}/").content.decode()
    assert "multiplied by 0.50" in page


def test_the_value_models_page_lists_them_and_its_form_refuses_bad_intervals(team, client):
    client.force_login(team["analyst"])
    form = {"name": "reports -> LTV", "metric": "reports_7d", "kind": "entered", "low": "0.5",
            "mid": "0.4", "high": "0.7", "source": "cohort study", "value_days": "90"}
    r = client.post("/w/acme/value-models/", form)
    assert r.status_code == 200
    assert "must not exceed mid (0.4)" in r.content.decode()
    assert not ValueModel.objects.exists()
    r = client.post("/w/acme/value-models/", {**form, "low": "0.2"})
    assert r.status_code == 302
    model = ValueModel.objects.get()
    assert (model.workspace, model.low, model.mid, model.high) == (team["acme"], 0.2, 0.4, 0.7)
    page = client.get("/w/acme/value-models/").content.decode()
    assert "reports -&gt; LTV" in page and "0.200 to 0.700 (80%)" in page
    assert "cohort study" in page
    # A measured model whose segment has no users with a full window: a form error, no row.
    r = client.post("/w/acme/value-models/", {**form, "name": "m", "kind": "measured",
                                               "metric_spec": "{bad"})
    assert "not valid JSON" in r.content.decode()
    client.force_login(team["viewer"])
    assert client.post("/w/acme/value-models/", form).status_code == 403
    assert "New value model" not in client.get("/w/acme/value-models/").content.decode()
    assert ValueModel.objects.count() == 1
