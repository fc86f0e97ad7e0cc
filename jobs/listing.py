"""The jobs list as people read it: what each job is, with its parameters by name, how long it
waited and ran, and a link to its result.

``RESULTS`` is the one place that maps a job kind and its payload (``Job.params``) to the
record it works on and the page that shows its result. The jobs app imports no domain app
(the layers contract), so records are looked up by their "app_label.Model" name; each kind's
records are read in one query for the whole list. A domain app adds what only it can say from
its ``AppConfig.ready()``: a kind of its own (``register_result``) and the parameters of its
records by name (``register_describer``, e.g. behaviour's analysis inputs with segment names),
called once per kind with all of the list's records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.urls import reverse
from django.utils import timezone

from .models import Job, JobState


@dataclass(frozen=True)
class ResultLink:
    """How a job kind names its work and where its result is shown."""

    title: str  # the kind in words
    model: str  # "app_label.Model" of the record the payload names
    param: str  # the payload key holding that record's id
    page: str  # what the link opens, in words
    url: Callable[[str, Any], str | None]  # (workspace slug, record) -> the result's address
    params: Callable[[Any, Job], list[tuple[str, str]]]  # (record, job) -> parameters by name
    related: tuple[str, ...] = ()  # select_related for the params


def _dataset(d: Any, job: Job) -> str:
    """The dataset with the version the job worked on (its input hash ends ":v<version>"),
    not the version it has now."""
    tail = job.input_hash.rsplit(":v", 1)
    version = tail[1] if len(tail) == 2 and tail[1].isdigit() else d.version
    return f"{d.name} (v{version})"


RESULTS: dict[str, ResultLink] = {
    "import": ResultLink(
        "Import", "events.Import", "import_id", "Dataset page",
        lambda slug, r: reverse("dataset", args=[slug, r.dataset_id]),
        lambda r, j: [("Dataset", r.dataset.name), ("Events file", r.events_name),
                   ("Users file", r.users_name), ("Rows added", f"{r.rows_added:,}")],
        ("dataset",)),
    "refresh": ResultLink(
        "Segment refresh", "events.Dataset", "dataset_id", "Segment list",
        lambda slug, r: reverse("segments", args=[slug]),
        lambda r, j: [("Dataset", _dataset(r, j)),
                      ("Started", "automatically, after an import"
                       if j.params.get("trigger") == "import" else "")]),
    "clusters": ResultLink(
        "Cluster suggestions", "events.Dataset", "dataset_id", "Cluster suggestions",
        lambda slug, r: f"{reverse('clusters', args=[slug])}?dataset={r.pk}",
        lambda r, j: [("Dataset", _dataset(r, j))]),
    "behaviour": ResultLink(
        "Behaviour analysis", "behaviour.BehaviourAnalysis", "analysis_id", "Analysis page",
        lambda slug, r: reverse("analysis", args=[slug, r.pk]),
        lambda r, j: [("Analysis", f"{r.get_kind_display()} #{r.pk}"),
                   ("Dataset", f"{r.dataset.name} (v{r.dataset_version})")],
        ("dataset",)),
    "optimize": ResultLink(
        "Optimizer run", "planner.OptimizationRun", "run_id", "Run page",
        lambda slug, r: reverse("run", args=[slug, r.pk]),
        lambda r, j: [("Scenario", r.scenario.name), ("Run", f"#{r.pk}")],
        ("scenario",)),
    "experiment_analyze": ResultLink(
        "Experiment analysis", "experiments.Experiment", "experiment_id", "Experiment page",
        lambda slug, r: reverse("experiment", args=[slug, r.pk]),
        lambda r, j: [("Experiment", r.name)]),
    # The payload also holds the erased user's id: never shown.
    "erase": ResultLink(
        "Erasure of one user's data", "events.Erasure", "erasure_id", "Dataset page",
        lambda slug, r: reverse("dataset", args=[slug, r.dataset_id]) if r.dataset_id else None,
        lambda r, j: [("Dataset", r.dataset_name), ("Erasure", f"#{r.pk}")]),
}


# kind -> (the list's records of that kind) -> {record pk: [(label, value), ...]}
Describer = Callable[[list[Any]], dict[int, list[tuple[str, str]]]]
DESCRIBERS: dict[str, Describer] = {}


def register_result(kind: str, link: ResultLink) -> None:
    """A domain app's job kind in the list (from its ``AppConfig.ready()``)."""
    RESULTS[kind] = link


