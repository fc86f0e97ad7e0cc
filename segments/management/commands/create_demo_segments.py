from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from events.models import Dataset
from segments import segment_services
from segments.models import Segment

# The demo data's planted truths, as segments a council would define.
DEMO_SEGMENTS: list[dict[str, Any]] = [
    {"name": "Team plan", "definition": {"attribute": "plan", "op": "eq", "value": "team"},
     "assumptions": "plan at signup; upgrades later are not counted here"},
    {"name": "Pro plan", "definition": {"attribute": "plan", "op": "eq", "value": "pro"}},
    {"name": "Free plan", "definition": {"attribute": "plan", "op": "eq", "value": "free"}},
    {"name": "Partner channel",
     "definition": {"attribute": "acquisition_channel", "op": "eq", "value": "partner"}},
    {"name": "Early report creators",
     "definition": {"all": [{"attribute": "plan", "op": "eq", "value": "free"},
                            {"event": "report_created", "min_count": 2,
                             "window": {"from_signup_days": [0, 7]}}]},
     "assumptions": "2+ reports in the first week; planted to triple the odds of upgrading"},
    {"name": "Web users", "definition": {"attribute": "device", "op": "eq", "value": "web"}},
    {"name": "Mobile users",
     "definition": {"attribute": "device", "op": "in", "value": ["ios", "android"]}},
    {"name": "Champions (RFM)", "kind": "rfm", "definition": {"rfm": "Champions"}},
    {"name": "At risk (RFM)", "kind": "rfm", "definition": {"rfm": "At risk"}},
]


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
