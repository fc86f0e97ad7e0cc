"""The experiment pages people expect, through the database: the metric library (page and API,
errors naming the field), the separate A/B and quasi-experiment forms, the CSV template's round
trip, the verdict line and the power calculator's ways forward."""

from __future__ import annotations

import io

import pytest
from django.test import Client

from experiments import metric_services as ms
from experiments import readout, stats
from experiments import services as xs
from experiments.models import ArmSummary, Experiment, Hypothesis, Metric

pytestmark = pytest.mark.django_db


@pytest.fixture
def lib(team):  # type: ignore[no-untyped-def]
    ws = team["acme"]
    bought = ms.metric_save(Metric(workspace=ws, name="bought", kind="proportion",
                                   event="purchase", window_days=30, unit="users"))
    spend = ms.metric_save(Metric(workspace=ws, name="spend", kind="mean", value="revenue",
                                  window_days=30, unit="EUR"))
    hyp = Hypothesis.objects.create(workspace=ws, statement="A shorter checkout lifts purchases",
                                    metric="bought", expected_lift=0.1)
    return {**team, "bought": bought, "spend": spend, "hyp": hyp}


def client(user) -> Client:  # type: ignore[no-untyped-def]
    c = Client()
    c.force_login(user)
    return c


def summary_experiment(lib, name: str = "Checkout A/B") -> Experiment:  # type: ignore[no-untyped-def]
    x = Experiment(hypothesis=lib["hyp"], workspace=lib["acme"], name=name, kind="ab",
                   data_source="summary", mde=0.05,
                   arms=[{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}])
    ms.experiment_use_metrics(x, lib["bought"], [lib["spend"]])
    xs.experiment_save(x, user=lib["analyst"])
    ms.experiment_link_metrics(x, [lib["spend"]])
    return x


# ----- the metric library ----------------------------------------------------------------------
def test_metric_api_creates_lists_and_refuses_bad_input_by_field(lib, api) -> None:
    c = api(lib["analyst"])
    r = c.post("/api/v1/metrics/", {"workspace": "acme", "name": "sessions_14d", "kind": "mean",
                                    "value": "count", "event": "session_start",
                                    "window_days": 14, "direction": "higher",
                                    "unit": "sessions"}, format="json")
    assert r.status_code == 201, r.json()
    m = Metric.objects.get(name="sessions_14d")
    assert m.spec() == {"name": "sessions_14d", "kind": "count", "event": "session_start",
                        "window_days": 14.0}
    names = [row["name"] for row in c.get("/api/v1/metrics/").json()["results"]]
    assert names == ["bought", "sessions_14d", "spend"]
    bad = [({"kind": "proportion", "event": ""}, "event"),
           ({"kind": "ratio", "numerator_value": "count", "numerator_event": ""},
            "numerator_event"),
           ({"kind": "proportion", "event": "x", "window_days": 0}, "window_days"),
           ({"kind": "proportion", "event": "x", "name": "bought"}, "name"),
           ({"kind": "average", "event": "x"}, "kind")]
    for body, field in bad:
        r = c.post("/api/v1/metrics/", {"workspace": "acme", "name": "new", **body},
                   format="json")
        assert r.status_code == 400 and field in r.json(), (body, r.json())
    assert Metric.objects.filter(workspace=lib["acme"]).count() == 3
    # a viewer reads but cannot define
    assert api(lib["viewer"]).post("/api/v1/metrics/", {
        "workspace": "acme", "name": "v", "kind": "proportion", "event": "x"},
        format="json").status_code == 403


def test_metric_page_lists_creates_and_names_the_bad_field(lib) -> None:
    c = client(lib["analyst"])
    page = c.get("/w/acme/metrics/").content.decode()
    assert "bought" in page and "share of users with purchase" in page
    r = c.post("/w/acme/metrics/", {"name": "orders", "kind": "mean", "value": "count",
                                    "event": "", "window_days": "7", "direction": "higher",
                                    "numerator_value": "revenue", "denominator_value": "count"})
    assert r.status_code == 200
    assert "name the event this metric counts" in r.content.decode()
    assert not Metric.objects.filter(name="orders").exists()
    r = c.post("/w/acme/metrics/", {"name": "orders", "kind": "mean", "value": "count",
                                    "event": "order", "window_days": "7",
                                    "direction": "lower", "numerator_value": "revenue",
                                    "denominator_value": "count"})
    assert r.status_code == 302
    assert Metric.objects.get(name="orders").direction == "lower"
    assert client(lib["viewer"]).post("/w/acme/metrics/", {"name": "z"}).status_code == 403


