"""Writes for segments and refreshes: validate definitions, run a refresh as a job."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from django.db import transaction
from django.utils import timezone

from accounts.models import Workspace
from events.models import Dataset
from events.retention_services import retention_setup
from events.services import get_store, load_user_events
from jobs.fanout import fanout_enabled
from jobs.faults import fault_point
from jobs.services import Job, JobFailed, job_create, job_handler, job_progress

from .analytics.drift import membership_drift, rank_changes, value_drift
from .analytics.refresh import SegmentSpec, run_refresh
from .analytics.rfm import SEGMENT_NAMES as RFM_SEGMENTS
from .analytics.rules import RuleError, validate_rule
from .analytics.value import Signal
from .models import Refresh, Segment, SegmentKind, SegmentSnapshot

HEADLINE_SIGNAL = "ltv_90"
# Called with the workspace after every refresh (the planner re-values investments here).
AFTER_REFRESH: list[Any] = []


class DefinitionError(ValueError):
    """A segment definition was refused; ``path`` points at the offending node."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def check_definition(*, dataset: Dataset, kind: str, definition: dict[str, Any]) -> None:
    """Validate a segment definition against the dataset's catalog."""
    if kind == SegmentKind.RULE:
        events = [e["event"] for e in dataset.event_catalog] or None
        attributes = [a["attribute"] for a in dataset.attribute_catalog] or None
        try:
            validate_rule(definition, event_names=events, attributes=attributes)
        except RuleError as exc:
            raise DefinitionError(exc.path, exc.message) from None
    elif kind == SegmentKind.RFM:
        name = definition.get("rfm") if isinstance(definition, dict) else None
        if name not in RFM_SEGMENTS:
            raise DefinitionError("rfm", f"unknown RFM segment {name!r}; one of "
                                  + ", ".join(RFM_SEGMENTS))
    elif kind == SegmentKind.CLUSTER:
        if not isinstance(definition, dict) or not (
            "rule" in definition or "members" in definition or "cluster_job" in definition
        ):
            raise DefinitionError("", "a cluster segment needs 'cluster_job', 'rule' or 'members'")
        if "rule" in definition:
            check_definition(dataset=dataset, kind=SegmentKind.RULE, definition=definition["rule"])
    else:
        raise DefinitionError("kind", f"unknown segment kind {kind!r}")


def segment_create(*, dataset: Dataset, name: str, kind: str = SegmentKind.RULE,
                   definition: dict[str, Any], owner: object | None = None,
                   description: str = "", assumptions: str = "") -> Segment:
    """Create a segment after validating its definition."""
    check_definition(dataset=dataset, kind=kind, definition=definition)
    with transaction.atomic():
        return Segment.objects.create(
            workspace=dataset.workspace, dataset=dataset, name=name.strip(), kind=kind,
            definition=definition, owner=owner, description=description,
            assumptions=assumptions,
        )


def segment_update(*, segment: Segment, **fields: Any) -> Segment:
    """Change a segment's name, definition, owner or assumptions (definition re-validated)."""
    if "definition" in fields or "kind" in fields:
        check_definition(dataset=segment.dataset, kind=fields.get("kind", segment.kind),
                         definition=fields.get("definition", segment.definition))
    for key, value in fields.items():
        setattr(segment, key, value)
    segment.save()
    return segment


def refresh_start(*, dataset: Dataset, user: object | None = None, trigger: str = "") -> Job:
    """Queue a refresh of every segment of a dataset (one job; reused while one is queued).
    ``trigger`` "import": queued by the workspace's auto-refresh (the jobs list says so)."""
    input_hash = f"refresh:{dataset.pk}:v{dataset.version}"
    with transaction.atomic():
        Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
        pending = Job.objects.filter(workspace=dataset.workspace, kind="refresh",
                                     input_hash=input_hash, state__in=["queued", "running"]).first()
        if pending is not None:
            return pending
        params: dict[str, Any] = {"dataset_id": dataset.pk}
        if trigger:
            params["trigger"] = trigger
        return job_create(workspace=dataset.workspace, kind="refresh", user=user,
                          params=params, input_hash=input_hash)


