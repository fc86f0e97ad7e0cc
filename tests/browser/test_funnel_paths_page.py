"""An analyst runs a funnel with a step filter and a paths analysis on the behaviour page, and
reads the conversion by entry week, the time-to-convert histogram and a Sankey that says how
many users it draws. Screenshots go to $SCREENSHOTS_DIR (docs/screenshots for the README)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.core.management import call_command

from events.demo import generate_demo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def seed(tmp_path: Path) -> None:
    data = generate_demo(users=800, seed=5)
    data.events.to_csv(tmp_path / "e.csv", index=False)
    data.users.to_csv(tmp_path / "u.csv", index=False)
    call_command("import_events", workspace="acme", events=tmp_path / "e.csv",
                 users=tmp_path / "u.csv", dataset="demo")


def test_funnel_over_time_time_to_convert_and_paths_sankey(team, live_server, new_page, login,
                                                           tmp_path: Path):
    from behaviour.models import BehaviourAnalysis

    seed(tmp_path)
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page = new_page(1280, 900)
    page.set_default_timeout(60_000)  # a shared machine can be slow to serve plotly
    login(page, "analyst")

    page.goto(f"{live_server.url}/w/acme/behaviour/")
    page.select_option("#b-kind", "funnel")
    page.fill("#b-steps", "signup, feature_used, upgrade")
    page.fill("#b-window", "30")
    page.fill("#f-step1", "2")
    page.fill("#f-key1", "feature")
    page.select_option("#f-op1", "eq")
    page.fill("#f-value1", "dashboards")
    page.get_by_role("button", name="Run").click()
    page.wait_for_url(re.compile(r"/behaviour/\d+/$"))
    funnel = BehaviourAnalysis.objects.get(kind="funnel")
    assert funnel.params["steps"][1] == {"event": "feature_used", "filter": {
        "key": "feature", "op": "eq", "value": "dashboards"}}
    summary = page.locator(".params-summary").inner_text()
    assert "Steps: signup → feature_used [feature = dashboards] → upgrade" in summary
    assert "Window: 30 days" in summary and "Mode: in order" in summary
    page.wait_for_selector("#chart-funnel-weeks .main-svg")
    weeks = page.locator("#chart-funnel-weeks").inner_text()
    assert "entry week (Monday, UTC)" in weeks and "still in window" in weeks.lower()
    rows = page.locator("#funnel-weeks tbody tr")
    assert rows.count() == len(funnel.result["over_time"]) > 1
    page.wait_for_selector("#chart-ttc .main-svg")
    ttc = page.locator("#chart-ttc").inner_text()
    assert "time to convert" in ttc and "whole funnel (1 → 3)" in ttc and "< 1 min" in ttc
    page.locator("#funnel-weeks").scroll_into_view_if_needed()
    page.screenshot(path=str(folder / "funnel.png"), full_page=True)
    assert page.errors == []

    page.goto(f"{live_server.url}/w/acme/behaviour/")
    page.select_option("#b-kind", "paths")
    page.select_option("#b-start", "signup")
    page.fill("#b-psteps", "3")
    page.select_option("#b-poutcome", "upgrade")
    page.get_by_role("button", name="Run").click()
    page.wait_for_url(re.compile(r"/behaviour/\d+/$"))
    page.wait_for_selector("#chart-sankey .main-svg")
    paths = BehaviourAnalysis.objects.get(kind="paths").result
    cov = paths["sankey"]["coverage"]
    text = page.locator("#sankey-coverage").inner_text()
    assert f"Drawn: {cov['drawn_users']} of {paths['users']} users" in text
    if cov["drawn_users"] == paths["users"]:
        assert "(100%)" in text and "No user is left out" in text
    else:
        assert f"The other {cov['other_users']} users follow" in text
    assert "(end after step" in page.locator("#chart-sankey").inner_text()
    page.screenshot(path=str(folder / "paths.png"), full_page=True)
    assert page.errors == []
