from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.management.workspace import workspace_from_options
from events.models import Dataset
from jobs.models import Job
from jobs.services import job_run
from segments import segment_services


class Command(BaseCommand):
    help = "Refresh every segment of a workspace's datasets (one job per dataset)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", required=True, help="workspace slug")
        parser.add_argument("--async", dest="run_async", action="store_true",
                            help="only queue the jobs for the worker")

    def handle(self, *args: Any, **opts: Any) -> None:
        workspace = workspace_from_options(opts)
        datasets = Dataset.objects.filter(workspace=workspace, version__gt=0)
        if not datasets:
            raise CommandError("the workspace has no dataset with events")
        for dataset in datasets:
            job = segment_services.refresh_start(dataset=dataset)
            if opts["run_async"]:
                self.stdout.write(f"queued refresh of {dataset.name} (job #{job.pk})")
                continue
            job_run(job_id=job.pk)
            job = Job.objects.get(pk=job.pk)
            if job.state != "succeeded":
                raise CommandError(f"refresh of {dataset.name} {job.state}: {job.error}")
            self.stdout.write(f"refreshed {dataset.name}: {job.result}")
