"""The metric library (named metrics defined once per workspace) and the per-experiment CSV
template for summary uploads."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from django.db import IntegrityError, transaction

from experiments.data import ExperimentDataError, MetricSpec
from experiments.models import WINDOW_DAYS, Direction, Experiment, Metric, MetricKind, MetricValue
from experiments.services import ExperimentInvalid

METRIC_FIELDS = ("name", "description", "kind", "event", "value", "numerator_event",
                 "numerator_value", "denominator_event", "denominator_value", "window_days",
                 "direction", "unit")


def metric_check(metric: Metric) -> dict[str, Any]:
    """Check a library metric; returns its spec or raises ExperimentInvalid naming the field."""
    name = (metric.name or "").strip()
    if not name:
        raise ExperimentInvalid("name", "give the metric a name")
    if len(name) > 100:
        raise ExperimentInvalid("name", "at most 100 characters")
    metric.name = name
    for field, choices in (("kind", MetricKind), ("value", MetricValue),
                           ("numerator_value", MetricValue), ("denominator_value", MetricValue),
                           ("direction", Direction)):
        if getattr(metric, field) not in choices.values:
            raise ExperimentInvalid(field, f"must be one of {', '.join(choices.values)}")
    window = metric.window_days
    low, high = WINDOW_DAYS
    if isinstance(window, bool) or not isinstance(window, int | float) \
            or not math.isfinite(window) or not low <= window <= high:
        raise ExperimentInvalid("window_days", f"must be a number of days from {low:g} to "
                                               f"{high:g}")
    if metric.kind == MetricKind.RATIO:
        for part in ("numerator", "denominator"):
            if getattr(metric, f"{part}_value") == MetricValue.COUNT \
                    and not getattr(metric, f"{part}_event").strip():
                raise ExperimentInvalid(f"{part}_event", f"a count {part} needs an event name")
    elif (metric.kind == MetricKind.PROPORTION or metric.value == MetricValue.COUNT) \
            and not (metric.event or "").strip():
        raise ExperimentInvalid("event", "name the event this metric counts")
    spec = metric.spec()
    try:
        MetricSpec.from_dict(spec)
    except ExperimentDataError as exc:
        field = exc.field.replace("metric.", "").replace("numerator.event", "numerator_event") \
            .replace("denominator.event", "denominator_event")
        raise ExperimentInvalid(field, exc.message) from None
    return spec


def metric_save(metric: Metric) -> Metric:
    """Validate then create or update a library metric (names are unique per workspace)."""
    metric_check(metric)
    taken = Metric.objects.filter(workspace_id=metric.workspace_id,
                                  name=metric.name).exclude(pk=metric.pk).exists()
    if taken:
        raise ExperimentInvalid("name", f"a metric named '{metric.name}' exists in this "
                                        "workspace")
    try:
        with transaction.atomic():
            metric.save()
    except IntegrityError:
        raise ExperimentInvalid("name", f"a metric named '{metric.name}' exists in this "
                                        "workspace") from None
    return metric


def experiment_use_metrics(experiment: Experiment, primary: Metric,
                           guardrails: list[Metric]) -> None:
    """Copy the picked library metrics' definitions onto an (unsaved) experiment's design."""
    for m in [primary, *guardrails]:
        if m.workspace_id != experiment.workspace_id:
            raise ExperimentInvalid("primary_metric_ref" if m is primary
                                    else "guardrail_metric_refs",
                                    f"metric '{m.name}' is not in this workspace")
    if primary in guardrails:
        raise ExperimentInvalid("guardrail_metric_refs", f"'{primary.name}' is the primary "
                                                         "metric: "
                                                     "it cannot be a guardrail too")
    experiment.primary_metric = primary.spec()
    experiment.guardrail_metrics = [g.spec() for g in guardrails]
    experiment.primary_metric_ref = primary


def experiment_link_metrics(experiment: Experiment, guardrails: list[Metric]) -> None:
    """After the experiment is saved: its guardrails' library links."""
    experiment.guardrail_metric_refs.set(guardrails)


def fields_from_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A stored metric definition (``MetricSpec`` dict) as the library's fields."""
    return {**_definition(spec), "direction": spec.get("direction") or Direction.HIGHER}


def _definition(spec: dict[str, Any]) -> dict[str, Any]:
    window = float(spec.get("window_days") or 7)
    if spec.get("kind") == "ratio":
        num, den = spec.get("numerator") or {}, spec.get("denominator") or {}
        return {"kind": MetricKind.RATIO, "window_days": window,
                "numerator_event": num.get("event") or "",
                "numerator_value": num.get("kind") or MetricValue.REVENUE,
                "denominator_event": den.get("event") or "",
                "denominator_value": den.get("kind") or MetricValue.COUNT}
    if spec.get("kind") == "conversion":
        return {"kind": MetricKind.PROPORTION, "event": spec.get("event") or "",
                "window_days": window}
    return {"kind": MetricKind.MEAN, "event": spec.get("event") or "", "window_days": window,
            "value": MetricValue.REVENUE if spec.get("kind") == "revenue" else MetricValue.COUNT}


def library_metric_for(workspace_id: int, spec: dict[str, Any]) -> Metric | None:
    """The library metric a stored definition is: the one of its name (created when the name
    is free); None when that name holds another definition (the experiment keeps its own)."""
    name = MetricSpec.from_dict(spec).name[:100]
    fields = fields_from_spec(spec)
    found = Metric.objects.filter(workspace_id=workspace_id, name=name).first()
    if found is None:
        return Metric.objects.create(workspace_id=workspace_id, name=name, **fields)
    if all(getattr(found, k) == v for k, v in fields.items()):
        return found
    return None


def experiment_adopt_metrics(experiment: Experiment) -> None:
    """A saved experiment whose metrics were given as definitions (the API's JSON, demo
    commands) links them to the library, so every metric is defined once."""
    if experiment.primary_metric_ref_id is None and experiment.primary_metric:
        ref = library_metric_for(experiment.workspace_id, experiment.primary_metric)
        if ref is not None:
            experiment.primary_metric_ref = ref
            Experiment.objects.filter(pk=experiment.pk).update(primary_metric_ref=ref)
    if experiment.guardrail_metrics and not experiment.guardrail_metric_refs.exists():
        refs = [library_metric_for(experiment.workspace_id, g)
                for g in experiment.guardrail_metrics]
        experiment.guardrail_metric_refs.set([r for r in refs if r is not None])


# ----- the CSV template for summary uploads --------------------------------------------------------
TEMPLATE_HEADER = ("arm", "metric", "scope", "n", "sum", "sum_sq")


def summary_template(experiment: Experiment) -> str:
    """A CSV with the header the summary upload reads and one row per arm x metric (scope
    "all"), names filled in and the numbers left for the team to enter."""
    names = [MetricSpec.from_dict(experiment.primary_metric or {}, "primary_metric").name]
    names += [MetricSpec.from_dict(g, f"guardrail_metrics[{i}]").name
              for i, g in enumerate(experiment.guardrail_metrics or [])]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TEMPLATE_HEADER)
    for metric in names:
        for arm in experiment.arm_names:
            writer.writerow([arm, metric, "all", "", "", ""])
    return out.getvalue()
