"""The demo-like A/B experiment page in headless chromium: the one-line verdict, the cumulative
effect chart (zero line, labelled axes), exposures by arm over time and planned against obtained
sample size; and the separate A/B and quasi-experiment forms with human labels.

SCREENSHOTS_DIR=docs/screenshots regenerates the README's experiment.png and
experiment-cumulative.png; else they go to the test's tmp folder."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from test_council_and_pm import seed_demo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def seed(team: dict[str, Any], tmp_path: Path) -> Any:
    from experiments import metric_services as ms
    from experiments import services as xs
    from experiments.models import Experiment, Hypothesis, Metric
    from jobs.services import job_run

    demo = seed_demo(team, tmp_path)
    ws = team["acme"]
    onboarded = ms.metric_save(Metric(
        workspace=ws, name="onboarded_7d", kind="proportion", event="onboarding_completed",
        window_days=7, unit="users", description="completed onboarding within 7 days"))
    sessions = ms.metric_save(Metric(
        workspace=ws, name="sessions_14d", kind="mean", value="count", event="session_start",
        window_days=14, unit="sessions"))
    hyp = Hypothesis.objects.create(workspace=ws, statement="An onboarding checklist lifts "
                                    "completion on web", metric="onboarded_7d",
                                    expected_lift=0.1, owner=team["analyst"])
    x = Experiment(hypothesis=hyp, workspace=ws, name="Onboarding checklist v2", kind="ab",
                   dataset=demo["dataset"], mde=0.1,
                   arms=[{"name": "control", "weight": 0.5},
                         {"name": "treatment", "weight": 0.5}],
                   data_source="events",
                   assignment={"event": "experiment_assigned", "experiment_key": "experiment",
                               "experiment_id": "onboarding_checklist_v2", "arm_key": "arm"})
    ms.experiment_use_metrics(x, onboarded, [sessions])
    xs.experiment_save(x, breakdown=[demo["web"], demo["mobile"]], user=team["analyst"])
    ms.experiment_link_metrics(x, [sessions])
    xs.experiment_power(experiment=x)
    xs.experiment_start(experiment=x, user=team["analyst"])
    job = xs.analyze_start(experiment=x, user=team["analyst"])
    job_run(job_id=job.pk)
    x.refresh_from_db()
    assert x.result.get("timeline", {}).get("dates"), x.result.keys()
    return x


def test_experiment_page_reads_verdict_over_time_and_progress(team, live_server, new_page,
                                                              login, tmp_path: Path):
    x = seed(team, tmp_path)
    page = new_page(1280, 900)
    page.set_default_timeout(60_000)  # a shared machine can be slow to serve plotly
    login(page, "analyst")
    page.goto(f"{live_server.url}/w/acme/experiments/{x.pk}/", wait_until="domcontentloaded")

    line = page.locator("#verdict-line")
    text = line.inner_text()
    assert text.startswith("Verdict: ")
    row = next(r for r in x.result["rows"] if r["primary"] and r["scope"] == "all")
    lift = (f"{row['relative'] * 100:+.1f}% [{row['relative_ci'][0] * 100:+.1f}%, "
            f"{row['relative_ci'][1] * 100:+.1f}%]")
    assert f"onboarded_7d: treatment {lift} vs control" in text
    assert "guardrails: " in text and "sample ratio " in text

    page.locator("#chart-cumulative .main-svg").first.wait_for()
    page.locator("#chart-exposures .main-svg").first.wait_for()
    layout = page.evaluate("""() => { const c = document.getElementById('chart-cumulative');
        const e = document.getElementById('chart-exposures');
        return { zero: c.layout.yaxis.zeroline, y: c.layout.yaxis.title.text,
                 x: c.layout.xaxis.title.text, ey: e.layout.yaxis.title.text,
                 traces: e.data.map((t) => [t.name, t.y[t.y.length - 1]]) }; }""")
    assert layout["zero"] is True
    assert layout["y"] == "relative lift (band: interval)"
    assert layout["x"].startswith("date")
    assert layout["ey"] == "users assigned (cumulative)"
    assert layout["traces"] == [["control", x.result["counts"][0]],
                                ["treatment", x.result["counts"][1]]]

    progress = page.locator("#planned-vs-obtained")
    bars = progress.locator("progress")
    assert bars.count() == 2
    first = progress.locator("tbody tr").first.inner_text()
    planned = x.design["arm_n"][0]
    assert f"{planned:,}" in first and f"{x.result['counts'][0]:,}" in first
    assert re.search(r"reached|\d{4}-\d{2}-\d{2} \(in \d+ days", first)
    # relative lift as a percentage in the results table too
    results = page.locator("section.card").filter(has=page.get_by_role("heading",
                                                                       name="Results"))
    assert f"{row['relative'] * 100:+.1f}%" in results.locator("tbody tr.primary").first.inner_text()

    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / "experiment.png"), full_page=True)
    page.locator("#over-time").screenshot(path=str(folder / "experiment-cumulative.png"))
    assert (folder / "experiment-cumulative.png").stat().st_size > 10_000
    assert page.errors == []

    # on a phone: the page fits the width (tables scroll inside their cards)
    phone = new_page(390, 844)
    login(phone, "analyst")
    phone.goto(f"{live_server.url}/w/acme/experiments/{x.pk}/", wait_until="domcontentloaded")
    phone.locator("#chart-cumulative .main-svg").first.wait_for()
    assert phone.locator("#verdict-line").is_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    assert phone.errors == []


def test_ab_and_quasi_forms_are_separate(team, live_server, new_page, login, tmp_path: Path):
    from experiments.models import Experiment, Hypothesis, Metric

    ws = team["acme"]
    Metric.objects.create(workspace=ws, name="bought", kind="proportion", event="purchase",
                          window_days=30)
    hyp = Hypothesis.objects.create(workspace=ws, statement="Shorter checkout", metric="bought",
                                    expected_lift=0.1)
    page = new_page(390, 844)
    login(page, "analyst")
    page.goto(f"{live_server.url}/w/acme/hypotheses/{hyp.pk}/", wait_until="domcontentloaded")
    page.get_by_role("link", name="Design an experiment").click()
    page.wait_for_url(f"**/hypotheses/{hyp.pk}/experiments/new/")
    assert page.get_by_label("Minimum detectable effect (relative, %)").input_value() == "5"
    assert page.locator("#id_launch").count() == 0
    page.get_by_label("Name").fill("Checkout A/B")
    page.get_by_label("Primary metric").select_option(label="bought")
    page.get_by_label("Where the data comes from").select_option("summary")
    page.get_by_label("Minimum detectable effect (relative, %)").fill("0")
    page.get_by_role("button", name="Save").click()
    page.wait_for_load_state("domcontentloaded")
    assert "greater than or equal to 0.1" in page.locator("form.card").inner_text()
    page.get_by_label("Minimum detectable effect (relative, %)").fill("8")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/w/acme/experiments/\d+/$"))
    assert Experiment.objects.get(name="Checkout A/B").mde == 0.08
    template = page.locator("#summary-template")
    assert template.get_attribute("href").endswith("/summary-template.csv")

    page.goto(f"{live_server.url}/w/acme/hypotheses/{hyp.pk}/", wait_until="domcontentloaded")
    page.get_by_role("link", name="or a quasi-experiment").click()
    page.wait_for_url(f"**/hypotheses/{hyp.pk}/experiments/new/quasi/")
    assert page.get_by_label("Launch date").count() == 1
    assert page.locator("#id_arms").count() == 0 and page.locator("#id_mde").count() == 0
    assert page.errors == []
