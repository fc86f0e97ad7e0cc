"""Demo behaviour analyses: the planted funnel by device, session paths to a report, monthly retention,
the discovery of the planted early-report behaviour and weekly trends (reports per active user, by
plan, against the previous period), saved to the insights dashboard."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from behaviour import insights
from behaviour import services as bs
from behaviour.models import SavedInsight
from events.models import Dataset
from jobs.services import job_run

ANALYSES = [
    ("funnel", {"steps": ["signup", "onboarding_completed", "report_created", "invite_sent",
                          "upgrade"], "window_days": 14, "breakdown": "device"}),
    ("paths", {"start_event": "session_start", "outcome_event": "report_created", "steps": 3}),
    ("retention", {"cohort_by": "signup", "period": "month"}),
    ("discovery", {"outcome_event": "upgrade", "outcome_days": 60}),
    ("trends", {"series": [{"event": "any", "measure": "unique_users"},
                           {"event": "report_created", "measure": "count"}],
                "interval": "week", "breakdown_by": "attribute", "breakdown_key": "plan",
                "top": 3, "formula": "B / A", "compare": True}),
]
# The analyses pinned to the workspace's insights dashboard (kind -> name).
SAVED = {"trends": "Reports per weekly active user, by plan"}


class Command(BaseCommand):
    help = "Run the demo behaviour analyses (funnel, paths, retention, discovery)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", default="demo")

    def handle(self, *args: Any, **opts: Any) -> None:
        dataset = Dataset.objects.filter(workspace__slug=opts["workspace"]).order_by("pk").first()
        if dataset is None:
            raise CommandError(f"no dataset in workspace '{opts['workspace']}'")
        for kind, params in ANALYSES:
            analysis = bs.analysis_start(dataset=dataset, kind=kind, params=params)
            if analysis.job_id and not analysis.result:
                job_run(job_id=analysis.job_id)
            analysis.refresh_from_db()
            self.stdout.write(f"{analysis} {'done' if analysis.result else 'failed'}")
            name = SAVED.get(kind)
            if name and analysis.result and not SavedInsight.objects.filter(
                    workspace=dataset.workspace, name=name).exists():
                insights.insight_save(analysis=analysis, name=name)
                self.stdout.write(f"saved '{name}' to the insights dashboard")
