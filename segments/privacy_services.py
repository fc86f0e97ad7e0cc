"""Erasure on request: a user's events, attributes and traces in stored results removed.

``erase_user`` records the request (an ``Erasure`` holding a salted hash of the id, never the
id) and queues a job. The job, safe to run twice:

1. publishes a store version without the user (only the user's partition and the users file
   are rewritten; the manifest records the erasure, so a redelivered job does not do it again)
   and removes the older versions that still hold the rows;
2. rewrites the files of stored results without the id: refresh membership files, cluster
   label files, experiment assignment tables; deletes kept raw uploads that mention it;
3. in one transaction: saved member lists of segments, per-user strings in cached results and
   reports, the dataset's version (so cached analyses are recomputed), the erasure's counts.

The id itself travels in the job's params only while the job is pending or running; they are
cleared when it ends.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from django.apps import apps
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from jobs.faults import fault_point
from jobs.services import Job, JobFailed, job_create, job_handler, job_progress

from . import privacy
from .analytics.catalog import attribute_catalog, event_catalog
from .ingest import ImportRejected
from .models import (
    BehaviourAnalysis,
    Dataset,
    Erasure,
    IdMode,
    Import,
    ImportStatus,
    Refresh,
    Segment,
    SegmentKind,
)
from .services import get_store

MAX_USER_ID_CHARS = 1000


class ErasureInvalid(ValueError):
    """An erasure request was refused; ``field`` names the input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def stored_id(dataset: Dataset, user_id: str) -> str:
    """The id as the store holds it: a pseudonymized dataset takes the raw id (hashed here
    with the key) or the pseudonym itself."""
    user_id = (user_id or "").strip()
    if not user_id:
        raise ErasureInvalid("user_id", "give the user id to erase")
    if len(user_id) > MAX_USER_ID_CHARS:
        raise ErasureInvalid("user_id", f"a user id has at most {MAX_USER_ID_CHARS} characters")
    if dataset.id_mode != IdMode.PSEUDONYMIZED or privacy.PSEUDONYM_RE.match(user_id):
        return user_id
    try:
        key = privacy.pseudonymization_key()
    except ImportRejected as exc:
        raise ErasureInvalid("user_id", "this dataset is pseudonymized: " + exc.message) from None
    if dataset.pseudonym_key_check and dataset.pseudonym_key_check != privacy.key_check(key):
        raise ErasureInvalid("user_id", f"{privacy.KEY_ENV} is not the key this dataset was "
                                        "pseudonymized with; give the pseudonym instead")
    return privacy.pseudonym(key, user_id)


def _secret() -> str:
    return str(settings.SECRET_KEY)


def erase_user(*, dataset: Dataset, user_id: str, requested_by: object | None,
               reason: str = "") -> tuple[Erasure, bool]:
    """Record an erasure request and queue its job. Returns (erasure, created): a request for
    a user whose erasure is still pending returns that one. A user found nowhere in the
    dataset is refused (ErasureInvalid), saying when it was erased if it was."""
    sid = stored_id(dataset, user_id)
    with transaction.atomic():
        Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
        for earlier in Erasure.objects.filter(dataset=dataset).order_by("-created_at", "-id"):
            if earlier.finished_at is None and privacy.user_hash_matches(
                    earlier.user_hash, sid, _secret()):
                return earlier, False
        if not _found(dataset, sid):
            done = next((e for e in Erasure.objects.filter(dataset=dataset, finished_at__isnull=False)
                         if privacy.user_hash_matches(e.user_hash, sid, _secret())), None)
            if done is not None:
                raise ErasureInvalid("user_id", f"nothing to erase: this user was erased by "
                                                f"erasure #{done.pk} on "
                                                f"{done.finished_at:%Y-%m-%d %H:%M} UTC")
            raise ErasureInvalid("user_id", "nothing to erase: no user with this id in this "
                                            "dataset's events, attributes or stored results")
        erasure = Erasure.objects.create(
            workspace=dataset.workspace, dataset=dataset, dataset_name=dataset.name,
            user_hash=privacy.salted_user_hash(sid, _secret()), reason=reason[:1000],
            requested_by=requested_by if getattr(requested_by, "is_authenticated", False)
            else None)
        job = job_create(workspace=dataset.workspace, kind="erase",
                         user=erasure.requested_by,
                         params={"erasure_id": erasure.pk, "user_id": sid},
                         input_hash=hashlib.sha256(f"erase:{erasure.pk}".encode()).hexdigest())
        erasure.job = job
        erasure.save(update_fields=["job"])
    return erasure, True


# ----- where an id is kept -----------------------------------------------------------------------
def _snapshot_files(dataset: Dataset) -> list[Path]:
    folder = get_store().root / "snapshots" / dataset.store_key
    return sorted(folder.glob("refresh-*.parquet")) if folder.exists() else []


