"""Backup and restore of the database and the event store together (docs/DEPLOY.md).

A backup is a folder::

    manifest.json            written last: time, app version, migration leaf nodes, datasets
                             and their store versions, every file with its size and sha256
    database.jsonl-exact.gz  ``dumpdata`` of every app as JSON Lines with full-precision times
                             (natural foreign keys; content types, permissions and sessions
                             are left out: migrate recreates the first two, sessions are not
                             worth keeping)
    store/<key>/<version>/   for every dataset, the store version the database names (and the
    store/<key>/CURRENT      CURRENT one, when a job published it but has not committed yet)
    files/<path>             local files the database points to, by their path under the
                             store's local root (refresh membership files, cluster labels,
                             experiment assignment tables, kept raw uploads)
    external/<n>-<name>      such files outside the store's local root (restored in place)

Consistency: store versions are immutable and only CURRENT moves, under the dataset's write
lock. The backup takes every dataset's write lock (waiting, up to a timeout, for a running
import or erasure to publish), dumps the database in one snapshot transaction (REPEATABLE READ
on PostgreSQL; SQLite's read transaction is a snapshot), copies the versions that snapshot
names and the files it points to, writes the manifest and releases the locks.

Where files are: every model field that holds a file path is registered here
(``register_path_fields``; events registers its imports' raw uploads, higher apps register
theirs from ``AppConfig.ready()``), and result files whose path is computed (membership and
cluster label files) are found through the erasure hooks' ``files(dataset)``. This module
imports no higher app.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import time as dt_time
from pathlib import Path, PurePosixPath
from typing import Any

import django
from django.apps import apps
from django.conf import settings
from django.core import serializers
from django.core.management import call_command
from django.core.serializers import jsonl
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.models.signals import m2m_changed

from .models import Dataset
from .privacy_services import ERASURE_HOOKS
from .services import get_store
from .store import EventStore

FORMAT = 1
MANIFEST = "manifest.json"
DUMP_FORMAT = "jsonl-exact"
DUMP = f"database.{DUMP_FORMAT}.gz"
# Recreated by migrate (content types, permissions) or not worth restoring (sessions).
EXCLUDED = ["contenttypes", "auth.permission", "sessions"]
# A job that published but has not committed its database rows yet gets this long.
SETTLE_SECONDS = 30.0
CHUNK = 1 << 20

Log = Callable[[str], None]


class BackupError(Exception):
    """A backup or restore could not be made; the message says why and what to do."""


# ----- the dump's format -------------------------------------------------------------------------
class ExactEncoder(DjangoJSONEncoder):
    """Django's JSON encoder cuts times to milliseconds (ECMA-262); a backup keeps them whole."""

    def default(self, o: Any) -> Any:
        if isinstance(o, datetime | dt_time):
            return o.isoformat()
        return super().default(o)


class Serializer(jsonl.Serializer):
    """JSON Lines, as Django's, with whole microseconds (registered as ``jsonl-exact``)."""

    def _init_options(self) -> None:
        super()._init_options()
        self.json_kwargs["cls"] = ExactEncoder


Deserializer = jsonl.Deserializer


def _register_format() -> None:
    if DUMP_FORMAT not in serializers.get_serializer_formats():
        serializers.register_serializer(DUMP_FORMAT, __name__)


# ----- where the database keeps file paths ---------------------------------------------------------
PATH_FIELDS: dict[str, tuple[str, ...]] = {}


def register_path_fields(model_label: str, *fields: str) -> None:
    """Name the fields of a model that hold the absolute path of a local file (called from
    an ``AppConfig.ready()``): the backup copies those files, a restore puts them back and
    rewrites the paths when the store's local root moved."""
    PATH_FIELDS[model_label] = tuple(dict.fromkeys(PATH_FIELDS.get(model_label, ()) + fields))


register_path_fields("events.Import", "events_path", "users_path")


