"""The dashboard, brief, tokens, hypotheses, experiments, learnings and behaviour pages fit the
viewport width on a laptop and on a phone, with no JavaScript error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_council_and_pm import seed_demo, seed_plan
from test_import_flow import OVERFLOWING_JS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHARTS = {"experiment": "#chart-forest .main-svg", "funnel": "#chart-funnel .main-svg",
          "calibration": "#chart-calibration .main-svg"}


def seed_pages(team: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    """Every page with content: a run with a decision, a concluded experiment with results and
    its learning, a hypothesis in flight, a funnel and a discovery analysis. {name: path}."""
    from behaviour import services as bs
    from behaviour.models import BehaviourAnalysis
    from experiments import services as xs
    from experiments.models import Evidence, Experiment, Hypothesis
    from jobs.services import job_run
    from planner import services

    plan = seed_plan(team, tmp_path)
    services.decision_record(run=plan["run"], investment=plan["investments"]["A"],
                             verdict="approve", user=team["council"],
                             rationale="Core onboarding work, the highest value per cost "
                                       "this quarter; revisit after the checklist test.")
    demo = seed_demo(team, tmp_path)
    web, mobile = demo["web"], demo["mobile"]
    hypothesis = Hypothesis.objects.create(
        workspace=team["acme"], statement="An onboarding checklist lifts completion on web",
        mechanism="Web users stall on the second step", metric="onboarded_7d",
        expected_lift=0.1, expected_lift_low=0.04, expected_lift_high=0.16,
        evidence=Evidence.ASSUMPTION, owner=team["analyst"])
    hypothesis.segments.add(web)
    plan["investments"]["A"].hypotheses.add(hypothesis)
    # The proxy metric reaches value through an entered value model (its provenance card).
    from planner.models import ValueModel

    mapping = services.value_model_save(value_model=ValueModel(
        workspace=team["acme"], name="7-day onboarding -> 90-day LTV (web), from the 2025 "
        "cohort study", metric="onboarded_7d", kind="entered", low=0.05, mid=0.15, high=0.3,
        source="the 2025 cohort study of web signups: onboarded users' LTV over the rest's"))
    plan["investments"]["A"].value_model = mapping
    plan["investments"]["A"].save(update_fields=["value_model"])
    in_flight = Hypothesis.objects.create(
        workspace=team["acme"], statement="Mobile users who invite a teammate in week one "
        "upgrade twice as often", metric="upgrade", expected_lift=0.2)
    in_flight.segments.add(mobile)
    experiment = Experiment(
        hypothesis=hypothesis, workspace=team["acme"], name="Checklist A/B", kind="ab",
        dataset=demo["dataset"],
        arms=[{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
        primary_metric={"kind": "conversion", "event": "onboarding_completed",
                        "window_days": 7},
        guardrail_metrics=[{"kind": "count", "event": "session_start", "window_days": 14}],
        data_source="events",
        assignment={"event": "experiment_assigned", "experiment_key": "experiment",
                    "experiment_id": "onboarding_checklist_v2", "arm_key": "arm"})
    xs.experiment_save(experiment, breakdown=[web, mobile], user=team["analyst"])
    xs.experiment_start(experiment=experiment, user=team["analyst"])
    job = xs.analyze_start(experiment=experiment, user=team["analyst"])  # runs at commit
    job_run(job_id=job.pk)  # a no-op when it already ran
    experiment.refresh_from_db()
    assert experiment.result.get("rows"), experiment.result
    xs.experiment_conclude(experiment=experiment, outcome="validated", scope=f"segment:{web.pk}",
                           now_believe="The checklist works on web; mobile needs its own test.",
                           decision="Ship the checklist to web users.", tags=["onboarding"],
                           user=team["analyst"])
    in_flight_x = Experiment(
        hypothesis=in_flight, workspace=team["acme"], name="Invite prompt A/B", kind="ab",
        dataset=demo["dataset"],
        arms=[{"name": "control", "weight": 0.5}, {"name": "prompt", "weight": 0.5}],
        primary_metric={"kind": "conversion", "event": "upgrade", "window_days": 30},
        data_source="events", assignment={"event": "experiment_assigned",
                                          "experiment_key": "experiment",
                                          "experiment_id": "invite_prompt", "arm_key": "arm"})
    xs.experiment_save(in_flight_x, breakdown=[mobile], user=team["analyst"])
    xs.experiment_start(experiment=in_flight_x, user=team["analyst"])

    analyses = {}
    for kind, params in (
        ("funnel", {"steps": ["signup", "onboarding_completed", "report_created", "invite_sent",
                              "upgrade"], "window_days": 14, "breakdown": "device"}),
        ("discovery", {"outcome_event": "upgrade", "outcome_days": 60}),
    ):
        analysis = bs.analysis_start(dataset=demo["dataset"], kind=kind, params=params)
        if analysis.job_id:
            job_run(job_id=analysis.job_id)
        analysis = BehaviourAnalysis.objects.get(pk=analysis.pk)
        assert analysis.result, (kind, analysis.job and analysis.job.error)
        analyses[kind] = analysis.pk
    return {
        "dashboard": "/w/acme/",
        "brief": "/w/acme/brief/",
        "tokens": "/account/tokens/",
        "hypotheses": "/w/acme/hypotheses/",
        "hypothesis": f"/w/acme/hypotheses/{hypothesis.pk}/",
        "experiment": f"/w/acme/experiments/{experiment.pk}/",
        "learnings": "/w/acme/learnings/",
        "calibration": "/w/acme/calibration/",
        "value_models": "/w/acme/value-models/",
        "investment": f"/w/acme/investments/{plan['investments']['A'].pk}/",
        "behaviour": "/w/acme/behaviour/",
        "funnel": f"/w/acme/behaviour/{analyses['funnel']}/",
        "discovery": f"/w/acme/behaviour/{analyses['discovery']}/",
    }


def test_dashboard_planning_and_behaviour_pages_fit_the_viewport_width(
    live_server: Any, team: dict[str, Any], new_page: Any, login: Any, tmp_path: Path
) -> None:
    pages = seed_pages(team, tmp_path)
    problems = []
    for width in (1280, 390):
        page = new_page(width=width, height=800)
        login(page, "admin")  # admins see every form (decisions, conclusions, token creation)
        for name, path in pages.items():
            response = page.goto(live_server.url + path)
            assert response is not None and response.ok, (path, response and response.status)
            if name in CHARTS:
                page.locator(CHARTS[name]).first.wait_for()
            if name == "tokens":  # with a token listed and a new key shown once
                page.get_by_label("Name").fill(f"Roadmap tool, synced nightly ({width} px)")
                page.get_by_role("button", name="Create token").click()
                page.locator("#new-key").wait_for()
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            if scroll_width > width:
                problems.append(f"{path} is {scroll_width}px wide at a {width}px viewport; "
                                f"sticking out: {page.evaluate(OVERFLOWING_JS, width)}")
        assert page.errors == [], (width, page.errors)
    assert not problems, "\n".join(problems)
