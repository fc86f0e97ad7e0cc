"""The council's loop, end to end in a real browser, on the demo data (issue 13's "Done when").

Seeding is `make demo`'s own commands at a small size (2,000 users): the generator, import,
`create_demo_segments`, `refresh_segments`, `create_demo_plan` (without its last step, the
council's adoption: the council adopts in the browser here) and the first half of
`create_demo_experiments` for the mobile checklist (its hypothesis, the test on the mobile
segment, started and analyzed; the conclusion is made in the browser). Then, in the browser:

1. the council adopts run A of "2027 plan" as roadmap v1 and approves the mobile checklist;
2. the PM concludes the mobile test "invalidated" (the planted data has no mobile effect), with
   an override reason when the rule proposes otherwise;
3. run A's page, the dashboard and the brief show the stale banner naming the mobile checklist;
4. the banner's re-run button proposes run B, shown against roadmap v1 with its reasons;
5. the council adopts run B as v2;
6. the API's current roadmap is v2, `updated_since` returns the re-valued investment and the
   signed webhooks (roadmap.adopted, roadmap.decision) arrive at a real local receiver.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MOBILE = "Onboarding checklist (mobile)"
# LOOP_SCREENSHOTS_DIR=docs/screenshots refreshes the README's screenshots; else tmp_path.
SCREENSHOTS_ENV = "LOOP_SCREENSHOTS_DIR"


def _receiver_module() -> Any:
    """tests/integrations/test_webhooks.py's real signed receiver (Receiver, subscribe)."""
    path = Path(__file__).resolve().parents[1] / "integrations" / "test_webhooks.py"
    spec = importlib.util.spec_from_file_location("_loop_webhook_receiver", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def seed(tmp_path: Path) -> dict[str, Any]:
    from events.demo import generate_demo
    from experiments import services as xs
    from experiments.models import Experiment, Hypothesis
    from jobs.services import job_run
    from planner import services
    from planner.management.commands import create_demo_plan
    from planner.models import OptimizationRun, Scenario
    from segments.models import Segment

    data = generate_demo(users=2000, seed=7)
    data.events.to_csv(tmp_path / "e.csv", index=False)
    data.users.to_csv(tmp_path / "u.csv", index=False)
    call_command("import_events", workspace="acme", events=tmp_path / "e.csv",
                 users=tmp_path / "u.csv", dataset="Demo events")
    call_command("create_demo_segments", workspace="acme")
    call_command("refresh_segments", workspace="acme")

    class PlanWithoutAdoption(create_demo_plan.Command):
        def _adopt(self, workspace: Any) -> None:  # the council adopts in the browser
            return None

    call_command(PlanWithoutAdoption(), workspace="acme")

    # create_demo_experiments' mobile test, up to its analysis (as that command does).
    from django.contrib.auth import get_user_model

    from experiments.management.commands.create_demo_experiments import (
        EXPERIMENT_ID,
        ONBOARDING,
        SESSIONS,
    )

    pm = get_user_model().objects.get(username="analyst")
    mobile = Segment.objects.get(workspace__slug="acme", name="Mobile users")
    mobile_h = Hypothesis.objects.create(
        workspace=mobile.workspace,
        statement="The onboarding checklist lifts mobile activation too",
        mechanism="the same visible next step should help on small screens",
        metric="onboarded_7d", expected_lift=0.08, expected_lift_low=0.0,
        expected_lift_high=0.15, basis="the web result", owner=pm)
    mobile_h.segments.add(mobile)
    inv = mobile.workspace.investments.get(title=MOBILE)
    inv.hypotheses.set([mobile_h])
    services.investment_revalue(investment=inv)
    experiment = xs.experiment_save(Experiment(
        hypothesis=mobile_h, segment=mobile, name="Onboarding checklist on mobile",
        dataset=inv.workspace.datasets.get(), mde=0.1,
        arms=[{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
        primary_metric=ONBOARDING, guardrail_metrics=[SESSIONS],
        assignment={"event": "experiment_assigned", "experiment_key": "experiment",
                    "experiment_id": EXPERIMENT_ID, "arm_key": "arm"}), breakdown=[], user=pm)
    xs.experiment_start(experiment=experiment, user=pm)
    job = xs.analyze_start(experiment=experiment)
    job_run(job_id=job.pk)
    experiment.refresh_from_db()
    assert experiment.result, "the mobile test's analysis failed"

    # Run A: the demo's "2027 plan" with every input above in place.
    scenario = Scenario.objects.get(workspace=inv.workspace, name="2027 plan")
    run = services.run_start(scenario=scenario)
    if run.job_id and run.finished_at is None:
        job_run(job_id=run.job_id)
    run = OptimizationRun.objects.get(pk=run.pk)
    assert run.finished_at is not None and run.status in ("optimal", "feasible"), run.status
    return {"data": data, "run": run, "investment": inv, "experiment": experiment, "hypothesis": mobile_h,
            "scenario": scenario}


def test_the_council_loop(live_server: Any, team: dict[str, Any], new_page: Any, login: Any,
                          tmp_path: Path, settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    hooks = _receiver_module()
    receiver = hooks.Receiver()
    try:
        _walk(live_server, team, new_page, login, tmp_path, hooks, receiver)
    finally:
        receiver.close()


def _walk(live_server: Any, team: dict[str, Any], new_page: Any, login: Any, tmp_path: Path,
          hooks: Any, receiver: Any) -> None:
    from experiments.models import Learning
    from planner.models import Allocation, Investment, OptimizationRun, RoadmapVersion

    ws = team["acme"]
    hooks.subscribe(receiver, ws, "/roadmap", ["roadmap.adopted", "roadmap.decision"])
    seeded = seed(tmp_path)
    run_a, inv = seeded["run"], seeded["investment"]
    base = f"{live_server.url}/w/acme"
    shots = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    chosen_a = set(Allocation.objects.filter(run=run_a, chosen=True)
                   .values_list("investment_id", flat=True))
    assert inv.pk not in chosen_a  # at 2,000 users the optimizer leaves it out: the council adds it

    # 1. The council adopts run A as v1 (the optimizer's choice) and approves the mobile item.
    council = new_page()
    login(council, "council")
    council.goto(f"{base}/runs/{run_a.pk}/")
    expect(council.locator(".stale-banner")).to_contain_text(
        f"Current: no input of run #{run_a.pk} has changed")
    against = council.locator("#against-roadmap")
    expect(against).to_contain_text("no roadmap yet")
    against.get_by_role("link", name="Adopt as a new roadmap version").click()
    expect(council.get_by_label(MOBILE)).not_to_be_checked()
    council.get_by_label(MOBILE).check()
    council.get_by_label("Note").fill("2027 plan, first cut")
    council.get_by_role("button", name="Adopt as a new version").click()
    council.wait_for_url(f"{base}/roadmap/")
    expect(council.get_by_role("heading", level=1)).to_have_text("Approved roadmap: v1 (current)")
    v1 = RoadmapVersion.objects.get(workspace=ws)
    assert (v1.number, v1.adopted_from_id) == (1, run_a.pk)
    assert set(v1.items.values_list("investment_id", flat=True)) == chosen_a | {inv.pk}
    row = council.locator("tr", has=council.get_by_role("rowheader", name=MOBILE))
    row.get_by_text("Record a decision").click()
    row.get_by_label("Verdict").select_option("approve")
    row.get_by_label("Rationale").fill("Mobile onboarding is the next activation lever")
    row.get_by_role("button", name="Record").click()
    council.wait_for_url(f"{base}/roadmap/")
    assert v1.items.get(investment=inv).state == "approve"
    assert Investment.objects.get(pk=inv.pk).status == "approved"

    # 2. The PM concludes the mobile test: invalidated (the demo plants no mobile effect).
    before_conclude = dt.datetime.now(dt.UTC)
    value_before = Investment.objects.get(pk=inv.pk).expected_value
    pm = new_page()
    login(pm, "analyst")
    pm.goto(f"{base}/experiments/{seeded['experiment'].pk}/")
    conclude = pm.locator("section.card").filter(has=pm.get_by_role(
        "heading", name="Conclude: record what we learned", exact=True, level=2))
    conclude.locator("input[name=outcome][value=invalidated]").check()
    conclude.locator("#id_now_believe").fill("Mobile users onboard as often without the "
                                             "checklist.")
    conclude.locator("#id_decision").fill("Drop the mobile checklist from the roadmap.")
    conclude.locator("#id_override_reason").fill(
        "Mobile onboarding is near its ceiling: even the top of the interval does not pay "
        "for the build.")
    conclude.get_by_role("button", name="Conclude and record the learning").click()
    pm.wait_for_url(f"{base}/experiments/{seeded['experiment'].pk}/")
    expect(pm.locator("h1 .state")).to_have_text("Concluded")
    assert Learning.objects.get(experiment=seeded["experiment"]).outcome == "invalidated"
    seeded["hypothesis"].refresh_from_db()
    assert seeded["hypothesis"].status == "invalidated"
    inv.refresh_from_db()
    # Independently: an invalidated hypothesis leaves no lift (the item's own assumed lift is
    # set aside rather than revived), so the value is 0.
    expected = 0.0
    assert inv.expected_value == expected
    value_then = next(i["value"] for i in run_a.inputs["items"] if int(i["id"]) == inv.pk)
    assert value_then == pytest.approx(value_before)

    # 3. Run A's page, the dashboard and the brief: the stale banner names the item.
    banner_pages = {"run": f"{base}/runs/{run_a.pk}/", "dashboard": f"{base}/",
                    "brief": f"{base}/brief/"}
    for name, url in banner_pages.items():
        council.goto(url)
        banner = council.locator(".stale-banner")
        expect(banner).to_contain_text(f"Stale: run #{run_a.pk} no longer matches its inputs")
        row = banner.locator("tbody tr", has=council.get_by_role("rowheader", name=MOBILE))
        fields = {r.split("\t")[1]: r.split("\t")[2:] for r in row.all_inner_texts()}
        assert fields["value"] == [f"{value_then:.2f}".rstrip("0").rstrip("."),
                                   f"{expected:.2f}".rstrip("0").rstrip(".")], (name, fields)
        assert fields["hypotheses"][1].startswith(
            f"hypothesis #{seeded['hypothesis'].pk} invalidated"), (name, fields)
        assert fields["experiments"][1].startswith(
            f"experiment #{seeded['experiment'].pk} concluded"), (name, fields)
        if name == "run":
            council.screenshot(path=str(shots / "stale-banner.png"), full_page=False)
            assert (shots / "stale-banner.png").stat().st_size > 10_000

    # 4. Re-run from the banner: run B, against roadmap v1 with reasons.
    council.goto(f"{base}/runs/{run_a.pk}/")
    # the run's job (robust draws, value of information) runs at the request's commit
    with council.expect_navigation(url=re.compile(r"/w/acme/runs/\d+/$"), timeout=120_000):
        council.get_by_role("button", name="Re-run scenario “2027 plan” with today's inputs"
                            ).click(no_wait_after=True)
    run_b = OptimizationRun.objects.filter(scenario=seeded["scenario"]).latest("pk")
    assert run_b.pk != run_a.pk
    council.goto(f"{base}/runs/{run_b.pk}/")
    against = council.locator("#against-roadmap")
    expect(against).to_contain_text("This run against the approved roadmap (v1)")
    changed = against.locator("tbody tr").filter(has_text="value changed").filter(
        has=council.get_by_role("rowheader", name=MOBILE))
    expect(changed.locator("ul.reasons li")).to_have_text(
        # Before: the item rested on its hypothesis's stated expectation (the demo plants it at
        # evidence level 'assumption'); after the invalidation nothing supports a lift.
        [f"value changed: {value_then:,.0f} → {expected:,.0f}",
         "evidence changed: assumption → none"])
    against.scroll_into_view_if_needed()
    council.screenshot(path=str(shots / "run-vs-roadmap.png"), full_page=False)
    assert (shots / "run-vs-roadmap.png").stat().st_size > 10_000

    # 5. The council adopts run B as v2.
    against.get_by_role("link", name="Adopt as a new roadmap version").click()
    council.get_by_label("Note").fill("after the mobile test")
    council.get_by_role("button", name="Adopt as a new version").click()
    council.wait_for_url(f"{base}/roadmap/")
    expect(council.get_by_role("heading", level=1)).to_have_text("Approved roadmap: v2 (current)")

    # 6. The API, the change feed and the webhooks.
    current = council.request.get(
        f"{live_server.url}/api/v1/roadmap-versions/current/?workspace=acme")
    assert current.status == 200
    body = current.json()
    assert (body["number"], body["adopted_from"]) == (2, run_b.pk)
    assert {i["investment"]: i["state"] for i in body["items"]}[inv.pk] == "approve"
    since = before_conclude.isoformat().replace("+00:00", "Z")
    feed = council.request.get(f"{live_server.url}/api/v1/investments/",
                               params={"workspace": "acme", "updated_since": since,
                                       "page_size": 500})
    # The re-valued item and every item whose backlog rank it passed (value per cost between
    # its old and new value per cost), nothing else.
    lo, hi = value_before / inv.cost, expected / inv.cost
    passed = {i.pk for i in Investment.objects.filter(workspace=ws).exclude(pk=inv.pk)
              if lo < i.expected_value / i.cost < hi}
    assert {r["id"] for r in feed.json()["results"]} == {inv.pk} | passed
    hits = receiver.at("/roadmap")
    assert all(h["valid"] for h in hits)
    assert [h["body"]["event"] for h in hits] == ["roadmap.adopted", "roadmap.decision",
                                                  "roadmap.adopted"]
    decision = hits[1]["body"]["data"]
    assert (decision["investment"]["title"], decision["verdict"], decision["version"]["number"]
            ) == (MOBILE, "approve", 1)
    # absolute links, on the host the council's browser used
    assert decision["investment"]["url"] == f"{live_server.url}/api/v1/investments/{inv.pk}/"
    assert [h["body"]["data"]["version"]["number"] for h in (hits[0], hits[2])] == [1, 2]
    assert council.errors == [] and pm.errors == []