def refresh_after_import(sender: object = None, *, dataset_id: int, **_: Any) -> Job | None:
    """After an import published a version: queue the dataset's segment refresh when the
    workspace refreshes automatically and the segments are not on that version yet."""
    dataset = Dataset.objects.select_related("workspace").filter(pk=dataset_id).first()
    if dataset is None or not dataset.workspace.auto_refresh_segments:
        return None
    if not Segment.objects.filter(dataset=dataset, archived=False).exists():
        return None
    if Refresh.objects.filter(dataset=dataset, dataset_version__gte=dataset.version,
                              finished_at__isnull=False).exists():
        return None  # a re-sent signal for a version already refreshed
    return refresh_start(dataset=dataset, trigger="import")


def _members_path(refresh: Refresh) -> str:
    """The refresh's membership file, in the store (local or URL: any worker reads it)."""
    return get_store().file_path("snapshots", refresh.dataset.store_key,
                                 f"refresh-{refresh.pk}.parquet")


def snapshot_members(snapshot: SegmentSnapshot) -> np.ndarray:
    """The user ids a snapshot counted (read back from the refresh's membership file)."""
    path = _members_path(snapshot.refresh)
    store = get_store()
    if not store.file_exists(path):
        return np.array([], dtype=object)
    table = store.read_file_table(path, filters=[("segment_id", "=", snapshot.segment_id)],
                                  columns=["user_id"])
    return table.column("user_id").to_numpy(zero_copy_only=False)


def segment_members_mask(segment: Segment, ue: Any) -> np.ndarray:
    """Members as of the segment's latest snapshot (what the council sees), as a mask over
    ``ue``'s user codes; a rule segment not refreshed yet is evaluated on ``ue``."""
    snap = (SegmentSnapshot.objects.filter(segment=segment).order_by("-computed_at", "-id")
            .first())
    if snap is None:
        from .analytics.rules import evaluate_rule

        if segment.kind != SegmentKind.RULE:
            raise JobFailed(f"segment '{segment.name}' has no snapshot yet: refresh segments "
                            "first")
        as_of = int(ue.time.max()) + 1 if ue.n_events else 0
        return np.asarray(evaluate_rule(dict(segment.definition), ue, as_of), dtype=bool)
    return np.asarray(pd.Index(ue.user_ids).isin(snapshot_members(snap)), dtype=bool)


@job_handler("refresh")
def refresh_run(job: Job) -> dict[str, Any]:
    """Build the feature table once, evaluate every segment, store snapshots with drift."""
    dataset = Dataset.objects.select_related("workspace").get(pk=job.params["dataset_id"])
    existing = Refresh.objects.filter(job=job).first()
    if existing is not None and existing.finished_at is not None:
        return {"refresh_id": existing.pk, "reused": True}
    segments = refresh_segments(dataset)
    if fanout_enabled():
        from . import fanout_services

        return fanout_services.refresh_fanout_start(job, dataset, segments)
    job_progress(job, 5, "loading events")
    data = load_user_events(dataset)
    as_of = int(data.time.max()) + 1 if data.n_events else 0
    specs = refresh_specs(segments)
    job_progress(job, 25, f"computing {len(specs)} segments on {data.n_users:,} users")
    setup = retention_setup(dataset)
    result = run_refresh(data, specs, as_of=as_of, outcome_event=dataset.outcome_event or None,
                         retention=setup.definition)
    job_progress(job, 80, "storing snapshots")
    return refresh_store(job, dataset, segments, result, users=data.n_users,
                         events=data.n_events, retention=setup.provenance)


def refresh_segments(dataset: Dataset) -> list[Segment]:
    """The segments a refresh evaluates, in order."""
    return list(Segment.objects.filter(dataset=dataset, archived=False).order_by("pk"))


def refresh_specs(segments: list[Segment]) -> list[SegmentSpec]:
    return [SegmentSpec(key=str(s.pk), kind=s.kind, definition=_resolved(s)) for s in segments]


