"""Demo behaviour analyses: the planted funnel by device, session paths to a report, monthly retention
and the discovery of the planted early-report behaviour."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from behaviour import services as bs
from events.models import Dataset
from jobs.services import job_run

ANALYSES = [
    ("funnel", {"steps": ["signup", "onboarding_completed", "report_created", "invite_sent",
                          "upgrade"], "window_days": 14, "breakdown": "device"}),
    ("paths", {"start_event": "session_start", "outcome_event": "report_created", "steps": 3}),
    ("retention", {"cohort_by": "signup", "period": "month"}),
    ("discovery", {"outcome_event": "upgrade", "outcome_days": 60}),
]


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