def _cluster_files(dataset: Dataset) -> list[Path]:
    jobs = Job.objects.filter(workspace=dataset.workspace, kind="clusters",
                              params__dataset_id=dataset.pk).values_list("pk", flat=True)
    root = get_store().root / "clusters"
    return [p for p in (root / f"job-{pk}.parquet" for pk in jobs) if p.exists()]


def _experiments(dataset: Dataset) -> Any:
    from planner.models import Experiment

    return Experiment.objects.filter(workspace=dataset.workspace).filter(
        Q(dataset=dataset) | Q(dataset__isnull=True))


def _assignment_files(dataset: Dataset) -> list[tuple[int, Path]]:
    out = []
    for pk, name in _experiments(dataset).exclude(assignments_file="").values_list(
            "pk", "assignments_file"):
        if Path(name).exists():
            out.append((pk, Path(name)))
    return out


def _file_has(path: Path, sid: str) -> bool:
    table = pq.read_table(path, columns=["user_id"], filters=[("user_id", "=", sid)])
    return table.num_rows > 0


def _found(dataset: Dataset, sid: str) -> bool:
    """Whether the id is anywhere an erasure would remove it from."""
    if privacy.store_mentions(get_store(), dataset.store_key, sid):
        return True
    files = _snapshot_files(dataset) + _cluster_files(dataset) + [
        p for _, p in _assignment_files(dataset)]
    if any(_file_has(p, sid) for p in files):
        return True
    return any(sid in (s.definition.get("members") or [])
               for s in Segment.objects.filter(dataset=dataset, kind=SegmentKind.CLUSTER)
               if isinstance(s.definition, dict))


def _rewrite_without(path: Path, sid: str) -> int:
    """Rewrite a Parquet file of results without the id's rows (atomically); rows removed."""
    if not _file_has(path, sid):
        return 0
    table = pq.read_table(path)
    kept, removed = privacy.without_user(table, sid)
    tmp = path.with_name(path.name + ".erasing")
    pq.write_table(kept, tmp)
    tmp.replace(path)
    return removed


# ----- the job -----------------------------------------------------------------------------------
@job_handler("erase")
def erasure_run(job: Job) -> dict[str, Any]:
    erasure = Erasure.objects.select_related("dataset", "workspace").get(
        pk=job.params["erasure_id"])
    if erasure.finished_at is not None:
        _forget_id(job, erasure)
        return {"erasure_id": erasure.pk, "reused": True, **erasure.counts}
    sid = job.params.get("user_id")
    if not sid:
        raise JobFailed("the user id is no longer held by this job; request the erasure again")
    try:
        return _erase(job, erasure, str(sid))
    except (OperationalError, InterfaceError, ConnectionError, TimeoutError):
        raise  # retried: the job keeps the id until it ends
    except BaseException:
        _forget_id(job, erasure)
        raise


def _forget_id(job: Job, erasure: Erasure) -> None:
    Job.objects.filter(pk=job.pk).update(params={"erasure_id": erasure.pk})