# ----- the forms ---------------------------------------------------------------------------------
def test_ab_and_quasi_forms_are_separate_with_human_labels(lib) -> None:
    c = client(lib["analyst"])
    ab = c.get(f"/w/acme/hypotheses/{lib['hyp'].pk}/experiments/new/").content.decode()
    assert "Minimum detectable effect (relative, %)" in ab
    assert "Significance level (%)" in ab and "Power (%)" in ab
    assert 'name="launch"' not in ab and 'name="treated_segment"' not in ab
    assert ">Mde<" not in ab
    quasi = c.get(f"/w/acme/hypotheses/{lib['hyp'].pk}/experiments/new/quasi/").content.decode()
    assert "Launch date" in quasi and "Treated segment" in quasi
    assert 'name="arms"' not in quasi and 'name="mde"' not in quasi


def test_ab_form_stores_percentages_as_fractions_and_the_library_definitions(lib) -> None:
    c = client(lib["analyst"])
    body = {"name": "Page test", "arms": "control:0.5, treatment:0.5",
            "primary_metric": lib["bought"].pk, "guardrails": [lib["spend"].pk], "mde": "5",
            "alpha": "5", "power": "80", "data_source": "summary", "cuped_pre_days": "0",
            "correction": "holm"}
    url = f"/w/acme/hypotheses/{lib['hyp'].pk}/experiments/new/"
    r = c.post(url, {**body, "primary_metric": ""})
    assert r.status_code == 200 and "This field is required" in r.content.decode()
    r = c.post(url, {**body, "guardrails": [lib["bought"].pk]})
    assert "is the primary metric: it cannot be a guardrail too" in r.content.decode()
    r = c.post(url, {**body, "mde": "0"})
    assert "greater than or equal to 0.1" in r.content.decode()
    assert Experiment.objects.count() == 0
    r = c.post(url, body)
    assert r.status_code == 302
    x = Experiment.objects.get()
    assert (x.mde, x.alpha, x.power) == (0.05, 0.05, 0.8)
    assert x.primary_metric == {"name": "bought", "kind": "conversion", "event": "purchase",
                                "window_days": 30.0}
    assert x.guardrail_metrics == [{"name": "spend", "kind": "revenue", "event": None,
                                    "window_days": 30.0}]
    assert x.primary_metric_ref == lib["bought"]
    assert list(x.guardrail_metric_refs.all()) == [lib["spend"]]
    edit = c.get(f"/w/acme/experiments/{x.pk}/edit/").content.decode()
    assert 'name="mde" value="5.0"' in edit and 'name="launch"' not in edit


def test_quasi_form_needs_a_control_segment_for_diff_in_diff(lib) -> None:
    from events.models import Dataset
    from segments.models import Segment

    dataset = Dataset.objects.create(workspace=lib["acme"], name="events")
    seg = Segment.objects.create(workspace=lib["acme"], dataset=dataset, name="Web", kind="rule",
                                 definition={"attribute": "device", "op": "eq", "value": "web"})
    c = client(lib["analyst"])
    url = f"/w/acme/hypotheses/{lib['hyp'].pk}/experiments/new/quasi/"
    body = {"name": "Launch read", "design": "did", "primary_metric": lib["bought"].pk,
            "treated_segment": seg.pk, "launch": "2026-06-01", "period_days": "7",
            "pre_periods": "8", "post_periods": "8", "alpha": "5"}
    r = c.post(url, body)
    assert r.status_code == 200
    assert "difference-in-differences needs a control segment" in r.content.decode()
    r = c.post(url, {**body, "launch": "June"})
    assert "Enter a valid date" in r.content.decode()
    assert Experiment.objects.count() == 0