def _referenced_files() -> list[str]:
    """Every file the database points to (read inside the dump's snapshot): local paths, or
    URLs of objects in a URL store."""
    found: set[str] = set()
    for label, fields in PATH_FIELDS.items():
        model = apps.get_model(label)
        for row in model._base_manager.values_list(*fields):
            found.update(str(value) for value in row if value)
    for dataset in Dataset.objects.all():
        for hook in ERASURE_HOOKS:
            found.update(str(path) for _, path in hook.files(dataset))
    return sorted(found)


def _files_root(store: EventStore) -> str:
    """Where the store keeps its files beside the datasets (uploads, member lists, ...): the
    local root, or the URL of a URL store (recorded paths start with it)."""
    return store.url.rstrip("/") if store.fs is not None else str(store.root)


# ----- small helpers ----------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_hashed(read: Any, target: Path) -> tuple[str, int]:
    """Copy a readable binary handle to ``target``; returns (sha256, size)."""
    digest = hashlib.sha256()
    size = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        while chunk := read.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest(), size


def _app_version() -> dict[str, str]:
    import tomllib

    version = {"django": django.get_version(), "python": platform.python_version()}
    try:
        with open(Path(settings.BASE_DIR) / "pyproject.toml", "rb") as handle:
            version["app"] = str(tomllib.load(handle)["project"]["version"])
    except (OSError, KeyError, ValueError):
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=settings.BASE_DIR,
                                capture_output=True, text=True, timeout=10)
        if commit.returncode == 0:
            version["commit"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return version


def _leaf_nodes() -> list[list[str]]:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return sorted([app, name] for app, name in loader.graph.leaf_nodes())


# ----- the store: a local folder or an fsspec URL -------------------------------------------------
def _version_files(store: EventStore, version_path: Any) -> list[tuple[str, Callable[[], Any]]]:
    """(name relative to the version folder, opener) of every file of a version."""
    if store.fs is not None:
        base = str(version_path).rstrip("/")
        names = sorted(str(p) for p in store.fs.find(base))
        return [(n[len(base) + 1:], lambda n=n: store.fs.open(n, "rb")) for n in names]
    root = Path(version_path)
    return [(str(p.relative_to(root)), lambda p=p: open(p, "rb"))
            for p in sorted(root.rglob("*")) if p.is_file()]


def _dataset_remote(store: EventStore, key: str) -> str:
    store.dataset_dir(key)  # validates the key
    return f"{store.base}/{key}"


def _put_store_file(store: EventStore, key: str, name: str, source: Path) -> None:
    """Write one file of a dataset folder (``name`` relative to it) from the backup."""
    if store.fs is not None:
        target = f"{_dataset_remote(store, key)}/{name}"
        store.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        store.fs.put_file(str(source), target)
        return
    target = store.dataset_dir(key) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


# ----- locks ------------------------------------------------------------------------------------
@contextmanager
def _write_lock(store: EventStore, key: str, label: str, deadline: float,
                timeout: float) -> Iterator[None]:
    """The store's ``write_lock`` (the same lock), waiting at most until ``deadline``."""
    with ExitStack() as held:
        try:
            held.enter_context(store.write_lock(key, timeout=max(0.0, deadline - time.monotonic())))
        except TimeoutError:
            raise BackupError(
                f"dataset {label}: an import or erasure is writing it and did not "
                f"finish within {timeout:g} s; nothing was backed up. Try again when "
                "it has finished, or give it longer (--lock-timeout)") from None
        yield


def _label(row: dict[str, Any]) -> str:
    return f"'{row['name']}' (workspace {row['workspace__slug']}, store {row['key']})"


def _datasets() -> list[dict[str, Any]]:
    rows = Dataset.objects.order_by("pk").values("pk", "workspace_id", "workspace__slug",
                                                 "name", "version", "total_events")
    return [{**row, "key": f"ws{row['workspace_id']}-ds{row['pk']}"} for row in rows]


# ----- backup -----------------------------------------------------------------------------------
@dataclass
class _Copied:
    entries: list[dict[str, Any]]

    def add(self, out: Path, rel: str, read: Any, **extra: Any) -> None:
        sha, size = _copy_hashed(read, out / rel)
        self.entries.append({"path": rel, "sha256": sha, "size": size, **extra})


def backup(out: Path, *, lock_timeout: float = 600.0, log: Log = print) -> dict[str, Any]:
    """Write a consistent backup of the database and the event store into ``out`` (a new or
    empty folder). Returns the manifest."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} is not empty: give a new folder for each backup")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _backup(out, lock_timeout, log)
    except BaseException:
        # Nothing half-written stays behind (the folder was new or empty).
        if created:
            shutil.rmtree(out, ignore_errors=True)
        else:
            for child in out.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise


def _backup(out: Path, lock_timeout: float, log: Log) -> dict[str, Any]:
    store = get_store()
    started = datetime.now(UTC)
    deadline = time.monotonic() + lock_timeout
    with ExitStack() as locks:
        locked: set[str] = set()

        def lock(rows: Iterable[dict[str, Any]]) -> None:
            for row in sorted(rows, key=lambda r: r["key"]):
                if row["key"] not in locked:
                    locks.enter_context(_write_lock(store, row["key"], _label(row), deadline,
                                                    lock_timeout))
                    locked.add(row["key"])

        lock(_datasets())
        t_locked = time.monotonic()
        log(f"holding the write locks of {len(locked)} dataset(s)")
        _settle(store, min(deadline, time.monotonic() + SETTLE_SECONDS))
        datasets, files = _dump(out / DUMP)
        log(f"database dumped ({(out / DUMP).stat().st_size:,} bytes)")
        lock(datasets)  # datasets created meanwhile: no publish of theirs may prune a version
        copied = _Copied([])
        warnings: list[str] = []
        for row in datasets:
            row["versions"] = _copy_dataset(store, row, out, copied, warnings)
        missing = []
        root = store.root.resolve()
        remote_root = _files_root(store) + "/"
        for index, name in enumerate(files):
            if "://" in name:  # an object of the URL store (another store's: not reachable)
                if not name.startswith(remote_root) or not store.file_exists(name):
                    missing.append(name)
                    continue
                rel = name[len(remote_root):]
                with store.open_file(name) as handle:
                    copied.add(out, f"files/{rel}", handle, kind="file", target=rel)
                continue
            path = Path(name)
            if not path.is_file():
                missing.append(str(path))
                continue
            resolved = path.resolve()
            with open(path, "rb") as handle:
                if resolved.is_relative_to(root):
                    rel = resolved.relative_to(root).as_posix()
                    copied.add(out, f"files/{rel}", handle, kind="file", target=rel)
                else:
                    copied.add(out, f"external/{index}-{path.name}", handle, kind="external",
                               target=str(path))
        held = time.monotonic() - t_locked
    log(f"released the locks after {held:.1f} s")
    manifest = {
        "format": FORMAT,
        "created_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "locks_held_seconds": round(held, 3),
        "version": _app_version(),
        "migrations": _leaf_nodes(),
        "database": {"vendor": connection.vendor, "dump": DUMP, "format": DUMP_FORMAT,
                     "sha256": _sha256(out / DUMP), "size": (out / DUMP).stat().st_size,
                     "excluded": EXCLUDED},
        "store": {"url": store.url, "root": _files_root(store), "partitions": store.partitions},
        "datasets": [{"id": r["pk"], "workspace": r["workspace__slug"], "name": r["name"],
                      "store_key": r["key"], "version": r["version"],
                      "total_events": r["total_events"], **r["versions"]} for r in datasets],
        "files": copied.entries,
        "missing_files": missing,
        "warnings": warnings,
    }
    tmp = out / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, out / MANIFEST)
    for warning in warnings:
        log(f"warning: {warning}")
    log(f"backup written to {out}: {len(datasets)} dataset(s), {len(copied.entries)} files, "
        f"{sum(e['size'] for e in copied.entries):,} bytes besides the database")
    return manifest


def _settle(store: EventStore, until: float) -> None:
    """A job that published a version just before the lock was taken commits the dataset's
    new version in the database right after: wait a little for it, so the dump names the
    version CURRENT points to (a job that died there is recorded as a warning instead)."""
    while time.monotonic() < until:
        behind = [r for r in _datasets()
                  if (cur := store.current(r["key"])) is not None and cur.number != r["version"]]
        if not behind:
            return
        time.sleep(0.2)


def _dump(path: Path) -> tuple[list[dict[str, Any]], list[Path]]:
    """dumpdata in one snapshot, and the datasets and files that snapshot names."""
    fresh = not connection.in_atomic_block
    with transaction.atomic():
        if fresh and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        _register_format()
        call_command("dumpdata", format=DUMP_FORMAT, output=str(path), natural_foreign=True,
                     use_base_manager=True, exclude=EXCLUDED, verbosity=0)
        return _datasets(), _referenced_files()


def _copy_dataset(store: EventStore, row: dict[str, Any], out: Path, copied: _Copied,
                  warnings: list[str]) -> dict[str, Any]:
    key, number = row["key"], row["version"]
    current = store.current(key)
    if number == 0 and current is None:
        return {"version_dir": None, "current_dir": None}
    if number == 0:
        wanted = None
    else:
        try:
            wanted = store.version(key, number)
        except FileNotFoundError:
            raise BackupError(
                f"dataset {_label(row)}: the database names store version {number}, which the "
                f"event store does not hold (CURRENT is "
                f"{current.number if current else 'missing'}; deleted meanwhile?); nothing was "
                "backed up: try again") from None
    if current is not None and (wanted is None or current.number != wanted.number):
        warnings.append(
            f"dataset {_label(row)}: the database names version {number} but the store's "
            f"CURRENT is version {current.number} (a job published and has not committed, or "
            "died there); both are backed up and restored as they are")
    names = {}
    for role, version in (("version_dir", wanted), ("current_dir", current)):
        if version is None:
            names[role] = None
            continue
        name = PurePosixPath(str(version.path)).name
        names[role] = name
        if any(e["path"].startswith(f"store/{key}/{name}/") for e in copied.entries):
            continue
        for rel, opener in _version_files(store, version.path):
            with opener() as handle:
                copied.add(out, f"store/{key}/{name}/{rel}", handle, kind="store")
    if current is not None:
        copied.add(out, f"store/{key}/CURRENT",
                   _Bytes(PurePosixPath(str(current.path)).name.encode()), kind="store")
    return names


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, n: int) -> bytes:
        chunk, self.data = self.data[:n], self.data[n:]
        return chunk


# ----- restore ----------------------------------------------------------------------------------
def read_manifest(src: Path) -> dict[str, Any]:
    path = Path(src) / MANIFEST
    if not path.is_file():
        raise BackupError(f"{src} holds no {MANIFEST}: not a backup, or an incomplete one "
                          "(the manifest is written last)")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{src}: backup format {manifest.get('format')!r}; this version "
                          f"reads format {FORMAT}")
    return manifest


def verify(src: Path, manifest: dict[str, Any]) -> None:
    """Every file of the backup is there with its size and sha256; the migrations it was made
    with are known to this code; the store's partitions match."""
    src = Path(src)
    problems = []
    entries = [{"path": manifest["database"]["dump"], **manifest["database"]},
               *manifest["files"]]
    for entry in entries:
        path = src / entry["path"]
        inside = [entry["path"]] + ([entry["target"]] if entry.get("kind") == "file" else [])
        if any(PurePosixPath(p).is_absolute() or ".." in PurePosixPath(p).parts
               for p in inside):
            problems.append(f"{entry['path']}: a path outside the backup or the store")
        elif not path.is_file():
            problems.append(f"{entry['path']}: missing")
        elif path.stat().st_size != entry["size"] or _sha256(path) != entry["sha256"]:
            problems.append(f"{entry['path']}: checksum mismatch (corrupted or changed)")
    for key_dataset in manifest["datasets"]:
        for role in ("version_dir", "current_dir"):
            name = key_dataset.get(role)
            prefix = f"store/{key_dataset['store_key']}/{name}/"
            if name and not any(e["path"].startswith(prefix) for e in manifest["files"]):
                problems.append(f"dataset '{key_dataset['name']}' (workspace "
                                f"{key_dataset['workspace']}): store version folder {name} "
                                "is not in the backup")
    if problems:
        raise BackupError(f"the backup in {src} does not verify:\n  " + "\n  ".join(problems))
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    unknown = [f"{app}.{name}" for app, name in manifest["migrations"]
               if (app, name) not in graph.nodes]
    if unknown:
        raise BackupError("the backup was made by a newer version of the app (migrations "
                          f"{', '.join(unknown)} are unknown here; it was made by "
                          f"{manifest['version']}): restore with that version")
    partitions = int(manifest["store"]["partitions"])
    if partitions != int(settings.EVENT_STORE_PARTITIONS):
        raise BackupError(f"the backup's event store has {partitions} partitions; "
                          f"EVENT_STORE_PARTITIONS is {settings.EVENT_STORE_PARTITIONS} here: "
                          "set it to the backup's value")


def _models_with_rows() -> list[str]:
    excluded_apps = {e for e in EXCLUDED if "." not in e}
    excluded_models = {e.lower() for e in EXCLUDED if "." in e}
    found = []
    for model in apps.get_models():
        meta = model._meta
        if meta.proxy or not meta.managed or meta.app_label in excluded_apps \
                or meta.label_lower in excluded_models:
            continue
        count = model._base_manager.count()
        if count:
            found.append(f"{count} {meta.label}")
    return found


def _store_entries(store: EventStore) -> list[str]:
    """What the store already holds (its local root and, for a URL store, its datasets);
    hidden names (work parts, earlier restores' leftovers) do not count."""
    names = []
    if store.root.is_dir():
        names += [str(p) for p in sorted(store.root.iterdir()) if not p.name.startswith(".")]
    if store.fs is not None and store.fs.exists(store.base):
        names += [str(p) for p in sorted(store.fs.ls(store.base, detail=False))
                  if not str(p).rstrip("/").rsplit("/", 1)[-1].startswith(".")]
    return names


def _clear_store(store: EventStore, log: Log) -> None:
    """--force: the local root's entries move aside (a rename, nothing is lost); a URL
    store's dataset folders are deleted."""
    if store.root.is_dir():
        aside = store.root / f".before-restore-{datetime.now(UTC):%Y%m%dT%H%M%S}"
        moved = [p for p in store.root.iterdir() if not p.name.startswith(".")]
        if moved:
            aside.mkdir()
            for path in moved:
                os.rename(path, aside / path.name)
            log(f"moved the store's earlier content to {aside}")
    if store.fs is not None and store.fs.exists(store.base):
        for path in store.fs.ls(store.base, detail=False):
            if not str(path).rstrip("/").rsplit("/", 1)[-1].startswith("."):
                store.fs.rm(str(path), recursive=True)
        log(f"deleted the datasets of {store.url}")


@contextmanager
def _raw_load() -> Iterator[None]:
    """Loading a dump is a raw load: m2m_changed receivers (the audit history) would record
    the restored links as new changes, so they are paused meanwhile (post_save receivers are
    told ``raw`` and stay)."""
    saved = m2m_changed.receivers
    m2m_changed.receivers = []
    m2m_changed.sender_receivers_cache.clear()
    try:
        yield
    finally:
        m2m_changed.receivers = saved
        m2m_changed.sender_receivers_cache.clear()


def _rewrite_paths(dump: Path, old_root: str, new_root: str, target: Path) -> int:
    """The dump with every registered path field under ``old_root`` moved to ``new_root``."""
    fields = {label.lower(): names for label, names in PATH_FIELDS.items()}
    old = old_root.rstrip("/") + "/"
    changed = 0
    with gzip.open(dump, "rt", encoding="utf-8") as src, \
            gzip.open(target, "wt", encoding="utf-8") as out:
        for line in src:
            obj = json.loads(line)
            for name in fields.get(obj.get("model", ""), ()):
                value = obj["fields"].get(name)
                if isinstance(value, str) and value.startswith(old):
                    obj["fields"][name] = new_root.rstrip("/") + "/" + value[len(old):]
                    changed += 1
            out.write(json.dumps(obj, ensure_ascii=False) + "\n")
    return changed


def restore(src: Path, *, force: bool = False, log: Log = print) -> dict[str, Any]:
    """Restore a backup into an empty database and store (``force``: the database is flushed
    and the store's content moved aside first). Returns the manifest."""
    src = Path(src)
    manifest = read_manifest(src)
    verify(src, manifest)
    log(f"backup of {manifest['created_at']} verified: {len(manifest['files'])} files and "
        "the database dump match their checksums")
    current_leaves = _leaf_nodes()
    if current_leaves != manifest["migrations"]:
        log("note: this code's migrations differ from the backup's (an older backup); the "
            "dump is loaded into the current schema")
    call_command("migrate", interactive=False, verbosity=0)
    store = get_store()
    rows, entries = _models_with_rows(), _store_entries(store)
    entries += [e["target"] for e in manifest["files"]
                if e["kind"] == "external" and Path(e["target"]).exists()]
    if (rows or entries) and not force:
        what = []
        if rows:
            what.append("the database holds " + ", ".join(rows))
        if entries:
            what.append("the event store holds " + ", ".join(entries[:10])
                        + (f" and {len(entries) - 10} more" if len(entries) > 10 else ""))
        raise BackupError("refusing to restore over existing data: " + "; ".join(what)
                          + ". Restore into an empty database and store, or pass --force "
                            "(flushes the database; moves the store's content aside)")
    if rows:
        call_command("flush", interactive=False, verbosity=0)
        log("flushed the database")
    if entries:
        _clear_store(store, log)
    _place_files(src, manifest, store)
    log(f"event store and files restored under {store.url}")
    with tempfile.TemporaryDirectory() as tmp:
        dump = src / manifest["database"]["dump"]
        old_root, new_root = manifest["store"]["root"], _files_root(store)
        if old_root != new_root:
            moved = _rewrite_paths(dump, old_root, new_root, Path(tmp) / DUMP)
            dump = Path(tmp) / DUMP
            log(f"the store's local root moved from {old_root} to {new_root}: "
                f"{moved} stored path(s) rewritten")
        _register_format()
        with transaction.atomic(), _raw_load():
            call_command("loaddata", str(dump), verbosity=0)
            _check_versions(store, manifest)
    log("database restored: " + ", ".join(_models_with_rows()))
    for row in _datasets():
        current = store.current(row["key"])
        events = current.manifest.get("total_events") if current else 0
        log(f"dataset {_label(row)}: version {row['version']}, {events} events in the store")
    return manifest


def _place_files(src: Path, manifest: dict[str, Any], store: EventStore) -> None:
    pointers = []
    for entry in manifest["files"]:
        path = src / entry["path"]
        if entry["kind"] == "store":
            _, key, rel = entry["path"].split("/", 2)
            if rel == "CURRENT":
                pointers.append((key, path))  # last: the versions are complete before
            else:
                _put_store_file(store, key, rel, path)
        elif entry["kind"] == "file":  # beside the datasets: local, or objects of a URL store
            store.put_local_file(path, store.file_path(*entry["target"].split("/")))
        else:
            target = Path(entry["target"])
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    for key, path in pointers:
        _put_store_file(store, key, "CURRENT", path)


def _check_versions(store: EventStore, manifest: dict[str, Any]) -> None:
    """Every dataset's version, as the restored database names it, is in the restored store."""
    problems = []
    for row in _datasets():
        if row["version"] == 0:
            continue
        try:
            store.version(row["key"], row["version"])
        except (FileNotFoundError, ValueError, OSError):
            problems.append(f"dataset {_label(row)}: store version {row['version']} is missing")
    if problems:
        raise BackupError("the restored event store does not hold the versions the database "
                          "names (nothing was loaded into the database):\n  "
                          + "\n  ".join(problems))
