"""Issue 16, item 12 (the power endpoint) and the number domains of hypotheses, experiments and
per-arm summaries: refused with a 400 naming the field, never stored."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from experiments import stats
from experiments.models import ArmSummary, Experiment, Hypothesis

pytestmark = pytest.mark.django_db

BOUGHT = {"name": "bought", "kind": "conversion", "event": "purchase", "window_days": 30}
SPEND = {"name": "spend", "kind": "revenue", "window_days": 30}


@pytest.fixture
def x(team, api):  # type: ignore[no-untyped-def]
    """A hypothesis and an A/B test on per-arm summaries (no dataset needed)."""
    hyp = Hypothesis.objects.create(workspace=team["acme"], statement="h", expected_lift=0.1)
    r = api(team["analyst"]).post("/api/v1/experiments/", {
        "hypothesis": hyp.pk, "name": "A/B", "kind": "ab", "data_source": "summary",
        "arms": [{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
        "primary_metric": BOUGHT, "guardrail_metrics": [SPEND]}, format="json")
    assert r.status_code == 201, r.content
    return {"hyp": hyp, "id": r.json()["id"], "client": api(team["analyst"])}


def power(x, body):  # type: ignore[no-untyped-def]
    return x["client"].post(f"/api/v1/experiments/{x['id']}/power/", body, format="json")


# ----- 12. the power endpoint validates and uses its body --------------------------------------
def test_the_power_endpoint_uses_every_field_of_its_body(x):
    r = power(x, {"baseline_mean": 0.1, "daily_traffic": 250, "cuped_r2": 0.5,
                  "cluster_size": 4, "icc": 0.1})
    assert r.status_code == 200, r.content
    expected = stats.sample_size(baseline_mean=0.1, mde_relative=0.05, binary=True,
                                 allocation=[0.5, 0.5], cuped_r2=0.5, cluster_size=4, icc=0.1,
                                 daily_traffic=250)
    body = r.json()
    assert (body["n_per_arm"], body["total_n"], body["days"]) == (
        expected.n_per_arm, expected.total_n, expected.days)
    assert body["inputs"] == {"baseline_mean": 0.1, "baseline_sd": None, "daily_traffic": 250.0,
                              "mde": 0.05, "alpha": 0.05, "power": 0.8, "cuped_r2": 0.5,
                              "cluster_size": 4.0, "icc": 0.1}
    assert Experiment.objects.get(pk=x["id"]).design == body


@pytest.mark.parametrize(("body", "errors"), [
    ({"baseline_mean": 0.1, "mde": 0.5}, {"mde": [
        "not an input of the power calculation: mde, alpha and power are the experiment's "
        "design (change them on the experiment)"]}),
    ({"baseline_mean": 0.1, "baseline": 0.2}, {"baseline": [
        "unknown field: the power calculation takes baseline_mean, baseline_sd, daily_traffic, "
        "cuped_r2, cluster_size and icc"]}),
    ({"baseline_mean": 0.1, "baseline_sd": 0.3}, {"baseline_sd": [
        "a conversion metric's spread follows from its rate: leave baseline_sd out"]}),
    ({"baseline_mean": 0.1, "daily_traffic": 0}, {"daily_traffic": [
        "Ensure this value is greater than or equal to 0.01."]}),
    ({"baseline_mean": 0.1, "daily_traffic": 1e308}, {"daily_traffic": [
        "Ensure this value is less than or equal to 1000000000.0."]}),
    ({"baseline_mean": 1e308}, {"baseline_mean": [
        "Ensure this value is less than or equal to 1000000000000000.0."]}),
    ({"baseline_mean": 0.1, "cluster_size": True}, {"cluster_size": [
        "A valid number is required, not true or false."]}),
    ({"baseline_mean": 0.1, "cluster_size": 1e7}, {"cluster_size": [
        "Ensure this value is less than or equal to 1000000.0."]}),
    ([0.1], {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
])
def test_the_power_endpoint_refuses_what_it_would_ignore(x, body, errors):
    r = power(x, body)
    assert r.status_code == 400
    assert r.json() == errors
    assert Experiment.objects.get(pk=x["id"]).design == {}


def test_the_power_form_refuses_the_same(team, client, x):
    client.force_login(team["analyst"])
    page = client.post(f"/w/acme/experiments/{x['id']}/", {
        "action": "power", "baseline_mean": "0.1", "baseline_sd": "0.3", "cuped_r2": "0",
        "cluster_size": "1", "icc": "0"}, follow=True)
    assert page.status_code == 200
    assert "a conversion metric&#x27;s spread follows from its rate" in page.content.decode()
    assert Experiment.objects.get(pk=x["id"]).design == {}


# ----- designs, hypotheses and summaries -------------------------------------------------------
@pytest.mark.parametrize(("change", "errors"), [
    ({"mde": 1e308}, {"mde": ["Ensure this value is less than or equal to 10.0."]}),
    ({"mde": 0}, {"mde": ["Ensure this value is greater than or equal to 0.001."]}),
    ({"alpha": 0.6}, {"alpha": ["Ensure this value is less than or equal to 0.2."]}),
    ({"power": 1}, {"power": ["Ensure this value is less than or equal to 0.99."]}),
    ({"power": True}, {"power": ["A valid number is required, not true or false."]}),
    ({"cuped_pre_days": 1e308}, {"cuped_pre_days": [
        "Ensure this value is less than or equal to 365.0."]}),
    ({"primary_metric": {**BOUGHT, "window_days": 1e308}}, {"primary_metric.window_days": [
        "must be a positive number of days, at most 365"]}),
    ({"primary_metric": {**BOUGHT, "window_days": True}}, {"primary_metric.window_days": [
        "must be a positive number of days, at most 365"]}),
    ({"arms": [{"name": "control", "weight": True}, {"name": "t", "weight": 0.0}]},
     {"arms[0].weight": ["must be a number greater than 0"]}),
    ({"arms": [{"name": f"a{k}", "weight": 1 / 21} for k in range(21)]},
     {"arms": ["at most 20 arms"]}),
])
def test_design_numbers_have_ranges(x, change, errors):
    r = x["client"].patch(f"/api/v1/experiments/{x['id']}/", change, format="json")
    assert r.status_code == 400
    assert r.json() == errors
    stored = Experiment.objects.get(pk=x["id"])
    assert (stored.mde, stored.alpha, stored.power, stored.cuped_pre_days) == (0.05, 0.05, 0.8, 0)


@pytest.mark.parametrize(("quasi", "errors"), [
    ({"period_days": 1e308}, {"quasi.period_days": ["must be a number from 1 to 365"]}),
    ({"pre_periods": 10**9}, {"quasi.pre_periods": ["must be a whole number from 2 to 520"]}),
    ({"post_periods": 0.5}, {"quasi.post_periods": ["must be a whole number from 1 to 520"]}),
    ({"post_periods": True}, {"quasi.post_periods": ["must be a whole number from 1 to 520"]}),
])
def test_quasi_periods_have_ranges(team, x, segment_pair, quasi, errors):
    treated, control = segment_pair
    body = {"kind": "did", "data_source": "events", "dataset": treated.dataset_id,
            "quasi": {"treated_segment": treated.pk, "control_segment": control.pk,
                      "launch": "2026-06-01", **quasi}}
    r = x["client"].patch(f"/api/v1/experiments/{x['id']}/", body, format="json")
    assert r.status_code == 400
    assert r.json() == errors


@pytest.fixture
def segment_pair(team):  # type: ignore[no-untyped-def]
    from events import services as event_services
    from segments.models import Segment

    dataset = event_services.dataset_create(workspace=team["acme"], name="d", description="")
    return tuple(Segment.objects.create(workspace=team["acme"], dataset=dataset, name=name,
                                        definition={"attribute": "plan", "op": "eq",
                                                    "value": name})
                 for name in ("pro", "free"))


@pytest.mark.parametrize(("body", "errors"), [
    ({"expected_lift": 1e308}, {"expected_lift": [
        "Ensure this value is less than or equal to 10.0."]}),
    ({"expected_lift": -1.5}, {"expected_lift": [
        "Ensure this value is greater than or equal to -1.0."]}),
    ({"expected_lift": 0.1, "expected_lift_low": 0.2}, {"expected_lift_low": [
        "must not exceed the expected lift"]}),
    ({"expected_lift": 0.1, "expected_lift_high": 0.05}, {"expected_lift_high": [
        "must not be below the expected lift"]}),
    ({"expected_lift": True}, {"expected_lift": [
        "A valid number is required, not true or false."]}),
])
def test_hypothesis_lifts_have_ranges(team, api, body, errors):
    r = api(team["analyst"]).post("/api/v1/hypotheses/", {"workspace": "acme",
                                                          "statement": "s", **body},
                                  format="json")
    assert r.status_code == 400
    assert r.json() == errors
    assert not Hypothesis.objects.exists()
    with pytest.raises(IntegrityError), transaction.atomic():
        Hypothesis.objects.create(workspace=team["acme"], statement="raw", expected_lift=1e308)


@pytest.mark.parametrize(("change", "errors"), [
    ({"n": 3_000_000_000}, {"rows[0].n": ["must be a whole number from 0 to 2000000000"]}),
    ({"n": True}, {"rows[0].n": ["must be a whole number from 0 to 2000000000"]}),
    ({"sum": 1e300, "sum_sq": 1e300}, {"rows[0].sum": [
        "must be a number from -1e+15 to 1e+15"]}),
    ({"sum_sq": 1e31}, {"rows[0].sum_sq": ["must be a number from 0 to 1e+30"]}),
])
def test_summary_numbers_have_ranges(x, change, errors):
    rows = [{"arm": "control", "metric": "bought", "n": 1000, "sum": 100, "sum_sq": 100, **change},
            {"arm": "treatment", "metric": "bought", "n": 1000, "sum": 130, "sum_sq": 130}]
    r = x["client"].put(f"/api/v1/experiments/{x['id']}/summaries/", {"rows": rows},
                        format="json")
    assert r.status_code == 400
    assert r.json() == errors
    assert not ArmSummary.objects.exists()


def test_a_measured_lift_outside_its_domain_is_not_moved_onto_the_hypothesis(
        x, django_capture_on_commit_callbacks):
    client = x["client"]
    rows = [{"arm": "control", "metric": "bought", "n": 1000, "sum": 1, "sum_sq": 1},
            {"arm": "treatment", "metric": "bought", "n": 1000, "sum": 500, "sum_sq": 500}]
    assert client.put(f"/api/v1/experiments/{x['id']}/summaries/", {"rows": rows},
                      format="json").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/api/v1/experiments/{x['id']}/analyze/").status_code == 202
    conclude = {"outcome": "validated", "now_believe": "it works", "decision": "ship"}
    r = client.post(f"/api/v1/experiments/{x['id']}/conclude/", conclude, format="json")
    assert r.status_code == 400
    assert r.json() == {"scope": [
        "the measured lift +49,900% is outside -10,000%..+10,000%: it cannot become the "
        "hypothesis's lift (conclude as inconclusive, or on another scope)"]}
    x["hyp"].refresh_from_db()
    assert x["hyp"].measured_lift is None
    # the rule proposes validated (a clear win): inconclusive is an override with its reason
    r = client.post(f"/api/v1/experiments/{x['id']}/conclude/",
                    {**conclude, "outcome": "inconclusive",
                     "override_reason": "the lift is implausibly large"}, format="json")
    assert r.status_code == 201
    assert r.json()["proposed_outcome"] == "validated"
    assert r.json()["override_reason"] == "the lift is implausibly large"
