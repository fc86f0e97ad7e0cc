"""An analyst builds a trend with a breakdown, saves it to the dashboard and reads it there.
SCREENSHOTS_DIR=docs/screenshots refreshes the README's trends.png and insights.png."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from behaviour.models import BehaviourAnalysis, SavedInsight

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PLANS = ("free", "pro", "team")


def seed_dataset(workspace, tmp_path):  # type: ignore[no-untyped-def]
    from events import services

    dataset = services.dataset_create(workspace=workspace, name="Shop events")
    events = tmp_path / "events.csv"
    users = tmp_path / "users.csv"
    rows = []
    for i in range(40):  # 40 users over five weeks; user i views on days i % 35, and so on
        for k in range(1 + i % 4):
            day = 2 + (i * 3 + k * 5) % 35
            rows.append(f"u{i:02d},view,2026-03-{day:02d}T10:{k:02d}:00Z,"
                        if day <= 31 else f"u{i:02d},view,2026-04-{day - 31:02d}T10:{k:02d}:00Z,")
        if i % 3 == 0:
            day = 3 + i % 28
            rows.append(f"u{i:02d},buy,2026-03-{day:02d}T12:00:00Z,{10 + i}")
    events.write_text("user_id,event,timestamp,revenue\n" + "\n".join(rows) + "\n")
    users.write_text("user_id,plan\n" + "".join(f"u{i:02d},{PLANS[i % 3]}\n"
                                                 for i in range(40)))
    services.import_create(dataset=dataset, user=None,
                           events=services.copy_to_uploads(events, workspace=workspace),
                           users=services.copy_to_uploads(users, workspace=workspace))
    dataset.refresh_from_db()
    return dataset


def test_trend_with_breakdown_saved_to_the_dashboard(new_page, login, live_server, team,
                                                     tmp_path):
    dataset = seed_dataset(team["acme"], tmp_path)
    assert dataset.version == 1
    shots = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page = new_page()
    login(page, "analyst")
    page.goto(f"{live_server.url}/w/acme/behaviour/")
    page.select_option("#b-kind", "trends")
    page.select_option("#t-event-0", "view")
    page.select_option("#t-measure-0", "unique_users")
    page.select_option("#t-event-1", "buy")
    page.select_option("#t-measure-1", "count")
    page.select_option("#t-interval", "week")
    page.fill("#t-from", "2026-03-16")
    page.fill("#t-to", "2026-04-05")
    page.select_option("#t-breakdown", "attribute:plan")
    page.fill("#t-formula", "B / A * 100")
    page.check("#t-compare")
    page.get_by_role("button", name="Run").click()
    page.wait_for_url("**/behaviour/*/")
    page.wait_for_selector("#chart-trends .main-svg")
    analysis = BehaviourAnalysis.objects.get(kind="trends")
    r = analysis.result
    assert (r["from"], r["to"], r["previous"]["from"]) == ("2026-03-16", "2026-04-05",
                                                           "2026-02-23")
    assert r["buckets"] == ["2026-03-16", "2026-03-23", "2026-03-30"]
    assert sorted(r["breakdown"]["groups"]) == ["free", "pro", "team"]  # all three shown
    assert r["breakdown"]["other"] is False
    # The table: one row per week, the series, its groups, previous period and the formula.
    table = page.locator("table.trends-table")
    assert table.locator("tbody tr").count() == len(r["buckets"])
    header = table.locator("thead").inner_text()
    assert "A · free" in header and "formula B / A * 100" in header
    assert "A previous period (all)" in header
    # Legend entries of the plotly chart: every group line and the dashed previous period.
    legend = page.locator("#chart-trends .legendtext").evaluate_all(
        "els => els.map((e) => e.textContent)")
    assert {"A · free", "A · pro", "A · team", "A previous period (all)",
            "formula B / A * 100"} <= set(legend)
    assert page.errors == []
    page.screenshot(path=str(shots / "trends.png"), full_page=False)

    page.fill("#insight-name", "Weekly viewers by plan")
    page.get_by_role("button", name="Save to dashboard").click()
    page.wait_for_url("**/insights/")
    insight = SavedInsight.objects.get()
    assert insight.name == "Weekly viewers by plan" and insight.analysis_id == analysis.pk
    card = page.locator(f"#insight-{insight.pk}")
    assert card.get_by_role("heading", name="Weekly viewers by plan").is_visible()
    assert "computed on v1" in card.inner_text()
    page.wait_for_selector(f"#insight-chart-{insight.pk} .main-svg")
    first_week = card.locator("table.trends-table tbody tr").first.inner_text()
    assert first_week.split("\t")[0] == r["buckets"][0]
    assert page.errors == []
    page.screenshot(path=str(shots / "insights.png"), full_page=False)
    # The nav links the dashboard; a phone-width page scrolls the table, not the page.
    phone = new_page(width=390, height=844)
    login(phone, "viewer")
    phone.goto(f"{live_server.url}/w/acme/behaviour/")
    phone.get_by_role("link", name="Insights", exact=True).first.click()
    phone.wait_for_url("**/insights/")
    assert "Rename" not in phone.content()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1
