from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from accounts.management.workspace import workspace_from_options
from events.models import Dataset
from experiments import services as experiment_services
from experiments.models import Evidence, Experiment, Hypothesis
from jobs.services import job_run
from planner import roadmap as roadmaps
from planner import services
from planner.models import (
    Investment,
    MappingKind,
    OptimizationRun,
    RoadmapVersion,
    Scenario,
    ValueModel,
)
from segments.models import Segment

HYPOTHESES = [
    ("Early report creators upgrade more when nudged to share a report",
     "Early report creators", "sharing exposes the team plan's collaboration value", 0.15,
     (0.05, 0.25), Evidence.OBSERVATIONAL),
    ("Team-plan accounts expand with admin analytics", "Team plan",
     "admins who see usage justify more seats", 0.08, (0.02, 0.14), Evidence.ASSUMPTION),
    ("An onboarding checklist lifts web activation", "Web users",
     "a visible next step reduces first-week drop-off", 0.10, (0.06, 0.14), Evidence.EXPERIMENT),
    ("Partner-sourced users respond to co-branded templates", "Partner channel",
     "partners' templates match their customers' workflows", 0.12, (0.0, 0.25),
     Evidence.ASSUMPTION),
]
# The checklist's metric is a proxy (7-day onboarding), not value: a measured value model
# maps it to 90-day LTV on each platform's own users.
CHECKLIST_METRIC = "onboarded_7d"
ONBOARDING_SPEC = {"name": CHECKLIST_METRIC, "kind": "conversion",
                   "event": "onboarding_completed", "window_days": 7}
VALUE_MODELS = [  # name, segment, investments
    ("7-day onboarding -> 90-day LTV (web)", "Web users", ["Onboarding checklist v2 (web)"]),
    ("7-day onboarding -> 90-day LTV (mobile)", "Mobile users",
     ["Onboarding checklist (mobile)"]),
]
# title, roadmap, cost, effort, segment, hypothesis index, value basis, extra
INVESTMENTS: list[tuple[str, str, float, dict[str, float], str, int | None, str, dict]] = [
    ("Share-a-report flow", "core", 6000, {"growth": 2, "web": 1}, "Early report creators", 0,
     "ltv_90", {}),
    ("Admin analytics dashboard", "core", 13000, {"platform": 3, "web": 2}, "Team plan", 1,
     "predicted_clv", {}),
    ("Onboarding checklist v2 (web)", "core", 4500, {"growth": 1, "web": 1}, "Web users", 2,
     "ltv_90", {}),
    ("Onboarding checklist (mobile)", "experimental", 4000, {"mobile": 2}, "Mobile users", 2,
     "ltv_90", {"assumed_lift": 0.02}),
    ("Co-branded partner templates", "experimental", 3000, {"growth": 1}, "Partner channel", 3,
     "ltv_90", {}),
    ("Win-back emails for at-risk users", "experimental", 2000, {"growth": 1},
     "At risk (RFM)", None, "ltv_90", {"assumed_lift": 0.05}),
    ("Champions referral programme", "core", 7500, {"growth": 2}, "Champions (RFM)", None,
     "ltv_90", {"assumed_lift": 0.06}),
    ("Offline mode for field teams", "niche", 3500, {"mobile": 2}, "Mobile users", None,
     "ltv_90", {"assumed_lift": 0.01}),
    ("SSO for enterprise pilots", "niche", 2500, {"platform": 1}, "Team plan", None,
     "predicted_clv", {"assumed_lift": 0.03}),
    ("Pricing page redesign A", "core", 3500, {"web": 1}, "Free plan", None, "ltv_90",
     {"assumed_lift": 0.05, "exclusion_group": "pricing page"}),
    ("Pricing page redesign B", "core", 5500, {"web": 2}, "Free plan", None, "ltv_90",
     {"assumed_lift": 0.07, "exclusion_group": "pricing page"}),
]


# Designed (not yet run) tests of the open hypotheses: their power calculations and costs give
# each its value of sample information on the run page. hypothesis index, name, metric, mde, cost
DESIGNED_TESTS = [
    (0, "Share-a-report nudge test", {"name": "invite_14d", "kind": "conversion",
                                      "event": "invite_sent", "window_days": 14}, 0.15, 1_500),
    (1, "Admin analytics pilot", {"name": "sessions_14d", "kind": "count",
                                  "event": "session_start", "window_days": 14}, 0.1, 2_500),
    (3, "Partner templates test", {"name": "reports_14d", "kind": "conversion",
                                   "event": "report_created", "window_days": 14}, 0.2, 800),
]


