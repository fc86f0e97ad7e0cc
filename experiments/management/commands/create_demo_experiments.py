"""Demo experiments on the demo data: the planted onboarding A/B test, read per segment, its
learnings (worked on web, not on mobile), and a difference-in-differences example."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.management.workspace import workspace_from_options
from events.models import Dataset
from experiments import services as xs
from experiments.models import Experiment, Hypothesis
from jobs.services import job_run
from segments.models import Segment

EXPERIMENT_ID = "onboarding_checklist_v2"  # as events.demo plants it
ONBOARDING = {"name": "onboarded_7d", "kind": "conversion", "event": "onboarding_completed",
              "window_days": 7}
SESSIONS = {"name": "sessions_14d", "kind": "count", "event": "session_start",
            "window_days": 14}


class Command(BaseCommand):
    help = "Create, analyze and conclude the demo experiments (needs create_demo_plan first)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", default="demo")

    def handle(self, *args: Any, **opts: Any) -> None:
        workspace = workspace_from_options(opts, missing=f"no workspace '{opts['workspace']}'")
        dataset = Dataset.objects.filter(workspace=workspace).order_by("pk").first()
        web = Segment.objects.filter(workspace=workspace, name="Web users").first()
        mobile = Segment.objects.filter(workspace=workspace, name="Mobile users").first()
        hypothesis = Hypothesis.objects.filter(
            workspace=workspace, statement__startswith="An onboarding checklist").first()
        if not (dataset and web and mobile and hypothesis):
            raise CommandError("run create_demo_segments, refresh_segments and create_demo_plan "
                               "first")
        pm = get_user_model().objects.filter(username="analyst").first()
        # Forecast calibration needs a history of concluded forecasts to read.
        call_command("create_demo_history", workspace=workspace.slug, stdout=self.stdout)
        # create_demo_plan designs tests of its own (not run): look for this command's.
        if Experiment.objects.filter(workspace=workspace, name="Onboarding checklist v2").exists():
            self.stdout.write("demo experiments exist already")
            return
        hypothesis.guardrail_metrics = ["sessions_14d"]
        hypothesis.metric = "onboarded_7d"
        hypothesis.save()
        common = {"dataset": dataset, "arms": [{"name": "control", "weight": 0.5},
                                               {"name": "treatment", "weight": 0.5}],
                  "primary_metric": ONBOARDING, "guardrail_metrics": [SESSIONS], "mde": 0.1,
                  "assignment": {"event": "experiment_assigned", "experiment_key": "experiment",
                                 "experiment_id": EXPERIMENT_ID, "arm_key": "arm"}}
        ab = xs.experiment_save(Experiment(hypothesis=hypothesis, name="Onboarding checklist v2",
                                           **common), breakdown=[web, mobile], user=pm)
        xs.experiment_power(experiment=ab)
        xs.experiment_start(experiment=ab, user=pm)
        self._analyze(ab)
        web_row = xs.headline(ab, f"segment:{web.pk}")
        xs.experiment_conclude(
            experiment=ab, outcome="validated", scope=f"segment:{web.pk}", user=pm,
            now_believe="The checklist lifts first-week onboarding on web; mobile users "
                        "onboard as often without it.",
            decision="Ship the checklist on web; do not build the mobile version yet.",
            tags=["onboarding", "activation"],
            # kept only if the rule proposes otherwise for the web segment
            override_reason="The web segment is where the checklist was designed to work; "
                            "its own interval is the one the decision rests on.")
        self.stdout.write(f"A/B: web effect {web_row['absolute']:+.4f} "
                          f"{web_row['absolute_ci']}")

        mobile_h = Hypothesis.objects.create(
            workspace=workspace, statement="The onboarding checklist lifts mobile activation too",
            mechanism="the same visible next step should help on small screens",
            metric="onboarded_7d", expected_lift=0.08, expected_lift_low=0.0,
            expected_lift_high=0.15, basis="the web result", owner=pm)
        mobile_h.segments.add(mobile)
        for inv in workspace.investments.filter(title__startswith="Onboarding checklist (mobile)"):
            # The mobile build rests on its own hypothesis, not on the web result.
            inv.hypotheses.set([mobile_h])
        mob = xs.experiment_save(Experiment(hypothesis=mobile_h, segment=mobile,
                                            name="Onboarding checklist on mobile", **common),
                                 breakdown=[], user=pm)
        xs.experiment_start(experiment=mob, user=pm)
        self._analyze(mob)
        xs.experiment_conclude(
            experiment=mob, outcome="invalidated", user=pm,
            now_believe="Mobile users do not need the checklist: their onboarding is already "
                        "high and did not move.",
            decision="Drop the mobile checklist from the roadmap.", tags=["onboarding", "mobile"],
            # kept only if the rule proposes otherwise (a null result it calls inconclusive)
            override_reason="Mobile onboarding is already near its ceiling: even the top of "
                            "the interval is too small to pay for the build.")

        reports = Hypothesis.objects.create(
            workspace=workspace, statement="Web onboarding changes did not shift weekly reporting",
            mechanism="a guardrail read: onboarding should not crowd out report creation",
            metric="report_created per user-week", expected_lift=0.0, owner=pm)
        reports.segments.add(web)
        did = xs.experiment_save(Experiment(
            hypothesis=reports, name="Reports after the checklist launch (diff-in-diff)",
            kind="did", dataset=dataset, arms=common["arms"],
            primary_metric={"name": "reports_per_week", "kind": "count",
                            "event": "report_created", "window_days": 7},
            quasi={"treated_segment": web.pk, "control_segment": mobile.pk,
                   "launch": ab.result.get("start") or self._experiment_start(),
                   "period_days": 7, "pre_periods": 8, "post_periods": 8}), user=pm)
        self._analyze(did)
        self.stdout.write(f"diff-in-diff estimate {did.result.get('estimate')}")

    def _analyze(self, experiment: Experiment) -> None:
        job = xs.analyze_start(experiment=experiment)
        job_run(job_id=job.pk)
        experiment.refresh_from_db()
        if not experiment.result:
            raise CommandError(f"analysis of '{experiment.name}' failed: "
                               f"{experiment.analysis_job.error if experiment.analysis_job else ''}")

    @staticmethod
    def _experiment_start() -> str:
        import datetime as dt

        from events.demo import DEFAULT_END, EXPERIMENT_START_DAYS_BEFORE_END, HISTORY_DAYS

        start = DEFAULT_END - dt.timedelta(days=HISTORY_DAYS) + dt.timedelta(
            days=HISTORY_DAYS - EXPERIMENT_START_DAYS_BEFORE_END)
        return start.date().isoformat()
