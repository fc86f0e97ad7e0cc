"""An analyst builds a rolling retention on the behaviour page and reads a labelled heatmap
with the share in every cell. SCREENSHOTS_DIR=docs/screenshots saves the README's
screenshot (retention.png); else it goes to tmp_path."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.core.management import call_command

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_rolling_retention_is_built_on_the_page_and_labelled(new_page, login, live_server,
                                                               team, tmp_path):
    from behaviour.models import BehaviourAnalysis
    from events.demo import generate_demo

    data = generate_demo(users=1500, seed=7)
    data.events.to_csv(tmp_path / "e.csv", index=False)
    data.users.to_csv(tmp_path / "u.csv", index=False)
    call_command("import_events", workspace="acme", events=tmp_path / "e.csv",
                 users=tmp_path / "u.csv", dataset="Demo events")
    page = new_page(width=1280, height=1000)
    login(page, "analyst")
    page.goto(f"{live_server.url}/w/acme/behaviour/")
    page.select_option("#b-kind", "retention")
    page.select_option("#b-pkind", "rolling")
    page.fill("#b-pdays", "7")
    page.fill("#b-maxp", "10")
    page.get_by_role("button", name="Run").click()
    page.wait_for_url(re.compile(r"/behaviour/\d+/$"))
    analysis = BehaviourAnalysis.objects.get()
    assert analysis.params["period_kind"] == "rolling" and analysis.params["period_days"] == 7
    assert "purchase" not in analysis.params["return_events"]
    page.reload()  # the job ran at commit; the page now holds its result
    heading = page.get_by_role("heading", name=re.compile("Retention: rolling 7-day periods"))
    heading.wait_for()
    definition = page.locator("#retention-definition").inner_text()
    assert definition.startswith("Share of users who returned in 7-day period N (rolling "
                                 "7-day periods from each user's signup; a return is any "
                                 "activity event).")
    page.wait_for_selector("#chart-heatmap .main-svg")
    chart = page.locator("#chart-heatmap")
    texts = chart.locator("text").all_text_contents()
    assert any("7-day periods since each user's signup" in t for t in texts), texts
    assert "days 7–13" in texts and "days 63–69" in texts
    cells = [t for t in texts if re.fullmatch(r"\d{1,3}\.\d%", t)]
    # Numbers in the cells: the average row's day 7-13 share printed as the page holds it.
    average = analysis.result["average"][1]
    assert f"{average * 100:.1f}%" in cells
    assert len(cells) > 30
    assert page.errors == []
    shots = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page.locator("section.card", has=chart).screenshot(path=str(shots / "retention.png"))
    assert (shots / "retention.png").stat().st_size > 10_000