# ----- the CSV template ---------------------------------------------------------------------------
def test_summary_template_round_trip(lib) -> None:
    x = summary_experiment(lib)
    c = client(lib["viewer"])  # any member downloads it
    r = c.get(f"/w/acme/experiments/{x.pk}/summary-template.csv")
    assert r.status_code == 200 and r["Content-Type"] == "text/csv"
    text = r.content.decode()
    assert text == ("arm,metric,scope,n,sum,sum_sq\n"
                    "control,bought,all,,,\n"
                    "treatment,bought,all,,,\n"
                    "control,spend,all,,,\n"
                    "treatment,spend,all,,,\n")
    analyst = client(lib["analyst"])
    # sent back as downloaded: the first empty cell is named, nothing is stored
    r = analyst.post(f"/w/acme/experiments/{x.pk}/",
                     {"action": "summaries",
                      "file": _upload(text)}, follow=True)
    assert "line 2.n: is missing" in r.content.decode()
    assert not ArmSummary.objects.exists()
    numbers = {("control", "bought"): (10000, 500, 500),
               ("treatment", "bought"): (10000, 560, 560),
               ("control", "spend"): (10000, 20000.5, 49999),
               ("treatment", "spend"): (10000, 20100, 50400)}
    lines = text.splitlines()
    filled = [lines[0]]
    for line in lines[1:]:
        arm, metric, scope = line.split(",")[:3]
        n, s, sq = numbers[(arm, metric)]
        filled.append(f"{arm},{metric},{scope},{n},{s},{sq}")
    r = analyst.post(f"/w/acme/experiments/{x.pk}/",
                     {"action": "summaries", "file": _upload("\n".join(filled) + "\n")},
                     follow=True)
    assert "Stored 4 summary rows" in r.content.decode()
    stored = {(s.arm, s.metric): (s.n, s.sum, s.sum_sq) for s in ArmSummary.objects.all()}
    assert stored == {k: (v[0], float(v[1]), float(v[2])) for k, v in numbers.items()}


def _upload(text: str):  # type: ignore[no-untyped-def]
    f = io.BytesIO(text.encode())
    f.name = "summaries.csv"
    return f


# ----- the verdict line and the ways forward ---------------------------------------------------
def test_experiment_page_shows_the_verdict_line_with_relative_lift_in_percent(lib) -> None:
    x = summary_experiment(lib)
    xs.summaries_set(experiment=x, rows=[
        {"arm": "control", "metric": "bought", "n": 10000, "sum": 500, "sum_sq": 500},
        {"arm": "treatment", "metric": "bought", "n": 10000, "sum": 600, "sum_sq": 600},
        {"arm": "control", "metric": "spend", "n": 10000, "sum": 20000, "sum_sq": 49999},
        {"arm": "treatment", "metric": "spend", "n": 10000, "sum": 20100, "sum_sq": 50400}])
    xs.experiment_analyze(x)
    x.refresh_from_db()
    row = x.result["rows"][0]
    expected = (f"bought: treatment +20.0% [{row['relative_ci'][0] * 100:+.1f}%, "
                f"{row['relative_ci'][1] * 100:+.1f}%] vs control")
    page = client(lib["viewer"]).get(f"/w/acme/experiments/{x.pk}/").content.decode()
    assert "Verdict: Validated" in page
    assert expected in page
    assert "guardrails: 1 of 1 hold" in page
    assert "sample ratio ok (10,000 / 10,000, p = 1.0000)" in page
    assert f"+20.0% [{row['relative_ci'][0] * 100:+.1f}%" in page  # the results table too
    assert "0.2000 [" not in page  # no raw fractions for the relative lift
    assert "Per-arm summaries have no dates" in page