def refresh_store(job: Job, dataset: Dataset, segments: list[Segment], result: Any, *,
                  users: int, events: int,
                  member_tables: Callable[[], Iterable[pa.Table]] | None = None,
                  retention: dict[str, Any] | None = None,
                  ) -> dict[str, Any]:
    """Store a refresh's result: the Refresh, membership file, snapshots with drift.

    ``retention``: the retention definition the D1/D7/D30 signals used (start event, return
    events, what was excluded), kept in the refresh's summary and each snapshot's retention
    (``definition``) as their provenance.

    ``member_tables``: the members as (segment_id, user_id) tables, one per partition (a
    fan-out), streamed into the membership file instead of ``result``'s member lists."""
    as_of = result.as_of
    by_key = {r.key: r for r in result.segments}
    min_size = dataset.workspace.min_segment_size
    as_of_dt = pd.Timestamp(as_of, unit="us", tz="UTC").to_pydatetime()
    with transaction.atomic():
        refresh = Refresh.objects.create(
            workspace=dataset.workspace, dataset=dataset, job=job,
            dataset_version=dataset.version, as_of=as_of_dt, baseline=result.baseline,
            summary={"users": users, "events": events, "clv_fit": result.clv_fit,
                     "errors": {r.key: r.error for r in result.segments if r.error},
                     **({"retention": retention} if retention else {})},
        )
        path = _members_path(refresh)
        store = get_store()
        if member_tables is None:
            ids, segs = [], []
            for segment in segments:
                res = by_key[str(segment.pk)]
                ids.append(res.members)
                segs.append(np.full(len(res.members), segment.pk, dtype=np.int64))
            store.write_file_table(path, pa.table({
                "segment_id": np.concatenate(segs) if segs else np.zeros(0, np.int64),
                "user_id": pa.array(np.concatenate(ids) if ids else [], type=pa.string()),
            }))
        else:
            _write_member_tables(store, path, member_tables(), {s.pk for s in segments})
        previous_values: dict[str, float] = {}
        current_values: dict[str, float] = {}
        for segment in segments:
            res = by_key[str(segment.pk)]
            prev = segment.snapshots.exclude(refresh=refresh).order_by("-computed_at").first()
            drift: dict[str, Any] = {}
            if prev is not None:
                members = res.members if member_tables is None else _file_members(path,
                                                                                  segment.pk)
                drift["membership"] = membership_drift(snapshot_members(prev), members)
                drift["values"] = {
                    name: value_drift(_signal(prev.signals.get(name)), _signal(res.signals[name]))
                    for name in ("ltv_90", "conversion", "revenue_per_active_user")
                    if name in res.signals and prev.signals.get(name)
                }
                drift["since"] = prev.computed_at.isoformat()
                previous_values[segment.name] = _estimate(prev.signals, HEADLINE_SIGNAL)
            current_values[segment.name] = _estimate(res.signals, HEADLINE_SIGNAL)
            warnings = sorted({s["warning"] for s in res.signals.values() if s.get("warning")})
            if res.error:
                warnings.insert(0, f"definition failed: {res.error}")
            SegmentSnapshot.objects.create(
                workspace=dataset.workspace, segment=segment, refresh=refresh,
                dataset_version=dataset.version, size=res.size, share=res.share,
                hidden=res.size < min_size, signals=res.signals, holdout=res.holdout,
                retention={**res.retention, "definition": retention} if retention
                else res.retention, drift=drift, warnings=warnings,
            )
        changes = rank_changes(
            {k: v for k, v in previous_values.items() if v is not None},
            {k: v for k, v in current_values.items() if v is not None},
        ) if previous_values else []
        fault_point("refresh-in-transaction")
        refresh.summary = {**refresh.summary, "rank_changes": changes}
        refresh.finished_at = timezone.now()
        refresh.save(update_fields=["summary", "finished_at"])
        workspace = dataset.workspace
        Workspace.objects.filter(pk=workspace.pk).update(
            next_refresh_at=timezone.now() + timedelta(days=workspace.refresh_every_days))
    for callback in AFTER_REFRESH:
        callback(dataset.workspace)
    return {"refresh_id": refresh.pk, "segments": len(segments)}


MEMBERS_SCHEMA = pa.schema([("segment_id", pa.int64()), ("user_id", pa.string())])


