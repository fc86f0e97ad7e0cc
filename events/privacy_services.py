"""Erasure on request: a user's events, attributes and traces in stored results removed.

``erase_user`` records the request (an ``Erasure`` holding a salted hash of the id, never the
id) and queues a job. The job, safe to run twice:

1. publishes a store version without the user (only the user's partition and the users file
   are rewritten; the manifest records the erasure, so a redelivered job does not do it again)
   and removes the older versions that still hold the rows;
2. rewrites the files of stored results without the id (refresh membership files, cluster
   label files, experiment assignment tables: each app that keeps such files names them with
   an ``ErasureHook``); deletes kept raw uploads that mention it;
3. in one transaction: per-user strings in import reports and job results, whatever the
   registered hooks scrub (saved member lists, cached results, the audit history), the
   dataset's version (so cached analyses are recomputed), the erasure's counts.

Higher apps register their hooks from their ``AppConfig.ready()`` (``register_erasure_hook``),
so this lower app never imports them; hooks run in registration order (the app order).

The id itself travels in the job's params only while the job is pending or running; they are
cleared when it ends.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.changes import touch
from jobs.faults import fault_point
from jobs.services import Job, JobFailed, job_create, job_handler, job_progress

from . import privacy
from .catalog import attribute_catalog, event_catalog
from .errors import FieldError
from .ingest import ImportRejected
from .models import Dataset, Erasure, IdMode, Import, ImportStatus
from .services import (
    forget_loaded_events,
    get_store,
    kept_for_another_workspace,
    open_upload,
    remove_upload,
    upload_exists,
)

MAX_USER_ID_CHARS = 1000


class ErasureInvalid(FieldError):
    """An erasure request was refused; ``field`` names the input."""


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
class Scrubber:
    """Removes one id from JSON fields of stored rows and counts what it touched."""

    def __init__(self, sid: str) -> None:
        self.sid = sid
        self.touched: dict[str, int] = {}

    def count(self, name: str, n: int = 1) -> None:
        self.touched[name] = self.touched.get(name, 0) + n

    def rows(self, queryset: Any, fields: tuple[str, ...], name: str) -> None:
        """Scrub the id out of these JSON fields of every row of the queryset."""
        self.touched.setdefault(name, 0)
        for row in queryset.only("pk", *fields).iterator(chunk_size=1000):
            changes = {}
            for field in fields:
                value = getattr(row, field)
                if self.sid not in json.dumps(value, default=str):
                    continue
                new, n = privacy.scrub(value, self.sid)
                if n:
                    changes[field] = new
            if changes:
                type(row).objects.filter(pk=row.pk).update(**changes)
                self.touched[name] += 1


@dataclass(frozen=True)
class ErasureHook:
    """What a higher app keeps per user for a dataset, so an erasure can find and remove it.

    ``files``: result files (Parquet with a ``user_id`` column) as (count name, path in the
    store: ``EventStore.file_path``, local or remote);
    ``mentions``: whether the id is kept anywhere else (e.g. a saved member list);
    ``scrub``: removes the id from the app's rows, inside the erasure's transaction."""

    files: Callable[[Dataset], list[tuple[str, str]]] = lambda dataset: []
    mentions: Callable[[Dataset, str], bool] = lambda dataset, sid: False
    scrub: Callable[[Dataset, Scrubber], None] = lambda dataset, scrubber: None


ERASURE_HOOKS: list[ErasureHook] = []


def register_erasure_hook(hook: ErasureHook) -> None:
    """Register where a higher app keeps user ids (from its ``AppConfig.ready()``)."""
    ERASURE_HOOKS.append(hook)


def _result_files(dataset: Dataset) -> list[tuple[str, str]]:
    return [(name, path) for hook in ERASURE_HOOKS for name, path in hook.files(dataset)]


def _file_has(path: str, sid: str) -> bool:
    table = get_store().read_file_table(str(path), columns=["user_id"],
                                        filters=[("user_id", "=", sid)])
    return table.num_rows > 0


def _found(dataset: Dataset, sid: str) -> bool:
    """Whether the id is anywhere an erasure would remove it from."""
    if privacy.store_mentions(get_store(), dataset.store_key, sid):
        return True
    if any(_file_has(path, sid) for _, path in _result_files(dataset)):
        return True
    return any(hook.mentions(dataset, sid) for hook in ERASURE_HOOKS)


def _rewrite_without(path: str, sid: str) -> int:
    """Rewrite a Parquet file of results without the id's rows (whole: a temporary file and a
    rename locally, one put on an object store); rows removed."""
    if not _file_has(path, sid):
        return 0
    store = get_store()
    kept, removed = privacy.without_user(store.read_file_table(str(path)), sid)
    store.write_file_table(str(path), kept)
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
    for name, path in _result_files(dataset):
        removed = _rewrite_without(path, sid)
        if removed:
            touched[name] = touched.get(name, 0) + 1
            rows += removed
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
        touch(dataset.workspace_id, "datasets")  # the update() calls send no signal
        _forget_id(job, erasure)
    forget_loaded_events()  # this process's arrays of the old version held the user
    done = (f"erased {counts['events_removed']:,} events and {counts['attributes_removed']} "
            f"attributes; {counts['results_touched']} stored results touched")
    job_progress(job, 100, done)
    return {"erasure_id": erasure.pk, **counts}


def _delete_raw_uploads(dataset: Dataset, sid: str) -> int:
    """Raw upload files kept for finished imports that mention the id are deleted (the store
    has their rows; nothing reads them again). A file an unfinished import waits for stays,
    and so does one another workspace's import points to (uploads from before the folders
    per workspace can be shared): an erasure touches only its own workspace's files."""
    busy = [ImportStatus.PENDING, ImportStatus.RUNNING]
    deleted = 0
    records = Import.objects.filter(dataset=dataset).exclude(status__in=busy)
    for path in {p for r in records for p in (r.events_path, r.users_path) if p}:
        if not upload_exists(path):
            continue
        with open_upload(path) as handle:
            if not privacy.file_mentions(handle, sid):
                continue
        waiting = Import.objects.filter(status__in=busy).filter(
            Q(events_path=path) | Q(users_path=path))
        if waiting.exists() or kept_for_another_workspace(path, dataset.workspace_id):
            continue
        remove_upload(path)
        deleted += 1
    return deleted


def _erase_db_traces(dataset: Dataset, sid: str, job: Job) -> dict[str, int]:
    """Per-user strings in import reports and job results, then every registered hook's rows."""
    scrubber = Scrubber(sid)
    scrubber.rows(Import.objects.filter(dataset=dataset), ("report", "error"), "import_reports")
    scrubber.rows(Job.objects.filter(workspace=dataset.workspace).exclude(pk=job.pk),
                  ("result",), "job_results")
    for hook in ERASURE_HOOKS:
        hook.scrub(dataset, scrubber)
    return scrubber.touched