def _erase(job: Job, erasure: Erasure, sid: str) -> dict[str, Any]:
    dataset = erasure.dataset
    if dataset is None:  # deleted meanwhile: its store went with it
        raise JobFailed("the dataset was deleted")
    store = get_store()
    key = dataset.store_key
    job_progress(job, 10, "rewriting the user's partition of the event store")
    with store.write_lock(key):
        in_store = privacy.erase_from_store(store, key, sid, str(erasure.pk))
    fault_point("erase-after-publish")

    job_progress(job, 40, "removing the user from stored result files")
    touched: dict[str, int] = {}
    rows = 0
    for name, paths in (("snapshot_files", _snapshot_files(dataset)),
                        ("cluster_files", _cluster_files(dataset))):
        for path in paths:
            removed = _rewrite_without(path, sid)
            if removed:
                touched[name] = touched.get(name, 0) + 1
                rows += removed
    assignment_rows: dict[int, int] = {}
    for pk, path in _assignment_files(dataset):
        removed = _rewrite_without(path, sid)
        if removed:
            touched["assignment_tables"] = touched.get("assignment_tables", 0) + 1
            rows += removed
        assignment_rows[pk] = pq.ParquetFile(path).metadata.num_rows
    touched["raw_uploads_deleted"] = _delete_raw_uploads(dataset, sid)
    # Kept across a redelivery (the files rewritten before a crash are not found again).
    prior = (Erasure.objects.filter(pk=erasure.pk).values_list("counts", flat=True).first()
             or {}).get("files_done", {})
    touched = {k: touched.get(k, 0) + prior.get(k, 0) for k in set(touched) | set(prior)
               if k != "_rows"}
    rows += int(prior.get("_rows", 0))
    Erasure.objects.filter(pk=erasure.pk).update(counts={"files_done": {**touched,
                                                                        "_rows": rows}})

    version = store.current(key)
    catalogs: dict[str, Any] = {}
    if in_store.get("published") and version is not None:
        job_progress(job, 70, "rebuilding the event catalog")
        catalogs = {
            "event_catalog": event_catalog(store.iter_partitions(
                key, columns=["user_id", "event", "timestamp", "properties"])),
            "attribute_catalog": attribute_catalog(store.read_users(key)),
        }
    job_progress(job, 85, "removing the user from saved segments and cached results")
    with transaction.atomic():
        touched.update(_erase_db_traces(dataset, sid, job))
        for pk, n in assignment_rows.items():
            _experiments(dataset).filter(pk=pk).exclude(assignments_rows=n).update(
                assignments_rows=n)
        if version is not None and in_store.get("published"):
            manifest = version.manifest
            Dataset.objects.filter(pk=dataset.pk).update(
                version=max(version.number, dataset.version),
                total_events=int(manifest.get("total_events", 0)),
                total_users=int(manifest.get("total_users", 0)),
                updated_at=timezone.now(), **catalogs)
        touched = {k: v for k, v in touched.items() if v}
        counts = {
            "events_removed": int(in_store.get("events_removed", 0)),
            "attributes_removed": int(in_store.get("attributes_removed", 0)),
            "users_removed": int(in_store.get("users_removed", 0)),
            "report_samples_removed": int(in_store.get("report_samples_removed", 0)),
            "result_rows_removed": rows,
            "results_touched": sum(touched.values()),
            "results": touched,
            "store_version": int(in_store.get("version", 0)),
            "new_store_version": bool(in_store.get("published")),
        }
        Erasure.objects.filter(pk=erasure.pk).update(counts=counts, finished_at=timezone.now())
        _forget_id(job, erasure)
    from . import segment_services

    segment_services._CACHE.clear()  # this process's arrays of the old version held the user
    done = (f"erased {counts['events_removed']:,} events and {counts['attributes_removed']} "
            f"attributes; {counts['results_touched']} stored results touched")
    job_progress(job, 100, done)
    return {"erasure_id": erasure.pk, **counts}


def _delete_raw_uploads(dataset: Dataset, sid: str) -> int:
    """Raw upload files kept for finished imports that mention the id are deleted (the store
    has their rows; nothing reads them again). A file an unfinished import waits for stays."""
    busy = [ImportStatus.PENDING, ImportStatus.RUNNING]
    deleted = 0
    records = Import.objects.filter(dataset=dataset).exclude(status__in=busy)
    for path in {p for r in records for p in (r.events_path, r.users_path) if p}:
        file = Path(path)
        if not file.exists() or not privacy.file_mentions(file, sid):
            continue
        waiting = Import.objects.filter(status__in=busy).filter(
            Q(events_path=path) | Q(users_path=path))
        if waiting.exists():
            continue
        file.unlink(missing_ok=True)
        deleted += 1
    return deleted


def _erase_db_traces(dataset: Dataset, sid: str, job: Job) -> dict[str, int]:
    """Saved member lists and per-user strings in results, reports and job results."""
    touched = {"segments": 0, "behaviour_results": 0, "import_reports": 0, "job_results": 0,
               "experiment_results": 0}
    for segment in Segment.objects.filter(dataset=dataset, kind=SegmentKind.CLUSTER):
        definition = segment.definition if isinstance(segment.definition, dict) else {}
        members = definition.get("members")
        if isinstance(members, list) and sid in members:
            segment.definition = {**definition, "members": [m for m in members if m != sid]}
            segment.save(update_fields=["definition", "updated_at"])
            touched["segments"] += 1

    def scrub_rows(queryset: Any, fields: tuple[str, ...], name: str) -> None:
        touched.setdefault(name, 0)
        for row in queryset.only("pk", *fields).iterator(chunk_size=1000):
            changes = {}
            for field in fields:
                value = getattr(row, field)
                if sid not in json.dumps(value, default=str):
                    continue
                new, n = privacy.scrub(value, sid)
                if n:
                    changes[field] = new
            if changes:
                type(row).objects.filter(pk=row.pk).update(**changes)
                touched[name] += 1

    scrub_rows(BehaviourAnalysis.objects.filter(dataset=dataset), ("result",), "behaviour_results")
    scrub_rows(Import.objects.filter(dataset=dataset), ("report", "error"), "import_reports")
    scrub_rows(Job.objects.filter(workspace=dataset.workspace).exclude(pk=job.pk), ("result",),
               "job_results")
    scrub_rows(Refresh.objects.filter(dataset=dataset), ("summary",), "job_results")
    scrub_rows(_experiments(dataset), ("result",), "experiment_results")
    if apps.is_installed("audit"):  # the history's before/after of member lists (this one too)
        entries = apps.get_model("audit", "AuditEntry").objects.filter(
            workspace=dataset.workspace)
        scrub_rows(entries, ("before", "after"), "audit_entries")
    return touched


__all__ = ["ErasureInvalid", "erase_user", "stored_id"]