def _write_member_tables(store: Any, path: str, tables: Iterable[pa.Table],
                         keep: set[int]) -> None:
    """Stream per-partition member tables into one Parquet file (a row group each), written
    whole (``EventStore.write_file_with``)."""
    def write(target: str) -> None:
        with pq.ParquetWriter(target, MEMBERS_SCHEMA) as writer:
            for table in tables:
                table = table.select(["segment_id", "user_id"]).cast(MEMBERS_SCHEMA)
                ids = table.column("segment_id").to_numpy()
                writer.write_table(table.filter(pa.array(np.isin(ids, list(keep)))))

    store.write_file_with(path, write)


def _file_members(path: str, segment_id: int) -> np.ndarray:
    table = get_store().read_file_table(path, filters=[("segment_id", "=", segment_id)],
                                        columns=["user_id"])
    return table.column("user_id").to_numpy(zero_copy_only=False)


def _resolved(segment: Segment) -> dict[str, Any]:
    """A saved cluster's definition with its member list read from the clustering job."""
    definition = dict(segment.definition)
    if segment.kind == SegmentKind.CLUSTER and "cluster_job" in definition:
        job = Job.objects.filter(pk=definition["cluster_job"]).first()
        members = cluster_members(job=job, label=definition["label"]) if job else []
        definition = {"members": list(members)}
    return definition


def _signal(data: dict[str, Any] | None) -> Signal:
    data = data or {}
    return Signal(**{k: data.get(k) for k in ("name", "estimate", "low", "high", "n", "method",
                                               "unit", "warning")})


def _estimate(signals: dict[str, Any], name: str) -> float | None:
    value = (signals.get(name) or {}).get("estimate")
    return float(value) if value is not None else None


def refresh_due(*, now: Any = None) -> list[Job]:
    """Queue refreshes for workspaces whose scheduled refresh time has come."""
    now = now or timezone.now()
    jobs = []
    for workspace in Workspace.objects.filter(next_refresh_at__lte=now):
        for dataset in Dataset.objects.filter(workspace=workspace, version__gt=0):
            jobs.append(refresh_start(dataset=dataset))
    return jobs


def segment_sweep(*, segment: Segment, path: str, thresholds: list[int] | None = None,
                  window_days: list[int] | None = None) -> list[dict[str, Any]]:
    """Refine a behavioural rule: size and 90-day value per threshold or window length."""
    from .analytics.refine import sweep_threshold, sweep_window

    if segment.kind != SegmentKind.RULE:
        raise DefinitionError("kind", "only rule segments can be swept")
    data = load_user_events(segment.dataset)
    as_of = int(data.time.max()) + 1 if data.n_events else 0
    try:
        if window_days:
            rows = sweep_window(segment.definition, path, window_days, data, as_of)
        else:
            rows = sweep_threshold(segment.definition, path, thresholds or list(range(1, 11)),
                                   data, as_of)
    except RuleError as exc:
        raise DefinitionError(exc.path, exc.message) from None
    min_size = segment.workspace.min_segment_size
    for row in rows:
        if 0 < (row.get("size") or 0) < min_size:
            row.update({k: None for k in row if k not in ("threshold", "days", "rule")})
            row["hidden"] = True
    return rows


def _labels_path(job: Job) -> str:
    """Every user's cluster label, in the store (local or URL: any worker reads it)."""
    return get_store().file_path("clusters", f"job-{job.pk}.parquet")


def clusters_start(*, dataset: Dataset, user: object | None = None) -> Job:
    """Queue a clustering suggestion for a dataset (k-means on behaviour features)."""
    input_hash = f"clusters:{dataset.pk}:v{dataset.version}"
    done = Job.objects.filter(workspace=dataset.workspace, kind="clusters", input_hash=input_hash,
                              state__in=["queued", "running", "succeeded"]).first()
    if done is not None:
        return done
    return job_create(workspace=dataset.workspace, kind="clusters", user=user,
                      params={"dataset_id": dataset.pk}, input_hash=input_hash)


