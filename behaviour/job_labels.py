"""What the jobs list says about behaviour's jobs (registered from the app's ``ready()``; the
jobs app imports no domain app): an analysis's inputs by name, with segment names read once
for the whole list (``describe.describe_parts``), and the ``insights`` re-read job with a link
to the dashboard."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from jobs.listing import ResultLink, register_describer, register_result

from .describe import describe_parts, segment_names_for


def analysis_inputs(analyses: list[Any]) -> dict[int, list[tuple[str, str]]]:
    """{analysis pk: its parameters as (label, value) lines}; one query for the segments."""
    from segments.models import Segment

    ids = segment_names_for(a.params for a in analyses)
    names = dict(Segment.objects.filter(pk__in=ids).values_list("pk", "name")) if ids else {}
    return {a.pk: describe_parts(a.params, names) for a in analyses}


def _reread_params(dataset: Any, job: Any) -> list[tuple[str, str]]:
    version = job.params.get("version", dataset.version)
    result = job.result or {}
    lines = [("Dataset", f"{dataset.name} (v{version})")]
    if "insights" in result:
        lines.append(("Insights", f"{result['insights']}: {result.get('current', 0)} current, "
                                  f"{result.get('queued', 0)} queued"))
    return lines


def register() -> None:
    register_describer("behaviour", analysis_inputs)
    register_result("insights", ResultLink(
        "Saved insights re-read after an import", "events.Dataset", "dataset_id",
        "Insights dashboard", lambda slug, r: reverse("insights", args=[slug]), _reread_params))
