"""Two end-to-end paths in a real browser.

The council's quarterly review: dashboard → latest optimizer run → "What binds" → an approve
decision with its rationale → the printable council brief. A PM's path: a segment → a new
hypothesis → an experiment designed in the form → start → analysis (a job) → conclusion → the
learning in the library and the measured lift on the hypothesis.

The data is seeded through the service layer (the same calls as the planner tests); under the
live server the database is transactional, so every job queued by ``transaction.on_commit``
runs eagerly at the commit of the statement or request that queued it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ONBOARDING = "onboarding_checklist_v2"


# --- seeding -------------------------------------------------------------------------------


def _events_csv(users: int, amount: float) -> str:
    rows = [f"u{i},signup,2025-01-01T00:00:00Z,\nu{i},purchase,2025-01-02T00:00:00Z,"
            f"{amount * (1 + i % 2)}\n" for i in range(users)]
    # One later session gives every user 90 days of history (the LTV needs it).
    return "user_id,event,timestamp,revenue\n" + "".join(rows) + \
        "u0,session_start,2025-06-01T00:00:00Z,\n"


USERS_CSV = "user_id,signup_time,plan\n" + "".join(
    f"u{i},2025-01-01T00:00:00Z,{'pro' if i % 2 else 'free'}\n" for i in range(40))


def seed_plan(team: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """A dataset of 40 users, two rule segments refreshed, three investments and a finished
    optimizer run (as tests/planner/test_dashboard.py's ``ws`` fixture)."""
    from events.models import Dataset
    from planner import services
    from planner.models import Investment, OptimizationRun, Scenario
    from segments import segment_services

    (tmp_path / "plan-e.csv").write_text(_events_csv(40, 10))
    (tmp_path / "plan-u.csv").write_text(USERS_CSV)
    call_command("import_events", workspace="acme", events=tmp_path / "plan-e.csv",
                 users=tmp_path / "plan-u.csv", dataset="app")
    dataset = Dataset.objects.get(workspace=team["acme"], name="app")
    for name in ("pro", "free"):
        segment_services.segment_create(dataset=dataset, name=name, definition={
            "attribute": "plan", "op": "eq", "value": name})
    call_command("refresh_segments", workspace="acme")
    investments = {}
    for title, roadmap, cost, value in (("A", "core", 60, 10), ("B", "experimental", 20, 2),
                                        ("C", "niche", 10, 3)):
        inv = Investment.objects.create(workspace=team["acme"], title=title, roadmap=roadmap,
                                        cost=cost, assumed_reach=100,
                                        assumed_value_per_user=value, assumed_lift=1.0,
                                        adoption=1.0)
        services.investment_revalue(investment=inv)
        investments[title] = inv
    scenario = Scenario.objects.create(workspace=team["acme"], name="q1", budget=100,
                                       shares={"core": [0, 1], "experimental": [0, 1],
                                               "niche": [0, 1]}, frontier_points=2)
    run = services.run_start(scenario=scenario)  # the job runs at commit (eager)
    run = OptimizationRun.objects.get(pk=run.pk)
    assert run.finished_at is not None and run.status, (run.status, run.job and run.job.error)
    return {"dataset": dataset, "run": run, "investments": investments}


def seed_demo(team: dict[str, Any], tmp_path: Path, users: int = 3000) -> dict[str, Any]:
    """The demo generator's data imported, with "Web" and "Mobile" rule segments refreshed."""
    from events.demo import generate_demo
    from events.models import Dataset
    from segments import segment_services

    data = generate_demo(users=users, seed=7)
    data.events.to_csv(tmp_path / "demo-e.csv", index=False)
    data.users.to_csv(tmp_path / "demo-u.csv", index=False)
    call_command("import_events", workspace="acme", events=tmp_path / "demo-e.csv",
                 users=tmp_path / "demo-u.csv", dataset="demo")
    dataset = Dataset.objects.get(workspace=team["acme"], name="demo")
    web = segment_services.segment_create(dataset=dataset, name="Web", definition={
        "attribute": "device", "op": "eq", "value": "web"})
    mobile = segment_services.segment_create(dataset=dataset, name="Mobile", definition={
        "attribute": "device", "op": "in", "value": ["ios", "android"]})
    call_command("refresh_segments", workspace="acme")
    return {"data": data, "dataset": dataset, "web": web, "mobile": mobile}


# --- page helpers --------------------------------------------------------------------------


def section(page: Any, heading: str) -> Any:
    """The card whose h2 is exactly ``heading``."""
    return page.locator("section.card").filter(
        has=page.get_by_role("heading", name=heading, exact=True, level=2))


def body_rows(table: Any) -> dict[str, list[str]]:
    """{first cell's text: [the other cells' texts]} for a table's body."""
    out: dict[str, list[str]] = {}
    rows = table.locator("tbody tr")
    for i in range(rows.count()):
        cells = [c.strip() for c in rows.nth(i).locator("th, td").all_inner_texts()]
        out[cells[0]] = cells[1:]
    return out


def wait_for_results(page: Any, selector: str, seconds: float = 30.0) -> None:
    """Reload until ``selector`` is on the page (the job may finish after the redirect)."""
    deadline = time.monotonic() + seconds
    while page.locator(selector).count() == 0:
        assert time.monotonic() < deadline, f"{selector} not on {page.url} after {seconds}s"
        page.wait_for_timeout(250)
        page.reload()


# --- the council ---------------------------------------------------------------------------


def test_council_reviews_the_quarter_and_records_a_decision(
    live_server: Any, team: dict[str, Any], new_page: Any, login: Any, tmp_path: Path
) -> None:
    from planner.models import Allocation, Decision, Investment
    from segments.models import SegmentSnapshot

    seeded = seed_plan(team, tmp_path)
    run = seeded["run"]
    page = new_page()
    login(page, "council")
    expect(page).to_have_url(f"{live_server.url}/w/acme/")
    expect(page.get_by_text("Your role: council")).to_be_visible()

    # Segments by value: both segments with their size and the snapshot's 90-day value.
    segments = body_rows(section(page, "Segments by value").locator("table"))
    assert list(segments) == ["pro", "free"]  # pro users paid twice as much
    for name, cells in segments.items():
        snap = SegmentSnapshot.objects.filter(segment__name=name).latest("computed_at")
        estimate = snap.signals["ltv_90"]["estimate"]
        assert cells[0] == "20"
        assert cells[1].startswith(f"{estimate:.2f} ["), cells
        assert cells[2] == "—"  # one snapshot only: no change yet

    # Latest allocation: spend and item count per roadmap, as the run stored them.
    allocation = section(page, "Latest allocation")
    by_roadmap = body_rows(allocation.locator("table"))
    for key, label in (("core", "Core"), ("experimental", "Experimental"), ("niche", "Niche")):
        chosen = Allocation.objects.filter(run=run, chosen=True, roadmap=key)
        assert by_roadmap[label][:2] == [str(chosen.count()),
                                         f"{int(sum(a.cost for a in chosen)):,}"], label
    assert by_roadmap["Core"][2] == "66.7%"  # share of spend: 60 of the 90 spent

    allocation.get_by_role("link", name=f"q1, run #{run.pk}").click()
    page.wait_for_url(f"**/w/acme/runs/{run.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"q1: run #{run.pk}")
    binds = section(page, "What binds")
    # A + B + C cost 90 of the 100 budget and there is no capacity: every item is in, nothing
    # is at its limit and relaxing the budget (re-solved) gains nothing.
    budget = next(r for r in run.plan["binding"] if r["group"] == "budget")
    assert (budget["used"], budget["limit"], budget["gain"], budget["binds"]) == \
        (90.0, 100.0, 0.0, False)
    expect(binds).to_contain_text("No constraint limits the plan")
    expect(binds.locator("tr", has_text="the budget is 100")).to_contain_text("90.00")

    # Approve item A with a rationale through its row's decision form.
    rationale = "Core onboarding work: highest value for the quarter's budget."
    row = page.locator("tbody tr").filter(has=page.get_by_role("link", name="A", exact=True))
    row.get_by_text("Record a decision").click()
    row.get_by_label("Verdict").select_option("approve")
    row.get_by_label("Rationale").fill(rationale)
    row.get_by_role("button", name="Record").click()
    page.wait_for_url(f"**/w/acme/runs/{run.pk}/")
    row = page.locator("tbody tr").filter(has=page.get_by_role("link", name="A", exact=True))
    expect(row.locator(".state-approve")).to_have_text("approve")
    expect(row).to_contain_text(f"council: {rationale[:77]}")
    approved = section(page, "Approved roadmap")
    expect(approved).to_contain_text(f"A (core, 60) — {rationale}")

    decision = Decision.objects.get()
    assert (decision.run_id, decision.investment_id, decision.verdict, decision.rationale,
            decision.decided_by.username) == (run.pk, seeded["investments"]["A"].pk, "approve",
                                              rationale, "council")
    assert Investment.objects.get(title="A").status == "approved"
    assert Investment.objects.get(title="B").status == "proposed"

    # The printable brief lists it under "Decisions recorded".
    page.goto(f"{live_server.url}/w/acme/brief/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Segment council brief: Acme")
    decisions = page.locator("h3:text-is('Decisions recorded') + ul > li")
    expect(decisions).to_have_count(1)
    expect(decisions.first).to_contain_text(f"Approve A — {rationale} (council, ")
    assert page.errors == []

    # An analyst reads the same run but gets no decision form, and cannot post one.
    analyst = new_page()
    login(analyst, "analyst")
    analyst.goto(f"{live_server.url}/w/acme/runs/{run.pk}/")
    expect(section(analyst, "What binds")).to_be_visible()
    expect(analyst.locator(".state-approve")).to_have_text("approve")
    expect(analyst.get_by_text("Record a decision")).to_have_count(0)
    expect(analyst.get_by_label("Rationale")).to_have_count(0)
    token = analyst.evaluate("document.cookie.match(/csrftoken=([^;]+)/)[1]")
    response = analyst.request.post(
        f"{live_server.url}/w/acme/runs/{run.pk}/",
        form={"investment": str(seeded["investments"]["B"].pk), "verdict": "approve",
              "rationale": "not mine to decide"},
        headers={"X-CSRFToken": token, "Referer": f"{live_server.url}/w/acme/runs/{run.pk}/"})
    assert response.status == 403
    assert Decision.objects.count() == 1
    assert analyst.errors == []


# --- the PM --------------------------------------------------------------------------------


def test_pm_goes_from_a_segment_to_a_hypothesis_an_experiment_and_a_learning(
    live_server: Any, team: dict[str, Any], new_page: Any, login: Any, tmp_path: Path
) -> None:
    from experiments.models import Experiment, Hypothesis, Learning

    demo = seed_demo(team, tmp_path)
    web, mobile = demo["web"], demo["mobile"]
    page = new_page()
    login(page, "analyst")

    # From the Web segment's page to the hypotheses, and a new one.
    page.goto(f"{live_server.url}/w/acme/segments/{web.pk}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Web")
    page.get_by_role("navigation").get_by_role("link", name="Hypotheses").click()
    page.wait_for_url("**/w/acme/hypotheses/")
    page.get_by_role("link", name="New hypothesis").click()
    page.wait_for_url("**/w/acme/hypotheses/new/")
    statement = "An onboarding checklist lifts completion on web"
    page.get_by_label("Statement").fill(statement)
    page.get_by_label("Segments").select_option(label="Web")
    page.get_by_label("Mechanism").fill("Web users stall on the second step; a checklist "
                                        "shows what is left.")
    page.get_by_label("Metric", exact=True).fill("onboarded_7d")
    page.get_by_label("Expected lift", exact=True).fill("0.1")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/w/acme/hypotheses/\d+/$"))
    hypothesis = Hypothesis.objects.get(statement=statement)
    assert list(hypothesis.segments.all()) == [web] and hypothesis.owner.username == "analyst"
    expect(page.locator("h1 .state")).to_have_text("Proposed")

    # Design the experiment; first with weights adding to 1.1: refused, nothing stored.
    from experiments.models import Metric  # the team's metric library holds the metric

    Metric.objects.create(workspace=team["acme"], name="onboarded_7d", kind="proportion",
                          event="onboarding_completed", window_days=7)
    page.get_by_role("link", name="Design an experiment").click()
    page.wait_for_url(f"**/w/acme/hypotheses/{hypothesis.pk}/experiments/new/")
    page.fill("#id_name", "Checklist A/B")
    page.select_option("#id_dataset", label="demo")
    page.select_option("#id_breakdown_segments", [str(web.pk), str(mobile.pk)])
    page.fill("#id_arms", "control:0.5, treatment:0.6")
    page.select_option("#id_primary_metric", label="onboarded_7d")
    page.select_option("#id_data_source", "events")
    page.fill("#id_assignment_event", "experiment_assigned")
    page.fill("#id_experiment_id", ONBOARDING)
    page.get_by_role("button", name="Save").click()
    page.wait_for_load_state()
    error = page.locator("form .error[role=alert]").first
    expect(error).to_have_text("arms: the weights must add up to 1 (they add up to 1.1)")
    assert "/experiments/new/" in page.url and Experiment.objects.count() == 0
    # The form keeps what was typed: fix the weights and save.
    expect(page.locator("#id_experiment_id")).to_have_value(ONBOARDING)
    page.fill("#id_arms", "control:0.5, treatment:0.5")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/w/acme/experiments/\d+/$"))
    experiment = Experiment.objects.get()
    assert experiment.arms == [{"name": "control", "weight": 0.5},
                               {"name": "treatment", "weight": 0.5}]
    assert experiment.assignment["experiment_id"] == ONBOARDING
    assert set(experiment.breakdown_segments.all()) == {web, mobile}

    # Start, then analyze (a job), and read the results.
    page.get_by_role("button", name=re.compile("^Start")).click()
    page.wait_for_url(f"**/w/acme/experiments/{experiment.pk}/")
    expect(page.locator("h1 .state")).to_have_text("Running")
    page.get_by_role("button", name="Analyze now").click()
    page.wait_for_url(f"**/w/acme/experiments/{experiment.pk}/")
    wait_for_results(page, "section.card:has(h2:text-is('Results')) table tbody tr")
    page.locator("#chart-forest .main-svg").first.wait_for()
    results = section(page, "Results")
    realized = demo["data"].truth["experiment"]["segments"]["web"]["realized"]
    web_row = results.locator("tbody tr.primary").filter(
        has=page.locator("td:nth-child(2)", has_text=re.compile("^Web$")))
    expect(web_row).to_have_count(1)
    expect(web_row.locator("td").nth(3)).to_have_text(
        f"{realized['control']['users']} / {realized['treatment']['users']}")

    # Conclude: validated on web; the learning shows here, in the library, on the hypothesis.
    conclude = section(page, "Conclude: record what we learned")
    # no outcome is chosen for the PM; the rule's proposal is shown above the choice
    expect(conclude.locator("input[name=outcome]:checked")).to_have_count(0)
    expect(conclude).to_contain_text("The decision rule proposes")
    conclude.locator("input[name=outcome][value=validated]").check()
    conclude.locator("#id_scope").select_option(label="Web")
    believe = "The checklist works on web; mobile needs its own test."
    conclude.locator("#id_now_believe").fill(believe)
    conclude.locator("#id_decision").fill("Ship the checklist to web users.")
    conclude.get_by_role("button", name="Conclude and record the learning").click()
    page.wait_for_url(f"**/w/acme/experiments/{experiment.pk}/")
    expect(page.locator("h1 .state")).to_have_text("Concluded")
    learning_card = section(page, "Learning")
    expect(learning_card).to_contain_text(believe)
    expect(learning_card.locator(".state-validated")).to_have_text("Validated")
    learning = Learning.objects.get()
    assert (learning.outcome, learning.now_believe, list(learning.segments.all())) == (
        "validated", believe, [web])

    page.get_by_role("navigation").get_by_role("link", name="Learnings").click()
    page.wait_for_url("**/w/acme/learnings/")
    expect(page.locator("article.learning")).to_have_count(1)
    expect(page.locator("article.learning")).to_contain_text(believe)
    expect(page.locator("article.learning h3")).to_contain_text(statement)

    hypothesis.refresh_from_db()
    assert hypothesis.status == "validated" and hypothesis.measured_lift is not None
    page.goto(f"{live_server.url}/w/acme/hypotheses/{hypothesis.pk}/")
    expect(page.locator("h1 .state")).to_have_text("Validated")
    measured = page.locator(".stats > div").filter(has_text="measured lift")
    expect(measured.locator("strong")).to_have_text(f"{hypothesis.measured_lift:.3f}")
    expect(section(page, "What it taught us")).to_contain_text(believe)
    assert page.errors == []