def test_power_calculator_shows_ways_forward_when_the_test_is_too_long(lib) -> None:
    x = summary_experiment(lib)
    design = xs.experiment_power(experiment=x, baseline_mean=0.05, daily_traffic=100.0)
    planned = stats.sample_size(baseline_mean=0.05, mde_relative=0.05, binary=True,
                                daily_traffic=100.0)
    assert design["days"] == pytest.approx(planned.days) and design["days"] > 56
    ways = design["ways_forward"]
    assert [o["weeks"] for o in ways["options"]] == [2, 4, 8]
    two = readout.detectable_effect(n_control=700, ratio=1.0, baseline_mean=0.05,
                                    baseline_sd=None, binary=True, alpha=0.05, power=0.8)
    assert ways["options"][0]["mde"] == pytest.approx(two, rel=1e-12)
    assert ways["share_needed"] is None
    page = client(lib["analyst"]).get(f"/w/acme/experiments/{x.pk}/").content.decode()
    assert "is longer than 8 weeks" in page
    assert "not reachable even at 100%" in page
    assert f"{two * 100:+.1f}%" in page
    # with enough traffic, the share of it that reaches the planned effect in 4 weeks
    design = xs.experiment_power(experiment=x, baseline_mean=0.05, daily_traffic=20000.0)
    assert design["days"] <= 56 and not design["ways_forward"]["impractical"]
    share = planned.total_n / (20000.0 * 28)
    assert design["ways_forward"]["share_needed"] == pytest.approx(share)
    page = client(lib["analyst"]).get(f"/w/acme/experiments/{x.pk}/").content.decode()
    assert "is longer than 8 weeks" not in page
    assert f"put <strong>{share * 100:.1f}%</strong> of the eligible traffic" in page


def test_api_experiment_picks_its_metrics_from_the_library(lib, api) -> None:
    c = api(lib["analyst"])
    body = {"hypothesis": lib["hyp"].pk, "name": "API test", "kind": "ab",
            "arms": [{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
            "data_source": "summary", "primary_metric_ref": lib["bought"].pk,
            "guardrail_metric_refs": [lib["spend"].pk]}
    r = c.post("/api/v1/experiments/", body, format="json")
    assert r.status_code == 201, r.json()
    x = Experiment.objects.get(name="API test")
    assert x.primary_metric == lib["bought"].spec()
    assert x.guardrail_metrics == [lib["spend"].spec()]
    assert r.json()["guardrail_metric_refs"] == [lib["spend"].pk]
    theirs = Metric.objects.create(workspace=lib["other"], name="theirs", kind="proportion",
                                   event="x")
    r = c.post("/api/v1/experiments/", {**body, "name": "API 2",
                                        "primary_metric_ref": theirs.pk}, format="json")
    assert r.status_code == 400 and "primary_metric_ref" in r.json()
    r = c.post("/api/v1/experiments/", {**body, "name": "API 3",
                                        "guardrail_metric_refs": [lib["bought"].pk]},
               format="json")
    assert r.status_code == 400 and "guardrail_metric_refs" in r.json()
    assert not Experiment.objects.filter(name__in=["API 2", "API 3"]).exists()


def test_metrics_given_as_definitions_join_the_library(lib, api) -> None:
    c = api(lib["analyst"])
    body = {"hypothesis": lib["hyp"].pk, "name": "JSON test", "kind": "ab",
            "arms": [{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
            "data_source": "summary",
            "primary_metric": {"name": "bought", "kind": "conversion", "event": "purchase",
                               "window_days": 30},
            "guardrail_metrics": [{"name": "sessions_14d", "kind": "count",
                                   "event": "session_start", "window_days": 14}]}
    assert c.post("/api/v1/experiments/", body, format="json").status_code == 201
    x = Experiment.objects.get(name="JSON test")
    assert x.primary_metric_ref == lib["bought"]  # the same definition: the library's
    sessions = Metric.objects.get(workspace=lib["acme"], name="sessions_14d")
    assert (sessions.kind, sessions.value, sessions.event, sessions.window_days) == (
        "mean", "count", "session_start", 14.0)
    assert list(x.guardrail_metric_refs.all()) == [sessions]
    # the same name with another definition keeps its own (not linked, library unchanged)
    other = {**body, "name": "JSON 2", "guardrail_metrics": [],
             "primary_metric": {**body["primary_metric"], "window_days": 7}}
    assert c.post("/api/v1/experiments/", other, format="json").status_code == 201
    assert Experiment.objects.get(name="JSON 2").primary_metric_ref is None
    assert Metric.objects.get(workspace=lib["acme"], name="bought").window_days == 30.0