@job_handler("clusters")
def clusters_run(job: Job) -> dict[str, Any]:
    """Fit the suggestions; keep every user's label in a file so a cluster can become a segment."""
    from .analytics.clustering import suggest_clusters
    from .analytics.value import user_features

    dataset = Dataset.objects.get(pk=job.params["dataset_id"])
    job_progress(job, 10, "loading events")
    data = load_user_events(dataset)
    as_of = int(data.time.max()) + 1 if data.n_events else 0
    job_progress(job, 30, "computing behaviour features")
    features = user_features(data, as_of, outcome=dataset.outcome_event or None)
    job_progress(job, 50, "fitting k-means for k = 2..8 and bootstrap refits")
    suggestions = suggest_clusters(features, seed=0)
    get_store().write_file_table(_labels_path(job), pa.table({
        "user_id": pa.array(data.user_ids[suggestions.index.astype(int)]
                            if len(suggestions.index) else [], type=pa.string()),
        "label": suggestions.labels.astype(np.int32)}))
    result = suggestions.to_dict(include_labels=False)
    min_size = dataset.workspace.min_segment_size
    for cluster in result["clusters"]:
        if cluster.get("size", 0) < min_size:
            cluster["hidden"] = True
    return {"dataset_id": dataset.pk, "dataset_version": dataset.version, **result}


def cluster_members(*, job: Job, label: int) -> np.ndarray:
    table = get_store().read_file_table(_labels_path(job), filters=[("label", "=", int(label))],
                                        columns=["user_id"])
    return table.column("user_id").to_numpy(zero_copy_only=False)


def cluster_save(*, job: Job, label: int, name: str, owner: object | None = None) -> Segment:
    """Save one suggested cluster as a segment (its members as of that dataset version)."""
    if job.kind != "clusters" or job.state != "succeeded":
        raise DefinitionError("job", "the clustering job has not finished")
    clusters = job.result.get("clusters", [])
    if not 0 <= int(label) < len(clusters):
        raise DefinitionError("label", f"no cluster {label}; there are {len(clusters)}")
    dataset = Dataset.objects.get(pk=job.params["dataset_id"])
    described = clusters[int(label)].get("description", "")
    return segment_create(
        dataset=dataset, name=name, kind=SegmentKind.CLUSTER, owner=owner,
        definition={"cluster_job": job.pk, "label": int(label)},
        description=described,
        assumptions=f"k-means cluster {label} of {len(clusters)} at dataset v"
                    f"{job.result.get('dataset_version')}; membership frozen at that version",
    )


# ----- erasure: where this app keeps user ids (registered from the app's ready()) ----------------
def _erasure_files(dataset: Dataset) -> list[tuple[str, str]]:
    """Refresh membership files and cluster label files of the dataset (store paths)."""
    store = get_store()
    folder = store.file_path("snapshots", dataset.store_key)
    files = [("snapshot_files", p) for p in store.list_files(folder, "refresh-", ".parquet")]
    jobs = Job.objects.filter(workspace=dataset.workspace, kind="clusters",
                              params__dataset_id=dataset.pk).values_list("pk", flat=True)
    return files + [("cluster_files", p) for p in
                    (store.file_path("clusters", f"job-{pk}.parquet") for pk in jobs)
                    if store.file_exists(p)]


def _cluster_segments(dataset: Dataset) -> Any:
    return Segment.objects.filter(dataset=dataset, kind=SegmentKind.CLUSTER)


def _erasure_mentions(dataset: Dataset, sid: str) -> bool:
    return any(sid in (s.definition.get("members") or []) for s in _cluster_segments(dataset)
               if isinstance(s.definition, dict))


def _erasure_scrub(dataset: Dataset, scrubber: Any) -> None:
    """Saved member lists of cluster segments, and per-user strings in refresh summaries."""
    sid = scrubber.sid
    scrubber.count("segments", 0)
    for segment in _cluster_segments(dataset):
        definition = segment.definition if isinstance(segment.definition, dict) else {}
        members = definition.get("members")
        if isinstance(members, list) and sid in members:
            segment.definition = {**definition, "members": [m for m in members if m != sid]}
            segment.save(update_fields=["definition", "updated_at"])
            scrubber.count("segments")
    scrubber.rows(Refresh.objects.filter(dataset=dataset), ("summary",), "job_results")


def register_erasure_hook() -> None:
    from events.privacy_services import ErasureHook
    from events.privacy_services import register_erasure_hook as register

    register(ErasureHook(files=_erasure_files, mentions=_erasure_mentions, scrub=_erasure_scrub))
