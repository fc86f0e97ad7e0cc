"""Hypotheses' workflow, experiments (design, data, analysis job) and learnings.

The statistics are pure (``experiments.stats``, ``experiments.data``); this module loads the
data, checks input, stores results and keeps the history: status changes, learnings, and the
investments' value estimates that a concluded result moves.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from django.db import transaction
from django.utils import timezone

from events.errors import FieldError
from events.models import Dataset
from events.services import get_store, load_user_events
from experiments import bayes, readout, selectors, stats, timeline, verdict
from experiments.data import (
    ExperimentDataError,
    MetricSpec,
    RandomizedSettings,
    Scope,
    analyze_did,
    analyze_its,
    analyze_randomized,
    analyze_summaries,
    assignment_from_events,
    assignment_from_table,
    baseline,
    segment_traffic,
)
from experiments.models import (
    ALPHA,
    CHANCE_TO_WIN,
    CONCLUDED,
    CUPED_PRE_DAYS,
    MAX_ARMS,
    MDE,
    MEASURED_LIFT,
    PERIOD_DAYS,
    POST_PERIODS,
    POWER,
    PRE_PERIODS,
    PRIOR_MEAN,
    PRIOR_VARIANCE,
    RISK_TOLERANCE,
    SUMMARY_N,
    SUMMARY_SUM,
    SUMMARY_SUM_SQ,
    TRANSITIONS,
    ArmSummary,
    DataSource,
    DecisionRule,
    Evidence,
    Experiment,
    ExperimentKind,
    ExperimentStatus,
    Hypothesis,
    HypothesisStatus,
    HypothesisStatusChange,
    Learning,
    Outcome,
    VerdictRead,
)
from integrations import webhooks
from jobs.services import Job, JobFailed, job_create, job_handler, job_progress
from segments.models import Segment
from segments.segment_services import segment_members_mask
from segments.templatetags.humanize_extras import pvalue

MAX_ASSIGNMENT_ROWS = 20_000_000


# Called with a hypothesis whose lift, evidence or status changed, and why (inside the
# writing transaction where there is one): the planner registers the re-valuation of the
# investments resting on it (from its AppConfig.ready()), so this app never imports it.
HYPOTHESIS_CHANGED: list[Callable[[Hypothesis, str], None]] = []


def hypothesis_changed(hypothesis: Hypothesis, *, reason: str) -> None:
    """Tell the registered listeners (the planner's re-valuation) that a hypothesis changed."""
    for callback in HYPOTHESIS_CHANGED:
        callback(hypothesis, reason)


class ExperimentInvalid(FieldError):
    """Bad experiment input: ``field`` names where, ``message`` says what."""


# ----- hypotheses ------------------------------------------------------------------------------
def hypothesis_transition(*, hypothesis: Hypothesis, to_status: str, user: object | None = None,
                          note: str = "") -> Hypothesis:
    """Move a hypothesis along proposed -> prioritized -> testing -> concluded, recorded."""
    if to_status not in HypothesisStatus.values:
        raise ExperimentInvalid("status", f"unknown status '{to_status}'")
    with transaction.atomic():
        current = Hypothesis.objects.select_for_update().get(pk=hypothesis.pk)
        if to_status == current.status:
            return current
        allowed = TRANSITIONS.get(current.status, ())
        if to_status not in allowed:
            raise ExperimentInvalid(
                "status", f"a {current.status} hypothesis can move to "
                f"{', '.join(allowed) or 'nothing'}, not to {to_status}")
        HypothesisStatusChange.objects.create(hypothesis=current, from_status=current.status,
                                              to_status=to_status, changed_by=_user(user),
                                              note=note[:2000])
        current.status = to_status
        current.save(update_fields=["status", "updated_at"])
    hypothesis.status = to_status
    return current


def _walk_to(hypothesis: Hypothesis, target: str, user: object | None, note: str) -> Hypothesis:
    """Take the workflow's steps from the current status to ``target`` (each one recorded)."""
    path = {HypothesisStatus.PROPOSED: [HypothesisStatus.PRIORITIZED, HypothesisStatus.TESTING],
            HypothesisStatus.PRIORITIZED: [HypothesisStatus.TESTING]}.get(hypothesis.status, [])
    if hypothesis.status in CONCLUDED and target != HypothesisStatus.TESTING:
        path = [HypothesisStatus.TESTING]
    for step in path:
        if hypothesis.status == target:
            break
        hypothesis = hypothesis_transition(hypothesis=hypothesis, to_status=step, user=user,
                                           note=note)
    if hypothesis.status != target:
        hypothesis = hypothesis_transition(hypothesis=hypothesis, to_status=target, user=user,
                                           note=note)
    return hypothesis


def _user(user: object | None) -> Any:
    return user if getattr(user, "is_authenticated", False) else None


# ----- experiments: validation -------------------------------------------------------------------
def _metrics(primary: Any, guardrails: Any) -> list[MetricSpec]:
    try:
        out = [MetricSpec.from_dict(primary or {}, "primary_metric")]
        if not isinstance(guardrails or [], list):
            raise ExperimentInvalid("guardrail_metrics", "must be a list of metrics")
        out += [MetricSpec.from_dict(g, f"guardrail_metrics[{i}]")
                for i, g in enumerate(guardrails or [])]
    except ExperimentDataError as exc:
        raise ExperimentInvalid(exc.field, exc.message) from None
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        raise ExperimentInvalid("guardrail_metrics", "metric names must be distinct")
    return out


def _check_arms(arms: Any) -> None:
    if not isinstance(arms, list) or len(arms) < 2:
        raise ExperimentInvalid("arms", "give at least two arms; the first is the control")
    if len(arms) > MAX_ARMS:
        raise ExperimentInvalid("arms", f"at most {MAX_ARMS} arms")
    names = []
    for i, arm in enumerate(arms):
        if not isinstance(arm, dict) or not str(arm.get("name") or "").strip():
            raise ExperimentInvalid(f"arms[{i}]", 'each arm needs a name: {"name": ..., '
                                                  '"weight": ...}')
        if isinstance(arm.get("weight"), bool):
            raise ExperimentInvalid(f"arms[{i}].weight", "must be a number greater than 0")
        weight = ExperimentInvalid.as_float(arm.get("weight", 0), f"arms[{i}].weight")
        if not math.isfinite(weight) or weight <= 0:
            raise ExperimentInvalid(f"arms[{i}].weight", "must be greater than 0")
        names.append(str(arm["name"]).strip())
    if len(set(names)) != len(names):
        raise ExperimentInvalid("arms", "arm names must be distinct")
    total = sum(float(a["weight"]) for a in arms)
    if abs(total - 1.0) > 1e-6:
        raise ExperimentInvalid("arms", f"the weights must add up to 1 (they add up to {total:g})")


def experiment_check(experiment: Experiment) -> list[MetricSpec]:
    """Validate an experiment's design; raises ExperimentInvalid naming the field."""
    _check_arms(experiment.arms)
    metrics = _metrics(experiment.primary_metric, experiment.guardrail_metrics)
    for name, (low, high) in (("alpha", ALPHA), ("power", POWER), ("mde", MDE),
                              ("cuped_pre_days", CUPED_PRE_DAYS)):
        value = getattr(experiment, name)
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not low <= value <= high:
            raise ExperimentInvalid(name, f"must be a number from {low:g} to {high:g}")
    ws = experiment.workspace_id
    for seg in ([experiment.segment] if experiment.segment_id else []):
        if seg.workspace_id != ws:
            raise ExperimentInvalid("segment", f"segment {seg.pk} is not in this workspace")
    if experiment.dataset_id and experiment.dataset.workspace_id != ws:
        raise ExperimentInvalid("dataset", f"dataset {experiment.dataset_id} is not in this "
                                           "workspace")
    if experiment.hypothesis.workspace_id != ws:
        raise ExperimentInvalid("hypothesis", "the hypothesis is not in this workspace")
    needs_data = not (experiment.kind == ExperimentKind.AB
                      and experiment.data_source == DataSource.SUMMARY)
    if needs_data and experiment.dataset_id is None:
        raise ExperimentInvalid("dataset", "choose the dataset whose events the analysis reads")
    if experiment.kind == ExperimentKind.AB and experiment.data_source == DataSource.EVENTS:
        a = experiment.assignment or {}
        if not a.get("event"):
            raise ExperimentInvalid("assignment.event", "name the exposure event that records "
                                                        "each user's arm")
    if experiment.kind in (ExperimentKind.DID, ExperimentKind.ITS):
        q = experiment.quasi or {}
        try:
            pd.Timestamp(q.get("launch"))
            if pd.isna(pd.Timestamp(q.get("launch"))):
                raise ValueError
        except (TypeError, ValueError):
            raise ExperimentInvalid("quasi.launch", "give the launch date (ISO 8601)") from None
        keys = ("treated_segment", "control_segment") if experiment.kind == ExperimentKind.DID \
            else ("treated_segment",)
        for key in keys:
            seg = Segment.objects.filter(pk=q.get(key), workspace_id=ws).first() \
                if str(q.get(key, "")).isdigit() or isinstance(q.get(key), int) else None
            if seg is None:
                raise ExperimentInvalid(f"quasi.{key}", "choose a segment of this workspace")
        if experiment.kind == ExperimentKind.DID and \
                int(q["treated_segment"]) == int(q["control_segment"]):
            raise ExperimentInvalid("quasi.control_segment", "must differ from the treated segment")
        for key, default, (low, high) in (("period_days", 7, PERIOD_DAYS),
                                          ("pre_periods", 8, PRE_PERIODS),
                                          ("post_periods", 8, POST_PERIODS)):
            value = q.get(key, default)
            whole = key != "period_days"
            number = isinstance(value, int | float) and not isinstance(value, bool) \
                and math.isfinite(value)
            if not number or not low <= value <= high or (whole and value != int(value)):
                kind = "a whole number" if whole else "a number"
                raise ExperimentInvalid(f"quasi.{key}", f"must be {kind} from {low:g} to {high:g}")
    return metrics


def experiment_save(experiment: Experiment, breakdown: list[Segment] | None = None,
                    user: object | None = None) -> Experiment:
    """Validate then create or update; the breakdown segments must share the workspace."""
    experiment.workspace_id = experiment.hypothesis.workspace_id
    experiment_check(experiment)
    for seg in breakdown or []:
        if seg.workspace_id != experiment.workspace_id:
            raise ExperimentInvalid("breakdown_segments", f"segment {seg.pk} is not in this "
                                                          "workspace")
    if experiment.pk is None and user is not None:
        experiment.created_by = _user(user)
    from experiments.metric_services import experiment_adopt_metrics

    with transaction.atomic():
        experiment.save()
        if breakdown is not None:
            experiment.breakdown_segments.set(breakdown)
        experiment_adopt_metrics(experiment)
    return experiment


def experiment_start(*, experiment: Experiment, user: object | None = None) -> Experiment:
    """Mark the experiment running and its hypothesis as being tested."""
    experiment_check(experiment)
    _walk_to(experiment.hypothesis, HypothesisStatus.TESTING, user,
             f"experiment '{experiment.name}' started")
    if experiment.status == ExperimentStatus.DESIGN:
        experiment.status = ExperimentStatus.RUNNING
        experiment.save(update_fields=["status", "updated_at"])
    return experiment


# ----- design: power and duration ----------------------------------------------------------------
def experiment_power(*, experiment: Experiment, baseline_mean: float | None = None,
                     baseline_sd: float | None = None, daily_traffic: float | None = None,
                     cuped_r2: float = 0.0, cluster_size: float = 1.0,
                     icc: float = 0.0) -> dict[str, Any]:
    """Sample size per arm and expected duration; baseline and traffic measured from the
    target segment when not given."""
    metric = _metrics(experiment.primary_metric, [])[0]
    if metric.binary and baseline_sd is not None:
        raise ExperimentInvalid("baseline_sd", f"a {metric.kind} metric's spread follows from "
                                               "its rate: leave baseline_sd out")
    if baseline_sd is not None and not baseline_sd > 0:
        raise ExperimentInvalid("baseline_sd", "must be greater than 0")
    if metric.kind == "ratio" and (baseline_mean is None or baseline_sd is None):
        raise ExperimentInvalid("baseline_mean", "a ratio metric's baseline is not measured "
                                                 "here: give baseline_mean and baseline_sd")
    measured: dict[str, Any] = {}
    if (baseline_mean is None or daily_traffic is None) and experiment.dataset_id:
        ue = load_user_events(experiment.dataset)
        as_of = int(ue.time.max()) + 1 if ue.n_events else 0
        mask = (_segment_mask(experiment.segment, ue) if experiment.segment_id
                else np.ones(ue.n_users, bool))
        base = baseline(ue, mask, metric, as_of)
        traffic = segment_traffic(ue, mask, as_of)
        measured = {"baseline": base, "daily_traffic": traffic,
                    "source": f"segment '{experiment.segment.name}'" if experiment.segment_id
                    else "all users of the dataset",
                    "note": "baseline: the metric measured from signup for members with a full "
                            "window; traffic: members first seen in the last 28 days / 28"}
        if baseline_mean is None:
            baseline_mean = base["mean"]
            baseline_sd = base["sd"] if baseline_sd is None else baseline_sd
        if daily_traffic is None:
            daily_traffic = traffic
    if baseline_mean is None:
        raise ExperimentInvalid("baseline_mean", "give the baseline (or a dataset to measure it)")
    try:
        result = stats.sample_size(
            baseline_mean=float(baseline_mean),
            baseline_sd=None if metric.binary or baseline_sd is None else float(baseline_sd),
            mde_relative=experiment.mde, alpha=experiment.alpha, power=experiment.power,
            arms=len(experiment.arms), allocation=experiment.weights, binary=metric.binary,
            cuped_r2=cuped_r2, cluster_size=cluster_size, icc=icc,
            daily_traffic=daily_traffic if daily_traffic else None)
    except ValueError as exc:
        raise ExperimentInvalid("design", str(exc)) from None
    design = {"n_per_arm": result.n_per_arm, "total_n": result.total_n, "days": result.days,
              "arm_n": list(result.arm_n), "design_effect": result.design_effect,
              "effective_mde": result.effective_mde, "notes": list(result.notes),
              "inputs": {"baseline_mean": baseline_mean, "baseline_sd": baseline_sd,
                         "daily_traffic": daily_traffic, "mde": experiment.mde,
                         "alpha": experiment.alpha, "power": experiment.power,
                         "cuped_r2": cuped_r2, "cluster_size": cluster_size, "icc": icc},
              "measured": measured}
    design["ways_forward"] = readout.ways_forward(design, binary=metric.binary,
                                                  weights=experiment.weights,
                                                  alpha=experiment.alpha, power=experiment.power)
    experiment.design = stats.jsonable(design)
    experiment.save(update_fields=["design", "updated_at"])
    return experiment.design


# ----- data: assignments and summaries -----------------------------------------------------------
def _assignments_path(experiment: Experiment) -> str:
    """In the store (local or URL): any worker reads it."""
    return get_store().file_path("experiments",
                                 f"experiment-{experiment.pk}-assignments.parquet")


def _pseudonymize_like_dataset(experiment: Experiment, table: pd.DataFrame) -> None:
    """A pseudonymized dataset holds pseudonyms: an uploaded table's raw ids are hashed with
    the same key (ids already pseudonyms stay), so assignments match the events."""
    from events import privacy
    from events.ingest import ImportRejected
    from events.models import IdMode

    if experiment.dataset is None or experiment.dataset.id_mode != IdMode.PSEUDONYMIZED:
        return
    try:
        key = privacy.pseudonymization_key()
    except ImportRejected as exc:
        raise ExperimentInvalid("file", "the dataset is pseudonymized: " + exc.message) from None
    ids = table["user_id"]
    done = ids.str.fullmatch(privacy.PSEUDONYM_RE.pattern[1:-1]).fillna(False).to_numpy(bool)
    hashed = privacy.pseudonymize(ids, key).to_numpy(zero_copy_only=False)
    table["user_id"] = np.where(done, ids.to_numpy(dtype=object), hashed)


def _read_csv(data: bytes, filename: str) -> pd.DataFrame:
    """An uploaded CSV as text columns with stripped header names."""
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ExperimentInvalid("file", f"{filename}: not a readable CSV ({exc})") from None
    frame.columns = [c.strip() for c in frame.columns]
    return frame


def assignments_upload(*, experiment: Experiment, data: bytes, filename: str = "upload.csv"
                       ) -> int:
    """Store an assignment table (CSV: user_id, arm, assigned_at). Bad rows reject the whole
    file with the line; the previous table stays until a good one replaces it."""
    frame = _read_csv(data, filename)
    for column in ("user_id", "arm", "assigned_at"):
        if column not in frame.columns:
            raise ExperimentInvalid("file", f"{filename}: the header has no '{column}' column "
                                            "(expected user_id, arm, assigned_at)")
    if len(frame) == 0:
        raise ExperimentInvalid("file", f"{filename}: no rows")
    if len(frame) > MAX_ASSIGNMENT_ROWS:
        raise ExperimentInvalid("file", f"{filename}: more than {MAX_ASSIGNMENT_ROWS:,} rows")
    arms = set(experiment.arm_names)
    checks = [
        (frame["user_id"].str.strip() == "", "empty user_id"),
        (~frame["arm"].str.strip().isin(arms),
         f"arm is not one of {', '.join(experiment.arm_names)}"),
        (pd.to_datetime(frame["assigned_at"], utc=True, errors="coerce", format="mixed").isna(),
         "assigned_at is not a date/time"),
    ]
    for bad, message in checks:
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ExperimentInvalid("file", f"{filename}, line {row + 2}: {message} "
                                            f"({int(bad.sum()):,} rows like this)")
    table = pd.DataFrame({
        "user_id": frame["user_id"].str.strip(),
        "arm": frame["arm"].str.strip(),
        "assigned_at": pd.to_datetime(frame["assigned_at"], utc=True, format="mixed"),
    })
    _pseudonymize_like_dataset(experiment, table)
    path = _assignments_path(experiment)
    get_store().write_file_table(path, pa.Table.from_pandas(table, preserve_index=False))
    experiment.assignments_file = path
    experiment.assignments_rows = len(table)
    experiment.save(update_fields=["assignments_file", "assignments_rows", "updated_at"])
    return len(table)


SUMMARY_COLUMNS = ("arm", "metric", "n", "sum", "sum_sq")


def summaries_set(*, experiment: Experiment, rows: list[dict[str, Any]]) -> int:
    """Replace the per-arm summary statistics; every row is checked before any is stored."""
    arms = set(experiment.arm_names)
    metrics = {m.name for m in _metrics(experiment.primary_metric, experiment.guardrail_metrics)}
    clean = []
    seen = set()
    for i, row in enumerate(rows):
        where = f"rows[{i}]"
        for column in SUMMARY_COLUMNS:
            if row.get(column) in (None, ""):
                raise ExperimentInvalid(f"{where}.{column}", "is missing")
        if str(row["arm"]) not in arms:
            raise ExperimentInvalid(f"{where}.arm", f"'{row['arm']}' is not one of "
                                                    f"{', '.join(experiment.arm_names)}")
        if str(row["metric"]) not in metrics:
            raise ExperimentInvalid(f"{where}.metric", f"'{row['metric']}' is not one of "
                                                       f"{', '.join(sorted(metrics))}")
        n, total, squares = _summary_numbers(row, where)
        if n > 0 and squares < total * total / n - 1e-9 * max(1.0, abs(squares)):
            raise ExperimentInvalid(f"{where}.sum_sq", "is smaller than sum^2/n: not a sum of "
                                                       "squares of the same values")
        scope = str(row.get("scope") or "all")
        key = (str(row["arm"]), str(row["metric"]), scope)
        if key in seen:
            raise ExperimentInvalid(where, f"a second row for arm {key[0]}, metric {key[1]}, "
                                           f"scope {scope}")
        seen.add(key)
        clean.append(ArmSummary(experiment=experiment, arm=key[0], metric=key[1], scope=scope,
                                n=n, sum=total, sum_sq=squares))
    with transaction.atomic():
        experiment.summaries.all().delete()
        ArmSummary.objects.bulk_create(clean)
    return len(clean)


def _summary_numbers(row: dict[str, Any], where: str) -> tuple[int, float, float]:
    """A summary row's n, sum and sum of squares, each in its domain (numbers, or their text
    from a CSV; never true or false)."""
    out: list[Any] = []
    for column, (low, high), whole in (("n", SUMMARY_N, True), ("sum", SUMMARY_SUM, False),
                                       ("sum_sq", SUMMARY_SUM_SQ, False)):
        raw = row[column]
        kind = "a whole number" if whole else "a number"
        message = (f"must be {kind} from {low:g} to {high:g}" if not whole
                   else f"must be {kind} from {low} to {high}")
        try:
            if isinstance(raw, bool):
                raise ValueError
            value = float(str(raw).strip())
        except (TypeError, ValueError):
            raise ExperimentInvalid(f"{where}.{column}", message) from None
        if not math.isfinite(value) or not low <= value <= high \
                or (whole and value != int(value)):
            raise ExperimentInvalid(f"{where}.{column}", message)
        out.append(int(value) if whole else value)
    return out[0], out[1], out[2]


def summaries_upload(*, experiment: Experiment, data: bytes, filename: str = "upload.csv") -> int:
    frame = _read_csv(data, filename)
    try:
        return summaries_set(experiment=experiment, rows=frame.to_dict("records"))
    except ExperimentInvalid as exc:
        # rows[i] -> the file's line (header is line 1)
        field = exc.field
        if field.startswith("rows["):
            index = int(field[5:field.index("]")])
            field = f"{filename}, line {index + 2}{field[field.index(']') + 1:]}"
        raise ExperimentInvalid(field, exc.message) from None


# ----- analysis ---------------------------------------------------------------------------------
def _segment_mask(segment: Segment, ue: Any) -> np.ndarray:
    return segment_members_mask(segment, ue)


def _input_hash(experiment: Experiment) -> str:
    parts = {
        "design": [experiment.kind, experiment.arms, experiment.primary_metric,
                   experiment.guardrail_metrics, experiment.alpha, experiment.data_source,
                   experiment.assignment, experiment.cuped_pre_days, experiment.sequential,
                   experiment.correction, experiment.quasi, experiment.segment_id,
                   sorted(experiment.breakdown_segments.values_list("pk", flat=True))],
        "data": [experiment.dataset.version if experiment.dataset_id else None,
                 experiment.assignments_file, experiment.assignments_rows,
                 list(experiment.summaries.values_list("arm", "metric", "scope", "n", "sum",
                                                      "sum_sq"))],
        "at": experiment.updated_at.isoformat() if experiment.updated_at else "",
        "prior": workspace_prior(experiment.workspace_id).__dict__,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def analyze_start(*, experiment: Experiment, user: object | None = None) -> Job:
    """Queue the analysis as a job (the event data can be large)."""
    experiment_check(experiment)
    if experiment.data_source == DataSource.ASSIGNMENTS and not experiment.assignments_file:
        raise ExperimentInvalid("assignments", "upload the assignment table first")
    if experiment.data_source == DataSource.SUMMARY and not experiment.summaries.exists():
        raise ExperimentInvalid("summaries", "enter or upload the per-arm summaries first")
    if experiment.dataset_id and experiment.dataset.version == 0:
        raise ExperimentInvalid("dataset", "the dataset has no events yet")
    job = job_create(workspace=experiment.workspace, kind="experiment_analyze", user=_user(user),
                     params={"experiment_id": experiment.pk}, input_hash=_input_hash(experiment))
    Experiment.objects.filter(pk=experiment.pk).update(analysis_job=job)
    experiment.analysis_job = job
    return job


def _settings(experiment: Experiment) -> RandomizedSettings:
    return RandomizedSettings(weights=experiment.weights, alpha=experiment.alpha,
                              cuped_pre_days=experiment.cuped_pre_days,
                              sequential=experiment.sequential, correction=experiment.correction,
                              prior=workspace_prior(experiment.workspace_id))


@job_handler("experiment_analyze")
def analyze_run(job: Job) -> dict[str, Any]:
    experiment = Experiment.objects.select_related("dataset", "segment", "hypothesis").get(
        pk=job.params["experiment_id"])
    result = experiment_analyze(experiment, progress=lambda p, m: job_progress(job, p, m))
    return {"experiment_id": experiment.pk, "kind": result.get("kind")}


def experiment_analyze(experiment: Experiment, progress: Any = None) -> dict[str, Any]:
    """Run the analysis now and store it on the experiment."""
    progress = progress or (lambda p, m: None)
    metrics = experiment_check(experiment)
    settings = _settings(experiment)
    try:
        if experiment.kind == ExperimentKind.AB and experiment.data_source == DataSource.SUMMARY:
            rows = list(experiment.summaries.values("arm", "metric", "scope", "n", "sum",
                                                    "sum_sq"))
            result = analyze_summaries(rows, experiment.arm_names, metrics, settings)
        else:
            progress(10, "loading events")
            ue = load_user_events(experiment.dataset)
            if experiment.kind == ExperimentKind.AB:
                result = _analyze_ab(experiment, ue, metrics, settings, progress)
            else:
                result = _analyze_quasi(experiment, ue, metrics[0])
    except ExperimentDataError as exc:
        raise JobFailed(f"{exc.field}: {exc.message}") from None
    result = stats.jsonable({**result, "dataset_version": experiment.dataset.version
                        if experiment.dataset_id else None})
    experiment.result = result
    experiment.analyzed_at = timezone.now()
    if experiment.status in (ExperimentStatus.DESIGN, ExperimentStatus.RUNNING):
        experiment.status = ExperimentStatus.ANALYZED
    experiment.save(update_fields=["result", "analyzed_at", "status", "updated_at"])
    return result


def _analyze_ab(experiment: Experiment, ue: Any, metrics: list[MetricSpec],
                settings: RandomizedSettings, progress: Any) -> dict[str, Any]:
    progress(30, "assignments")
    if experiment.data_source == DataSource.ASSIGNMENTS:
        table = get_store().read_file_table(experiment.assignments_file).to_pandas()
        assignment = assignment_from_table(ue, table, experiment.arm_names)
    else:
        a = experiment.assignment
        assignment = assignment_from_events(
            ue, event=a["event"], arms=experiment.arm_names,
            experiment_key=a.get("experiment_key") or "experiment",
            experiment_id=a.get("experiment_id") or None, arm_key=a.get("arm_key") or "arm")
    if experiment.segment_id:
        assignment = assignment.restrict(_segment_mask(experiment.segment, ue))
    if len(assignment.user) == 0:
        raise JobFailed("no user in the data is assigned to this experiment's arms")
    progress(50, f"{len(assignment.user):,} assigned users")
    scopes = [Scope("all", experiment.segment.name if experiment.segment_id else "All assigned")]
    for seg in experiment.breakdown_segments.order_by("name"):
        scopes.append(Scope(f"segment:{seg.pk}", seg.name, _segment_mask(seg, ue)))
    result = analyze_randomized(ue, assignment, metrics, scopes, settings)
    progress(80, "cumulative effect over time")
    result["timeline"] = timeline.timeline(ue, assignment, metrics[0], settings)
    return result


def _analyze_quasi(experiment: Experiment, ue: Any, metric: MetricSpec) -> dict[str, Any]:
    q = experiment.quasi
    launch = pd.Timestamp(q["launch"])
    launch = launch.tz_localize("UTC") if launch.tzinfo is None else launch.tz_convert("UTC")
    launch_us = int(launch.value // 1000)
    common = {"metric": metric, "launch_us": launch_us,
              "period_days": float(q.get("period_days", 7)),
              "pre_periods": int(q.get("pre_periods", 8)),
              "post_periods": int(q.get("post_periods", 8)), "alpha": experiment.alpha}
    treated_seg = Segment.objects.get(pk=q["treated_segment"])
    treated = _segment_mask(treated_seg, ue)
    if experiment.kind == ExperimentKind.DID:
        control_seg = Segment.objects.get(pk=q["control_segment"])
        control = _segment_mask(control_seg, ue) & ~treated
        out = analyze_did(ue, treated=treated, control=control, **common)
        out["groups"] = {"treated": treated_seg.name, "control": control_seg.name}
        return out
    out = analyze_its(ue, mask=treated, **common)
    out["groups"] = {"treated": treated_seg.name}
    return out


# ----- the workspace's decision rule and Bayesian prior -------------------------------------------
RULE_FIELDS = ("read", "chance_to_win", "risk_tolerance", "prior_proper", "prior_mean",
               "prior_variance")


def decision_rule_get(workspace_id: int) -> DecisionRule:
    """The workspace's rule; the defaults (unsaved) when it never set one."""
    return (DecisionRule.objects.filter(workspace_id=workspace_id).first()
            or DecisionRule(workspace_id=workspace_id))


def workspace_prior(workspace_id: int) -> bayes.Prior:
    rule = decision_rule_get(workspace_id)
    return bayes.Prior(rule.prior_mean, rule.prior_variance, rule.prior_proper)


def decision_rule_set(*, workspace_id: int, user: object | None = None,
                      **values: Any) -> DecisionRule:
    """Change the rule (any of RULE_FIELDS); every value is checked before any is saved."""
    unknown = [k for k in values if k not in RULE_FIELDS]
    if unknown:
        raise ExperimentInvalid(unknown[0], "not a setting of the decision rule: "
                                            + ", ".join(RULE_FIELDS))
    rule = decision_rule_get(workspace_id)
    for name, value in values.items():
        setattr(rule, name, value)
    if rule.read not in VerdictRead.values:
        raise ExperimentInvalid("read", f"must be one of {', '.join(VerdictRead.values)}")
    if not isinstance(rule.prior_proper, bool):
        raise ExperimentInvalid("prior_proper", "must be true or false")
    for name, (low, high) in (("chance_to_win", CHANCE_TO_WIN),
                              ("risk_tolerance", RISK_TOLERANCE),
                              ("prior_mean", PRIOR_MEAN)):
        value = getattr(rule, name)
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value) or not low <= value <= high:
            raise ExperimentInvalid(name, f"must be a number from {low:g} to {high:g}")
    variance = rule.prior_variance
    if isinstance(variance, bool) or not isinstance(variance, int | float) \
            or not math.isfinite(variance) or variance <= 0:
        raise ExperimentInvalid("prior_variance", "the prior's variance must be a number "
                                                  "greater than 0")
    if variance > PRIOR_VARIANCE[1]:
        raise ExperimentInvalid("prior_variance", f"must be at most {PRIOR_VARIANCE[1]:g}")
    rule.updated_by = _user(user)
    with transaction.atomic():
        rule.save()
    return rule


def experiment_rule(experiment: Experiment) -> verdict.Rule:
    rule = decision_rule_get(experiment.workspace_id)
    return verdict.Rule(read=rule.read, chance_to_win=rule.chance_to_win,
                        risk_tolerance=rule.risk_tolerance, mde=experiment.mde)


def experiment_proposal(experiment: Experiment, scope: str = "all") -> verdict.Proposal:
    """The outcome the experiment's result proposes under the workspace's rule, with why."""
    return verdict.propose(experiment.result or {}, experiment_rule(experiment), scope)


# ----- concluding: learnings ---------------------------------------------------------------------
def headline(experiment: Experiment, scope: str = "all") -> dict[str, Any] | None:
    """The primary metric's estimate in one scope (first treatment arm), as a dict."""
    result = experiment.result or {}
    if result.get("kind") == "ab":
        for row in result.get("rows", []):
            if row.get("primary") and row.get("scope") == scope:
                return row
        return None
    if result.get("kind") in ("did", "its") and result:
        return result
    return None


def _relative_from(row: dict[str, Any]) -> tuple[float, float, float] | None:
    if row.get("kind") in ("did", "its"):
        return None
    rel, ci = row.get("relative"), row.get("relative_ci")
    if rel is None or not ci or None in ci:
        return None
    return float(rel), float(ci[0]), float(ci[1])


def _measured_in_domain(rel: tuple[float, float, float]) -> tuple[float, float, float]:
    """A measured lift for the hypothesis: the estimate must lie in MEASURED_LIFT (else
    ExperimentInvalid on the scope); interval bounds beyond it are held at its edges."""
    low, high = MEASURED_LIFT
    estimate = rel[0]
    if not math.isfinite(estimate) or not low <= estimate <= high:
        raise ExperimentInvalid("scope", f"the measured lift {estimate:+,.0%} is outside "
                                         f"{low:+,.0%}..{high:+,.0%}: it cannot become the "
                                         "hypothesis's lift (conclude as inconclusive, or on "
                                         "another scope)")

    def held(bound: float) -> float:
        return min(max(bound, low), high) if not math.isnan(bound) else estimate

    return estimate, held(rel[1]), held(rel[2])


def _p_text(p: Any) -> str:
    """'p < 0.0001' when tiny (never 0.0000 or 1.2e-07), else 'p = 0.0123' (the pages' rule)."""
    shown = pvalue(p)
    return f"p {shown}" if shown.startswith("<") else f"p = {shown}"


def _describe(row: dict[str, Any] | None) -> str:
    if row is None:
        return "no estimate"
    if row.get("status") == "insufficient_data":
        return f"insufficient data ({row.get('reason')})"
    if row.get("kind") == "did":
        ci = row.get("ci") or [None, None]
        return (f"difference-in-differences {row.get('estimate'):+.4g} "
                f"(95% CI {ci[0]:+.4g} to {ci[1]:+.4g}), {_p_text(row.get('p_value'))}")
    if row.get("kind") == "its":
        ci = row.get("level_ci") or [None, None]
        return (f"level change {row.get('level_change'):+.4g} "
                f"(95% CI {ci[0]:+.4g} to {ci[1]:+.4g})")
    parts = [f"{row['metric']} in {row['scope_label']}: "
             f"{row['control_mean']:.4g} ({row['control']}) vs {row['treatment_mean']:.4g} "
             f"({row['arm']}), absolute {row['absolute']:+.4g} "
             f"[{row['absolute_ci'][0]:+.4g}, {row['absolute_ci'][1]:+.4g}]"]
    if row.get("relative") is not None:
        parts.append(f"relative {row['relative']:+.2%} "
                     f"[{row['relative_ci'][0]:+.2%}, {row['relative_ci'][1]:+.2%}]")
    if row.get("p_adjusted") is not None:
        parts.append(f"adjusted {_p_text(row['p_adjusted'])}")
    return ", ".join(parts)


def experiment_conclude(*, experiment: Experiment, outcome: str, now_believe: str, decision: str,
                        tags: list[str] | None = None, scope: str = "all",
                        happened: str = "", user: object | None = None,
                        segments: list[Segment] | None = None,
                        override_reason: str = "") -> Learning:
    """Record the learning, move the hypothesis to its outcome, and update the linked
    investments' lift (the measured lift with its interval) and their value history.

    The workspace's rule proposes an outcome from the result; concluding with another one
    needs ``override_reason``, which is kept on the learning with the proposal."""

    if outcome not in Outcome.values:
        raise ExperimentInvalid("outcome", f"must be one of {', '.join(Outcome.values)}")
    if not (now_believe or "").strip():
        raise ExperimentInvalid("now_believe", "say what the team believes now")
    if not (decision or "").strip():
        raise ExperimentInvalid("decision", "say what was decided")
    if not experiment.result:
        raise ExperimentInvalid("result", "analyze the experiment before concluding it")
    if experiment.status == ExperimentStatus.CONCLUDED:
        raise ExperimentInvalid("status", "this experiment is already concluded")
    row = headline(experiment, scope)
    if row is None:
        raise ExperimentInvalid("scope", f"the result has no primary estimate for '{scope}'")
    proposal = experiment_proposal(experiment, scope)
    override_reason = (override_reason or "").strip()
    if outcome != proposal.outcome and not override_reason:
        raise ExperimentInvalid("override_reason", f"the decision rule proposes "
                                                   f"{proposal.outcome} ({proposal.reason}): "
                                                   f"say why you conclude {outcome} instead")
    if outcome == proposal.outcome:
        override_reason = ""
    tags = [str(t).strip()[:50] for t in (tags or []) if str(t).strip()]
    hypothesis = experiment.hypothesis
    believed = (f"{hypothesis.statement}. Mechanism: {hypothesis.mechanism or '-'}. "
                f"Expected {hypothesis.expected_lift:+.1%} on {hypothesis.metric or 'the metric'}"
                + (f" ({hypothesis.basis})" if hypothesis.basis else ""))
    if segments is None:
        segments = list(hypothesis.segments.all())
        if scope.startswith("segment:"):
            segments = list(Segment.objects.filter(pk=int(scope.split(":")[1]),
                                                   workspace=experiment.workspace))
    with transaction.atomic():
        learning = Learning.objects.create(
            workspace=experiment.workspace, hypothesis=hypothesis, experiment=experiment,
            outcome=outcome, believed=believed, happened=(happened.strip() or _describe(row)),
            now_believe=now_believe.strip(), decision=decision.strip(),
            estimates={"scope": scope, "headline": row,
                       "all_rows": (experiment.result or {}).get("rows", []),
                       # the expectation before this result moved it (calibration reads it)
                       "forecast": selectors.forecast_record(hypothesis),
                       "proposal": proposal.to_dict()},
            tags=tags, created_by=_user(user), proposed_outcome=proposal.outcome,
            override_reason=override_reason[:5000])
        learning.segments.set(segments)
        rel = _relative_from(row)
        fields = ["updated_at"]
        if rel is not None and outcome != Outcome.INCONCLUSIVE:
            rel = _measured_in_domain(rel)
            earlier = Learning.objects.filter(hypothesis=hypothesis, outcome=outcome).exclude(
                pk=learning.pk).exists()
            hypothesis.measured_lift, hypothesis.measured_lift_low, \
                hypothesis.measured_lift_high = rel
            hypothesis.evidence = Evidence.REPLICATED if earlier else Evidence.EXPERIMENT
            fields += ["measured_lift", "measured_lift_low", "measured_lift_high", "evidence"]
        hypothesis.save(update_fields=fields)
        _walk_to(hypothesis, outcome, user, f"concluded by experiment '{experiment.name}'")
        experiment.status = ExperimentStatus.CONCLUDED
        experiment.save(update_fields=["status", "updated_at"])
        hypothesis.refresh_from_db()
        hypothesis_changed(hypothesis,
                           reason=f"experiment '{experiment.name}' concluded: {outcome}")
        webhooks.notify_experiment_concluded(learning=learning)
    return learning


def dataset_choices(workspace_id: int) -> Any:
    return Dataset.objects.filter(workspace_id=workspace_id)
