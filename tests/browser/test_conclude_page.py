"""The conclude section in headless chromium: nothing is chosen for the user, the proposal and
its checks are shown, an override without a reason comes back with the error on its field, and
with a reason it is recorded and shown on the learning. Saves a screenshot of the page
(``SCREENSHOT_DIR``, else the test's tmp folder) to look at."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def seed(team: dict[str, Any]) -> int:
    from experiments import services as xs
    from experiments.models import Experiment, Hypothesis

    hyp = Hypothesis.objects.create(
        workspace=team["acme"], statement="A shorter checkout lifts purchases",
        metric="bought", expected_lift=0.1, owner=team["analyst"])
    x = xs.experiment_save(Experiment(
        hypothesis=hyp, workspace=team["acme"], name="Checkout A/B", kind="ab",
        data_source="summary", mde=0.05,
        arms=[{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
        primary_metric={"name": "bought", "kind": "conversion", "event": "purchase",
                        "window_days": 30},
        guardrail_metrics=[{"name": "spend", "kind": "revenue", "window_days": 30}]),
        user=team["analyst"])
    xs.summaries_set(experiment=x, rows=[
        {"arm": "control", "metric": "bought", "n": 10000, "sum": 500, "sum_sq": 500},
        {"arm": "treatment", "metric": "bought", "n": 10000, "sum": 505, "sum_sq": 505},
        {"arm": "control", "metric": "spend", "n": 10000, "sum": 20000, "sum_sq": 49999},
        {"arm": "treatment", "metric": "spend", "n": 10000, "sum": 20100, "sum_sq": 50400}])
    xs.experiment_analyze(x)
    return x.pk


def test_conclude_page_proposes_and_asks_for_a_reason(team, live_server, new_page, login,
                                                      tmp_path: Path):
    from experiments.models import Learning

    pk = seed(team)
    page = new_page(1280, 900)
    page.set_default_timeout(60_000)  # a shared CI machine can be slow to serve plotly
    login(page, "analyst")
    page.goto(f"{live_server.url}/w/acme/experiments/{pk}/", wait_until="domcontentloaded")
    section = page.locator("#conclude")
    assert page.locator("input[name=outcome]").count() == 3
    assert page.locator("input[name=outcome]:checked").count() == 0
    assert "The decision rule proposes: Inconclusive" in section.inner_text()
    assert section.locator("table.checks tbody tr").count() == 4
    folder = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    section.scroll_into_view_if_needed()
    page.screenshot(path=str(folder / "conclude.png"), full_page=True)

    page.locator("input[name=outcome][value=validated]").check()
    page.get_by_label("What we believe now").fill("It works for some users")
    page.get_by_label("Decision").fill("Ship it")
    page.get_by_role("button", name="Conclude and record the learning").click()
    page.wait_for_load_state("domcontentloaded")
    assert "say why you conclude validated instead" in page.locator("#conclude").inner_text()
    assert not Learning.objects.exists()

    page.get_by_label("Reason for overriding the proposal").fill("Support tickets fell")
    page.get_by_role("button", name="Conclude and record the learning").click()
    page.wait_for_load_state("domcontentloaded")
    learning = page.locator("article.learning")
    assert "Support tickets fell" in learning.inner_text()
    assert "proposed inconclusive" in learning.inner_text()
    page.screenshot(path=str(folder / "conclude-learning.png"), full_page=True)
    assert Learning.objects.get().override_reason == "Support tickets fell"
    assert page.errors == []