def register_describer(kind: str, describer: Describer) -> None:
    """A domain app names its records' parameters (from its ``AppConfig.ready()``); the lines
    follow the kind's own ``params``."""
    DESCRIBERS[kind] = describer


def duration_text(seconds: float) -> str:
    """4.2 -> '4.2 s'; 192 -> '3 min 12 s'; 3900 -> '1 h 5 min' (no rounding to zero: a
    duration under 0.1 s says so)."""
    if seconds < 0.1:
        return "< 0.1 s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        minutes, rest = divmod(int(round(seconds)), 60)
        return f"{minutes} min {rest} s"
    hours, rest = divmod(int(round(seconds)), 3600)
    return f"{hours} h {rest // 60} min"


def timing_text(job: Job, now: dt.datetime | None = None) -> str:
    """'ran 4.2 s, waited 0.3 s'; 'running for 2.0 s, waited 0.3 s'; 'waiting for 1.5 s'."""
    now = now or timezone.now()
    if job.started_at is None:
        if job.state == JobState.QUEUED:
            return f"waiting for {duration_text((now - job.created_at).total_seconds())}"
        return "never started"
    waited = duration_text(max((job.started_at - job.created_at).total_seconds(), 0.0))
    if job.finished_at is not None:
        ran = duration_text(max((job.finished_at - job.started_at).total_seconds(), 0.0))
        return f"ran {ran}, waited {waited}"
    return f"running for {duration_text((now - job.started_at).total_seconds())}, waited {waited}"


@dataclass
class JobRow:
    job: Job
    title: str
    timing: str
    params: list[tuple[str, str]] = field(default_factory=list)
    link: str | None = None
    link_label: str = ""


def _fallback_params(params: dict[str, Any]) -> list[tuple[str, str]]:
    """A kind without an entry in RESULTS: its payload keys as words (ids of users left out)."""
    return [(key.replace("_", " ").capitalize(), str(value)) for key, value in params.items()
            if "user" not in key]


def job_rows(jobs: Iterable[Job], slug: str, now: dt.datetime | None = None) -> list[JobRow]:
    """The list's rows: one query per job kind for the records the payloads name."""
    jobs = list(jobs)
    now = now or timezone.now()
    records: dict[str, dict[int, Any]] = {}
    for kind, spec in RESULTS.items():
        ids = {int(j.params[spec.param]) for j in jobs
               if j.kind == kind and str(j.params.get(spec.param, "")).isdigit()}
        if ids:
            model = apps.get_model(spec.model)
            rows = model.objects.select_related(*spec.related) if spec.related else model.objects
            records[kind] = rows.in_bulk(ids)
    described: dict[str, dict[int, list[tuple[str, str]]]] = {
        kind: DESCRIBERS[kind](list(found.values()))
        for kind, found in records.items() if kind in DESCRIBERS and found}
    rows = []
    for job in jobs:
        spec = RESULTS.get(job.kind)
        row = JobRow(job=job, title=spec.title if spec else job.kind.replace("_", " ").capitalize(),
                     timing=timing_text(job, now))
        if spec is None:
            row.params = _fallback_params(job.params)
        else:
            record = records.get(job.kind, {}).get(_as_int(job.params.get(spec.param)))
            if record is None:
                row.params = [(spec.param.replace("_id", "").capitalize(),
                               f"#{job.params.get(spec.param)} (deleted)")]
            else:
                lines = spec.params(record, job) + described.get(job.kind, {}).get(record.pk, [])
                row.params = [(k, v) for k, v in lines if v]
                # Also while running or after a failure: the page shows progress or the error.
                row.link = spec.url(slug, record)
                row.link_label = spec.page
        rows.append(row)
    return rows


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
