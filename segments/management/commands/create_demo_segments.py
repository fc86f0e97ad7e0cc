from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from events.demo import DEMO_SEGMENTS
from events.models import Dataset
from segments import segment_services
from segments.models import Segment


class Command(BaseCommand):
    help = "Create the demo segments on the demo dataset (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", default="demo")
        parser.add_argument("--dataset", default="Demo events")

    def handle(self, *args: Any, **opts: Any) -> None:
        dataset = Dataset.objects.filter(workspace__slug=opts["workspace"],
                                         name=opts["dataset"]).first()
        if dataset is None:
            raise CommandError("import the demo dataset first")
        if not dataset.outcome_event:
            dataset.outcome_event = "upgrade"
            dataset.save(update_fields=["outcome_event"])
        owner = get_user_model().objects.filter(username="analyst").first()
        created = 0
        for spec in DEMO_SEGMENTS:
            if Segment.objects.filter(dataset=dataset, name=spec["name"]).exists():
                continue
            segment_services.segment_create(dataset=dataset, owner=owner,
                                            kind=spec.get("kind", "rule"), name=spec["name"],
                                            definition=spec["definition"],
                                            assumptions=spec.get("assumptions", ""))
            created += 1
        self.stdout.write(f"{created} demo segments created")
