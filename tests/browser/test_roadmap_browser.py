"""The roadmap in a real browser: the council adopts a run from its page, approves an item on
the timeline page, and the timeline shows quarters by team swimlanes (screenshot taken)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_council_adopts_a_run_and_reads_the_timeline(live_server: Any, team: Any, new_page: Any,
                                                     login: Any, tmp_path: Path) -> None:
    from planner import services
    from planner.models import Investment, RoadmapItem, Scenario

    ws = team["acme"]
    made = {}
    for title, roadmap, cost, vpu, effort, duration in (
            ("One-page checkout", "core", 60, 10, {"web": 2, "payments": 1}, 2),
            ("Search ranking", "core", 50, 5, {"web": 2}, 1),
            ("Referral widget", "experimental", 20, 2, {"growth": 1}, 1),
            ("Pricing page test", "niche", 10, 3, {}, 1)):
        inv = Investment.objects.create(workspace=ws, title=title, roadmap=roadmap, cost=cost,
                                        assumed_reach=100, assumed_value_per_user=vpu,
                                        assumed_lift=1.0, adoption=1.0, effort=effort,
                                        duration_quarters=duration)
        made[title] = services.investment_revalue(investment=inv)
    made["Referral widget"].depends_on.add(made["One-page checkout"])
    scenario = Scenario.objects.create(
        workspace=ws, name="2027 H1", budget=200, frontier_points=0, schedule=True,
        shares={"core": [0, 1], "experimental": [0, 1], "niche": [0, 1]},
        quarters=["2027Q1", "2027Q2", "2027Q3"],
        capacity={f"web|2027Q{q}": 2 for q in (1, 2, 3)} | {
            f"payments|2027Q{q}": 1 for q in (1, 2, 3)} | {
            f"growth|2027Q{q}": 1 for q in (1, 2, 3)})
    run = services.run_start(scenario=scenario)
    page = new_page()
    login(page, "council")
    page.goto(f"{live_server.url}/w/acme/runs/{run.pk}/")
    against = page.locator("#against-roadmap")
    expect(against).to_contain_text("no roadmap yet")
    against.get_by_role("link", name="Adopt as a new roadmap version").click()
    page.get_by_label("Note").fill("First half of 2027")
    page.get_by_role("button", name="Adopt as a new version").click()
    page.wait_for_url(f"{live_server.url}/w/acme/roadmap/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Approved roadmap: v1 (current)")
    row = page.locator("tr", has=page.get_by_role("rowheader", name="One-page checkout"))
    row.get_by_text("Record a decision").click()
    row.get_by_label("Verdict").select_option("approve")
    row.get_by_label("Rationale").fill("Checkout is the biggest lever")
    row.get_by_role("button", name="Record").click()
    page.wait_for_url(f"{live_server.url}/w/acme/roadmap/")
    assert RoadmapItem.objects.get(title="One-page checkout").state == "approve"
    timeline = page.get_by_role("table", name="Roadmap v1: items by quarter and team")
    expect(timeline.get_by_role("columnheader")).to_have_text(
        ["Team", "2027Q1", "2027Q2", "2027Q3"])
    expect(timeline.get_by_role("rowheader")).to_have_text(
        ["growth", "payments", "web", "no team"])
    expect(timeline.locator(".tl-approve")).to_have_count(2)  # checkout in web and payments
    expect(timeline).to_contain_text("after One-page checkout")
    shot = Path(os.environ.get("ROADMAP_SCREENSHOT", tmp_path / "roadmap.png"))
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert page.errors == []
