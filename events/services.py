"""Writes: datasets and imports. Thin orchestration around the pure ingest core."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.changes import touch
from accounts.models import Workspace
from jobs.faults import fault_point
from jobs.services import (
    Job,
    JobFailed,
    job_create,
    job_failure_hook,
    job_handler,
    job_progress,
)

from . import privacy
from .catalog import attribute_catalog, event_catalog
from .ingest import (
    ImportOptions,
    ImportRejected,
    anomalous_days,
    merge_into_store,
    parse_events,
    parse_users,
)
from .ingest.formats import in_users_words
from .models import Dataset, IdMode, Import, ImportStatus
from .signals import send_import_succeeded
from .store import EventStore

log = logging.getLogger(__name__)


def get_store() -> EventStore:
    return EventStore(settings.EVENT_STORE, partitions=settings.EVENT_STORE_PARTITIONS,
                      local_root=settings.VAR_DIR / "store-files",
                      options=settings.EVENT_STORE_OPTIONS, locker=dataset_write_lock)


@contextmanager
def dataset_write_lock(key: str, timeout: float | None = None) -> Iterator[None]:
    """The write lock of a dataset in a URL store, held by the database so workers on any
    machine share it: a PostgreSQL session advisory lock (polled when ``timeout`` is given:
    TimeoutError after it). Another database (SQLite) is on one machine: a lock file in the
    system's temporary folder (nothing of the store's content)."""
    digest = hashlib.sha256(f"{settings.EVENT_STORE}\0{key}".encode()).digest()
    if connection.vendor != "postgresql":
        yield from _local_lock(digest.hex(), timeout)
        return
    lock_id = int.from_bytes(digest[:8], "big", signed=True)
    with connection.cursor() as cursor:
        if timeout is None:
            cursor.execute("SELECT pg_advisory_lock(%s)", [lock_id])
        else:
            deadline = time.monotonic() + timeout
            while True:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [lock_id])
                if cursor.fetchone()[0]:
                    break
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"dataset {key}: the write lock is held")
                time.sleep(0.1)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [lock_id])


def _local_lock(name: str, timeout: float | None) -> Iterator[None]:
    folder = Path(tempfile.gettempdir()) / "segment-planner-locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "a+b") as handle:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if deadline is None
                                                              else fcntl.LOCK_NB))
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:  # type: ignore[operator]
                    raise TimeoutError("the dataset's write lock is held") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def dataset_create(*, workspace: Workspace, name: str, description: str = "") -> Dataset:
    """Create an empty dataset in a workspace (IntegrityError when the name is taken)."""
    with transaction.atomic():
        return Dataset.objects.create(workspace=workspace, name=name.strip(),
                                      description=description)


def upload_dir(workspace: Workspace) -> str:
    """The workspace's folder of raw uploads: ``uploads/<workspace id>/`` in the store (for a
    URL store, objects under its URL: a worker on another machine reads them). One folder per
    workspace, so the same bytes uploaded to two workspaces are two files, and one workspace's
    erasure never deletes another's. (Imports made before kept their files in ``uploads/``
    itself; their rows point there and still work.)"""
    return get_store().file_path("uploads", str(workspace.pk))


def save_upload(stream: BinaryIO, *, name: str, workspace: Workspace,
                max_bytes: int | None = None) -> tuple[str, str]:
    """Copy an uploaded stream to the workspace's upload folder under its sha256; returns
    (path, sha). The bytes go to a private temporary file first (the name is the sha of all
    of them), then into the store whole; the temporary file is deleted."""
    store = get_store()
    digest = hashlib.sha256()
    folder = upload_dir(workspace)
    if store.fs is None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        tmp = Path(folder) / f".incoming-{uuid.uuid4().hex}"
    else:
        tmp = Path(tempfile.mkdtemp(prefix="upload-")) / "incoming"
    size = 0
    try:
        with open(tmp, "wb") as out:
            while chunk := stream.read(1 << 20):
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise ImportRejected("too_large", f"the file is over the limit of {max_bytes:,} bytes",
                                         name)
                digest.update(chunk)
                out.write(chunk)
        sha = digest.hexdigest()
        suffix = "".join(Path(name).suffixes[-1:]).lower()[:10]
        final = f"{folder}/{sha}{suffix}"
        if store.fs is None:
            os.replace(tmp, final)
        else:
            store.put_local_file(tmp, final)
        return final, sha
    finally:
        tmp.unlink(missing_ok=True)
        if store.fs is not None:
            tmp.parent.rmdir()


def is_store_url(path: str) -> bool:
    """Whether a stored file path is an object of a URL store (else a local path)."""
    return "://" in str(path)


def open_upload(path: str | Path, mode: str = "rb") -> Any:
    """A kept upload, local or in a URL store."""
    if is_store_url(str(path)):
        import fsspec

        return fsspec.open(str(path), mode, **settings.EVENT_STORE_OPTIONS).open()
    return open(path, mode)


def upload_exists(path: str) -> bool:
    if is_store_url(path):
        import fsspec

        fs, inner = fsspec.core.url_to_fs(path, **settings.EVENT_STORE_OPTIONS)
        return bool(fs.exists(inner))
    return Path(path).exists()


def remove_upload(path: str) -> None:
    if is_store_url(path):
        import fsspec

        fs, inner = fsspec.core.url_to_fs(path, **settings.EVENT_STORE_OPTIONS)
        if fs.exists(inner):
            fs.rm_file(inner)
        return
    Path(path).unlink(missing_ok=True)


@contextmanager
def local_upload(path: str, folder: Path) -> Iterator[Path]:
    """A kept upload as a local file the parsers can open: itself when local; for a URL
    store, a copy in ``folder`` (the task's private temporary folder, deleted after)."""
    if not is_store_url(path):
        yield Path(path)
        return
    target = folder / path.rstrip("/").rsplit("/", 1)[-1]
    with open_upload(path) as src, open(target, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    try:
        yield target
    finally:
        target.unlink(missing_ok=True)


def _file_sha(path: str | Path) -> str:
    """The sha256 of a kept upload's bytes. An object ``save_upload`` put in a URL store is
    named by it (content-addressed): read from the name rather than downloaded again."""
    name = str(path).rsplit("/", 1)[-1]
    if is_store_url(str(path)) and "/uploads/" in str(path) and \
            re.fullmatch(r"[0-9a-f]{64}(\.[A-Za-z0-9]{1,9})?", name):
        return name[:64]
    digest = hashlib.sha256()
    with open_upload(path) as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def import_create(
    *,
    dataset: Dataset,
    user: object | None,
    events: tuple[str | Path, str] | None,
    users: tuple[str | Path, str] | None = None,
    options: dict[str, Any] | None = None,
) -> tuple[Import, bool]:
    """Register an import and queue its job. Returns (import, created).

    The same bytes with the same options imported into the same dataset again return the
    earlier import (created=False) and add nothing.
    """
    if events is None and users is None:
        raise ImportRejected("no_file", "give an events file, a users file or both")
    options = {k: v for k, v in (options or {}).items() if v not in (None, "", {})}
    if options.pop("pseudonymize", False):
        options["pseudonymize"] = True  # only when set: raw imports keep their earlier hash
        key = privacy.pseudonymization_key()  # refused now, not in the worker, when missing
        if dataset.pseudonym_key_check and dataset.pseudonym_key_check != privacy.key_check(key):
            raise _key_changed()
    parts = [
        f"events:{_file_sha(events[0]) if events else ''}",
        f"users:{_file_sha(users[0]) if users else ''}",
        "options:" + json.dumps(options, sort_keys=True),
    ]
    input_hash = hashlib.sha256("|".join(parts).encode()).hexdigest()
    with transaction.atomic():
        # Serialize imports into one dataset so the duplicate check cannot race.
        Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
        earlier = (
            Import.objects.filter(dataset=dataset, input_hash=input_hash)
            .exclude(status__in=[ImportStatus.REJECTED, ImportStatus.FAILED])
            .first()
        )
        if earlier is not None:
            return earlier, False
        _check_id_mode(dataset, pseudonymized=bool(options.get("pseudonymize")))
        record = Import.objects.create(
            workspace=dataset.workspace,
            dataset=dataset,
            events_name=events[1] if events else "",
            users_name=users[1] if users else "",
            events_path=str(events[0]) if events else "",
            users_path=str(users[0]) if users else "",
            input_hash=input_hash,
            options=options,
            created_by=user,
        )
        job = job_create(workspace=dataset.workspace, kind="import", user=user,
                         params={"import_id": record.pk}, input_hash=input_hash)
        record.job = job
        record.save(update_fields=["job"])
    return record, True


def _key_changed() -> ImportRejected:
    return ImportRejected(
        "pseudonymization_key_changed",
        f"{privacy.KEY_ENV} is not the key this dataset was pseudonymized with; its "
        "pseudonyms would not match the stored ones", privacy.KEY_ENV)


def _check_id_mode(dataset: Dataset, *, pseudonymized: bool) -> None:
    """One dataset holds raw ids or pseudonyms, never both (they could never be matched)."""
    mode = IdMode.PSEUDONYMIZED if pseudonymized else IdMode.RAW
    current = Dataset.objects.filter(pk=dataset.pk).values_list("id_mode", flat=True).first()
    others = Import.objects.filter(
        dataset=dataset,
        status__in=[ImportStatus.PENDING, ImportStatus.RUNNING, ImportStatus.SUCCEEDED])
    mixed = current not in (IdMode.UNSET, mode, None) or any(
        bool((o or {}).get("pseudonymize")) != pseudonymized
        for o in others.values_list("options", flat=True))
    if mixed:
        held = "pseudonymized" if not pseudonymized else "raw"
        raise ImportRejected(
            "pseudonymization_mismatch",
            f"this dataset holds {held} user ids; an import "
            f"{'with' if pseudonymized else 'without'} pseudonymization would mix raw ids and "
            "pseudonyms (import into a new dataset instead)", "option pseudonymize")


def import_options(options: dict[str, Any], max_bytes: int | None = None) -> ImportOptions:
    return ImportOptions(
        now=timezone.now(),
        format=options.get("format", "auto"),
        mapping=options.get("mapping", {}) or {},
        timezone=options.get("timezone") or None,
        max_bytes=max_bytes,
    )


def build_report(parsed_events: Any, parsed_users: Any, merge: Any) -> dict[str, Any]:
    """The quality report of one import, as stored and shown."""
    report: dict[str, Any] = {}
    if parsed_events is not None:
        problems = parsed_events.problems
        days = anomalous_days(parsed_events.frame["timestamp"])
        if len(days):
            problems.add_raw(
                "anomalous_day", len(days),
                [{"line": None, "values": row} for row in days.head(5).to_dict("records")],
                "days whose event volume is far from the typical day (robust z-score > 5)",
            )
        report["events"] = {
            "format": parsed_events.format,
            "columns": parsed_events.columns,
            "rows_read": parsed_events.rows_read,
            "rows_valid": len(parsed_events.frame),
            "problems": problems.as_dict(),
        }
    if parsed_users is not None:
        report["users"] = {
            "format": parsed_users.format,
            "rows_read": parsed_users.rows_read,
            "rows_valid": len(parsed_users.frame),
            "problems": parsed_users.problems.as_dict(),
        }
    return report


@job_failure_hook("import")
def import_failed(job: Job) -> None:
    """The import job failed (an unexpected error, or the last retry given up): its row says
    so, with the job's message, instead of staying pending or running."""
    Import.objects.filter(job=job, status__in=[ImportStatus.PENDING, ImportStatus.RUNNING]).update(
        status=ImportStatus.FAILED, finished_at=timezone.now(),
        error={"code": "failed", "message": (job.error or "the import job failed")[:2000],
               "where": ""})


@job_handler("import")
def import_run(job: Job) -> dict[str, Any]:
    """Parse, validate, de-duplicate and publish one import; finalize its rows exactly once."""
    record = Import.objects.select_related("dataset").get(pk=job.params["import_id"])
    if record.status == ImportStatus.SUCCEEDED:
        if record.options.get("pseudonymize"):
            _discard_raw_uploads(record)
        return {"import_id": record.pk, "rows_added": record.rows_added, "reused": True}
    Import.objects.filter(pk=record.pk).update(status=ImportStatus.RUNNING)
    dataset = record.dataset
    store = get_store()
    opts = import_options(record.options)
    parsed_events = parsed_users = None
    pseudonymized = bool(record.options.get("pseudonymize"))
    key = b""
    copies: dict[str, str] = {}  # local copy -> the kept upload it was read from
    try:
        if pseudonymized:
            key = privacy.pseudonymization_key()
            if dataset.pseudonym_key_check and dataset.pseudonym_key_check != privacy.key_check(key):
                raise _key_changed()
        if dataset.id_mode and dataset.id_mode != (
                IdMode.PSEUDONYMIZED if pseudonymized else IdMode.RAW):
            _check_id_mode(dataset, pseudonymized=pseudonymized)
        # A URL store's uploads are read from a copy private to this task, deleted after.
        with tempfile.TemporaryDirectory(prefix=f"import-{record.pk}-") as private:
            if record.events_path:
                job_progress(job, 5, "reading and validating events")
                with local_upload(record.events_path, Path(private)) as local:
                    copies[str(local)] = record.events_path
                    parsed_events = parse_events(local, opts, record.events_name)
            if record.users_path:
                job_progress(job, 40, "reading and validating users")
                with local_upload(record.users_path, Path(private)) as local:
                    copies[str(local)] = record.users_path
                    parsed_users = parse_users(local, opts, record.users_name)
        if pseudonymized:  # before anything is stored: the store never sees a raw id
            if parsed_events is not None:
                privacy.pseudonymize_column(parsed_events.frame, key)
                privacy.pseudonymize_samples(parsed_events.problems.samples, key,
                                             parsed_events.columns["user_id"])
            if parsed_users is not None:
                privacy.pseudonymize_column(parsed_users.frame, key)
                privacy.pseudonymize_samples(parsed_users.problems.samples, key,
                                             parsed_users.user_column)
        if parsed_users is not None:
            _check_users_match(store, dataset, parsed_events, parsed_users)
    except ImportRejected as raised:
        exc = _in_users_words(record, raised, copies)
        _reject(record, exc)
        if pseudonymized:
            _discard_raw_uploads(record)
        raise JobFailed(f"rejected: {exc}") from None
    job_progress(job, 55, "de-duplicating and writing the event store")
    report = build_report(parsed_events, parsed_users, None)
    try:
        with store.write_lock(dataset.store_key):  # not beside an erasure of the same dataset
            merge = merge_into_store(store, dataset.store_key, import_id=str(record.pk),
                                     events=parsed_events, users=parsed_users, report=report,
                                     max_event_names=settings.MAX_EVENT_NAMES)
    except ImportRejected as exc:  # too many distinct event names: nothing was written
        _reject(record, exc)
        if pseudonymized:
            _discard_raw_uploads(record)
        raise JobFailed(f"rejected: {exc}") from None
    if parsed_events is not None:  # the merge adds what it found (same_event_other_amount)
        report["events"]["problems"] = parsed_events.problems.as_dict()
    if parsed_events is not None and merge.duplicates_in_file + merge.duplicates_of_stored:
        report["events"]["problems"]["duplicate"] = {
            "count": merge.duplicates_in_file + merge.duplicates_of_stored,
            "samples": [],
            "note": f"{merge.duplicates_in_file} repeated inside the file, "
                    f"{merge.duplicates_of_stored} already stored; removed",
        }
    fault_point("import-after-publish")
    job_progress(job, 80, "building the event catalog")
    events_catalog = event_catalog(store.iter_partition_tables(
        dataset.store_key, columns=["user_id", "event", "timestamp", "properties", "revenue"]))
    users_catalog = attribute_catalog(store.read_users(dataset.store_key))
    rows_read = (parsed_events.rows_read if parsed_events else 0)
    rows_kept = len(parsed_events.frame) - merge.duplicates_in_file - merge.duplicates_of_stored \
        if parsed_events else 0
    report["summary"] = {**asdict(merge), "rows_read": rows_read, "rows_kept": rows_kept}
    with transaction.atomic():
        Dataset.objects.filter(pk=dataset.pk).update(
            version=merge.version if not merge.already_applied else max(dataset.version, merge.version),
            total_events=merge.total_events, total_users=merge.total_users,
            event_catalog=events_catalog, attribute_catalog=users_catalog,
            updated_at=timezone.now(),
        )
        Dataset.objects.filter(pk=dataset.pk, id_mode=IdMode.UNSET).update(
            id_mode=IdMode.PSEUDONYMIZED if pseudonymized else IdMode.RAW,
            pseudonym_key_check=privacy.key_check(key) if pseudonymized else "")
        touch(dataset.workspace_id, "datasets")  # the update() calls send no signal
        Import.objects.filter(pk=record.pk).update(
            status=ImportStatus.SUCCEEDED, report=report, error={},
            rows_read=rows_read, rows_kept=rows_kept, rows_added=merge.rows_added,
            dataset_version=merge.version, finished_at=timezone.now(),
        )
    if pseudonymized:
        _discard_raw_uploads(record)
    # Also after a re-run that found its merge applied: the first run may have stopped before
    # this line (subscribers are idempotent per version).
    send_import_succeeded(import_id=record.pk, dataset_id=dataset.pk, version=merge.version)
    job_progress(job, 100, f"imported {merge.rows_added:,} new events")
    return {"import_id": record.pk, "rows_added": merge.rows_added, "version": merge.version}


def _check_users_match(store: EventStore, dataset: Dataset, parsed_events: Any,
                       parsed_users: Any) -> None:
    """A users file that shares no user with the dataset is the wrong file."""
    ids = set(parsed_users.frame["user_id"])
    known: set[str] = set()
    if parsed_events is not None:
        known |= set(parsed_events.frame["user_id"])
    for frame in store.iter_partitions(dataset.store_key, columns=["user_id"]):
        known |= set(frame["user_id"].unique())
    if not known:
        return
    matched = len(ids & known)
    if matched == 0:
        raise ImportRejected(
            "users_mismatch",
            f"none of the {len(ids):,} users in the users file has events in this dataset",
            "users file, column user_id",
        )
    missing = len(ids) - matched
    if missing:
        parsed_users.problems.add_raw(
            "users_without_events", missing,
            [{"line": None, "values": {"user_id": uid}} for uid in sorted(ids - known)[:5]],
            "users in the users file with no events; kept",
        )


def kept_for_another_workspace(path: str, workspace_id: int) -> bool:
    """Whether an import of another workspace points to this raw upload (a file from before
    uploads were kept per workspace can be shared): then it is that workspace's file too."""
    return Import.objects.exclude(workspace_id=workspace_id).filter(
        Q(events_path=path) | Q(users_path=path)).exists()


def _discard_raw_uploads(record: Import) -> None:
    """A pseudonymized import keeps no raw file once it ended (unless another import of the
    same bytes still waits for it, or the file is another workspace's too)."""
    for path in {record.events_path, record.users_path} - {""}:
        waiting = Import.objects.filter(
            status__in=[ImportStatus.PENDING, ImportStatus.RUNNING]).exclude(pk=record.pk)
        if waiting.filter(events_path=path).exists() or waiting.filter(users_path=path).exists():
            continue
        if kept_for_another_workspace(path, record.workspace_id):
            continue
        remove_upload(path)


def _in_users_words(record: Import, exc: ImportRejected,
                    copies: dict[str, str] | None = None) -> ImportRejected:
    """The rejection as its user reads it: a stored copy's server path or sha256 name replaced
    by the name the file was uploaded under (the readers say it so already; this also covers a
    message from anywhere else)."""
    message, where = exc.message, exc.where
    for local, kept in (copies or {}).items():  # a private copy of a URL store's upload
        name = record.events_name if kept == record.events_path else record.users_name
        message = in_users_words(message, Path(local), name)
        where = in_users_words(where, Path(local), name)
    for path, name in ((record.events_path, record.events_name),
                       (record.users_path, record.users_name)):
        if path and not is_store_url(path):
            message = in_users_words(message, Path(path), name)
            where = in_users_words(where, Path(path), name)
    return ImportRejected(exc.code, message, where)


def _reject(record: Import, exc: ImportRejected) -> None:
    Import.objects.filter(pk=record.pk).update(
        status=ImportStatus.REJECTED, error=exc.as_dict(), finished_at=timezone.now()
    )


def dataset_delete(*, dataset: Dataset) -> None:
    """Delete a dataset, then its stored events once the deletion has committed (a rolled
    back delete keeps its data)."""
    key = dataset.store_key
    with transaction.atomic():
        dataset.delete()
        transaction.on_commit(lambda: get_store().delete(key))


def copy_to_uploads(path: Path, *, workspace: Workspace) -> tuple[str, str]:
    """For the command line: keep a copy of the file under its sha256 like an upload."""
    with open(path, "rb") as handle:
        stored, _ = save_upload(handle, name=path.name, workspace=workspace)
    return stored, path.name


__all__ = ["copy_to_uploads", "dataset_create", "dataset_delete", "import_create", "save_upload"]


# ----- the per-user event frame of a dataset ------------------------------------------------------
_CACHE: dict[str, Any] = {}


def load_user_events(dataset: Dataset) -> Any:
    """The dataset's events as arrays, cached per process for the current store version."""
    store = get_store()
    version = store.current(dataset.store_key)
    if version is None:
        raise JobFailed("the dataset has no events yet; import some first")
    key = str(version.path)  # the published version's directory: unique and immutable
    if key not in _CACHE:
        _CACHE.clear()  # one dataset at a time: bounded memory
        _CACHE[key] = read_user_events(store, version, dataset.store_key)
    return _CACHE[key]


def read_user_events(store: Any, version: Any, store_key: str) -> Any:
    """A published version as the per-user frame (``events.loading.read_frame``)."""
    from .loading import read_frame

    return read_frame(store, version, store_key)


def forget_loaded_events() -> None:
    """Drop this process's cached frame (after an erasure: it held the erased user)."""
    _CACHE.clear()


def partition_user_events(store_key: str, version: int, part: int) -> Any:
    """One store partition of a version as a per-user event frame with only its own users'
    attributes (``events.loading.read_partition_frame``; for fan-out maps)."""
    from .loading import read_partition_frame

    return read_partition_frame(get_store(), store_key, version, part)