class Command(BaseCommand):
    help = "Create demo hypotheses, investments and a scenario, and run the optimizer."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", default="demo")

    def handle(self, *args: Any, **opts: Any) -> None:
        workspace = workspace_from_options(opts, missing="run setup_demo first")
        segments = {s.name: s for s in Segment.objects.filter(workspace=workspace)}
        owner = get_user_model().objects.filter(username="analyst").first()
        hyps = []
        for statement, seg, mechanism, lift, (lo, hi), evidence in HYPOTHESES:
            hyp, _ = Hypothesis.objects.get_or_create(
                workspace=workspace, statement=statement,
                defaults={"mechanism": mechanism, "expected_lift": lift,
                          "metric": CHECKLIST_METRIC if "checklist" in statement else "ltv_90",
                          "expected_lift_low": lo, "expected_lift_high": hi,
                          "evidence": evidence, "owner": owner,
                          "basis": "segment signals and the team's judgement"})
            if seg in segments:
                hyp.segments.add(segments[seg])
            hyps.append(hyp)
        created = {}
        for title, roadmap, cost, effort, seg, hyp, basis, extra in INVESTMENTS:
            inv, _ = Investment.objects.get_or_create(
                workspace=workspace, title=title,
                defaults={"roadmap": roadmap, "cost": cost, "effort": effort, "owner": owner,
                          "value_basis": basis, "adoption": 0.3,
                          "duration_quarters": 3 if title.startswith("Admin") else
                          2 if effort.get("mobile", 0) > 1 else 1, **extra})
            if seg in segments:
                inv.target_segments.add(segments[seg])
            if hyp is not None:
                inv.hypotheses.add(hyps[hyp])
            created[title] = inv
        created["Share-a-report flow"].depends_on.add(created["Onboarding checklist v2 (web)"])
        for name, seg, titles in VALUE_MODELS:
            if seg not in segments:
                continue
            model = ValueModel.objects.filter(workspace=workspace, name=name).first()
            if model is None:
                model = services.value_model_save(value_model=ValueModel(
                    workspace=workspace, name=name, metric=CHECKLIST_METRIC,
                    kind=MappingKind.MEASURED, segment=segments[seg],
                    metric_spec=ONBOARDING_SPEC, value_days=90))
                self.stdout.write(f"value model '{name}': elasticity {model.mid:.3f} "
                                  f"[{model.low:.3f}, {model.high:.3f}] on "
                                  f"{model.fit['n_users']} users")
            for title in titles:
                Investment.objects.filter(pk=created[title].pk).update(value_model=model)
        services.workspace_revalue(workspace=workspace, reason="demo setup")
        self._designed_tests(workspace, hyps, segments, owner)
        quarters = ["2027Q1", "2027Q2", "2027Q3", "2027Q4"]
        capacity = {f"{team}|{q}": cap for q in quarters
                    for team, cap in {"growth": 2, "web": 2, "platform": 1, "mobile": 1}.items()}
        scenario, _ = Scenario.objects.get_or_create(
            workspace=workspace, name="2027 plan",
            defaults={"budget": 30_000, "capacity": capacity, "quarters": quarters,
                      "schedule": True, "robust_draws": 100, "frontier_points": 10})
        Scenario.objects.get_or_create(
            workspace=workspace, name="2027 lean",
            defaults={"budget": 18_000, "capacity": capacity, "quarters": quarters,
                      "robust_draws": 0, "frontier_points": 10})
        for sc in Scenario.objects.filter(workspace=workspace):
            run = services.run_start(scenario=sc)
            if run.job_id and run.finished_at is None:
                job_run(job_id=run.job_id)
            run = OptimizationRun.objects.get(pk=run.pk)
            self.stdout.write(f"scenario '{sc.name}': {run.status}, value {run.objective or 0:,.0f}"
                              f", {run.allocations.filter(chosen=True).count()} items chosen")
            voi = (run.robust or {}).get("voi") or {}
            if voi and "error" not in voi:
                self.stdout.write(f"  value of information: EVPI {voi['evpi']['value']:,.0f} "
                                  f"+- {voi['evpi']['se']:,.0f}, {len(voi['experiments'])} "
                                  "experiment(s) valued")

        self._adopt(workspace)

    def _adopt(self, workspace: Any) -> None:
        """The council adopts the '2027 plan' run as roadmap v1 and approves its two most
        valuable items (once: a workspace that has a roadmap keeps it)."""
        if RoadmapVersion.objects.filter(workspace=workspace).exists():
            return
        run = (OptimizationRun.objects.filter(workspace=workspace, scenario__name="2027 plan",
                                              finished_at__isnull=False)
               .order_by("-created_at").first())
        if run is None or roadmaps.run_is_stale(run):
            return
        council = get_user_model().objects.filter(username="council").first()
        version = roadmaps.roadmap_adopt(run=run, user=council, note="demo: the 2027 plan")
        for item in version.items.order_by("-value")[:2]:
            roadmaps.roadmap_decide(version=version, investment=item.investment,
                                   verdict="approve", rationale="highest value in the plan",
                                   user=council)
        self.stdout.write(f"roadmap v{version.number}: {version.items.count()} items, "
                          "2 approved")

    def _designed_tests(self, workspace: Any, hyps: list[Hypothesis], segments: dict[str, Any],
                        owner: Any) -> None:
        dataset = Dataset.objects.filter(workspace=workspace).order_by("pk").first()
        if dataset is None:
            return
        for index, name, metric, mde, cost in DESIGNED_TESTS:
            if Experiment.objects.filter(workspace=workspace, name=name).exists():
                continue
            hyp = hyps[index]
            segment = hyp.segments.first()
            x = experiment_services.experiment_save(Experiment(
                hypothesis=hyp, name=name, dataset=dataset, segment=segment, cost=cost,
                arms=[{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
                primary_metric=metric, mde=mde,
                assignment={"event": "experiment_assigned", "experiment_key": "experiment",
                            "experiment_id": name.lower().replace(" ", "_"), "arm_key": "arm"}),
                user=owner)
            try:
                experiment_services.experiment_power(experiment=x)
            except experiment_services.ExperimentInvalid as exc:
                self.stdout.write(f"  {name}: no power calculation ({exc})")
