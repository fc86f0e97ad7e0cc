"""The event store: validated events as Parquet, partitioned by a hash of the user id.

Pure (no Django). Layout of one dataset::

    <root>/<dataset_key>/
        CURRENT                 name of the published version directory (atomically replaced)
        v000003/
            manifest.json       version, row counts, the imports it contains, their reports
            events-00.parquet   one file per user-hash partition, sorted by (user_id, timestamp),
                                then the rest of the event (name, properties, revenue, cost),
                                so its content never depends on the order rows arrived in;
                                column ``user`` (int32, layout 2): the user's code within the
                                partition, 0.. in row order (= user-id order)
            user-codes.parquet  (layout 2) the user dictionary: one row per user with events,
                                in user-id order (a row's place is the user's code in the
                                per-user frame): ``user_id``, ``part``, ``code`` (within the
                                partition) and ``events`` (the user's event count)
            users.parquet       user attributes, one row per user (optional)
            users-00.parquet    the same rows split by the user-hash partition (one file per
                                partition, written with users.parquet): a fan-out map reads
                                only its own users' attributes

Layout 2 (``manifest["layout"] == 2``) lets ``events.frame.build_user_events_coded`` load a
version with no string factorizing and no sorting: every event is placed at
``starts[global code] + its rank within the user`` straight from the integer columns. A version
of layout 1 (no ``user`` column, no user dictionary) still loads the old way, and the next
publish upgrades it (partitions carried over from it are rewritten with their codes).

A new version is written to a temporary directory, fsynced, renamed into place, and only then
is CURRENT replaced (``os.replace`` is atomic). Readers open CURRENT once and read one
consistent version; a crash mid-write leaves the previous version untouched.

The root may also be an fsspec URL (``memory://bucket/store``, ``s3://bucket/store`` with s3fs
installed; ``file://`` is the local folder). Object stores have no atomic rename: a new version
is written under its own unique folder (``v000003-<random>``) and the CURRENT object, a single
small put (atomic on object stores), is written last. Files that are not event versions
live beside the datasets, under the same root, local or remote (``file_path``): raw uploads
(``uploads/<workspace>/``), snapshot member lists (``snapshots/<dataset>/``), cluster labels
(``clusters/``), fan-out work parts (``.work/``). Nothing of a URL store is kept on one
machine's disk, so any worker can take any task; ``options`` (``EVENT_STORE_OPTIONS``) go to
fsspec (an S3 endpoint, keys). The write lock of a URL store is the caller's (``locker``):
a local lock file cannot serialize two machines.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

EVENT_COLUMNS = ("user_id", "event", "timestamp", "revenue", "cost", "properties")

EVENT_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("event", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("revenue", pa.float64()),
        pa.field("cost", pa.float64()),
        pa.field("properties", pa.string()),
    ]
)


# The store's layout: 2 = integer user codes in every partition + the user dictionary.
LAYOUT = 2
CODES_FILE = "user-codes.parquet"
USER_CODE = pa.field("user", pa.int32(), nullable=False)
STORED_SCHEMA = EVENT_SCHEMA.append(USER_CODE)
CODES_SCHEMA = pa.schema([pa.field("user_id", pa.string(), nullable=False),
                          pa.field("part", pa.int16(), nullable=False),
                          pa.field("code", pa.int32(), nullable=False),
                          pa.field("events", pa.int32(), nullable=False)])
PARALLEL_WRITE_ROWS = 1_000_000  # from this many rows to write, partitions go on two threads
EVENT_WRITE_OPTIONS: dict[str, Any] = {
    # Text compresses well and is read rarely (ids) or once per distinct value (properties,
    # event names: dictionaries): zstd. The integer and float columns every load reads: lz4,
    # which decodes about twice as fast as zstd for ~30% more bytes.
    "compression": {"user_id": "zstd", "event": "zstd", "properties": "zstd",
                    "timestamp": "lz4", "revenue": "lz4", "cost": "lz4", "user": "lz4"},
    "row_group_size": 1_000_000,
    # Sorted user ids compress as well without a dictionary, and faster.
    "use_dictionary": ["event", "properties"]}


def with_user_codes(table: pa.Table) -> tuple[pa.Table, pa.Array, np.ndarray]:
    """A partition table (rows of a user adjacent, in user-id order) as stored in layout 2:
    its event columns plus ``user``, each row's user code within the partition (0.. in row
    order). Also the distinct user ids in that order and each one's event count.

    A table that already has ``user`` (the import's merge makes it while sorting) keeps it,
    once checked to number the runs 0, 1, 2, ...; otherwise it is made by comparing ids."""
    n = table.num_rows
    ids = table.column("user_id").combine_chunks() if n else pa.array([], pa.string())
    first = np.ones(n, dtype=bool)
    if "user" in table.column_names:
        codes = table.column("user").to_numpy()
        if n > 1:
            np.not_equal(codes[1:], codes[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        if not np.array_equal(codes[starts], np.arange(len(starts))):
            raise ValueError("the user codes of a partition must number its users 0, 1, 2, ...")
        codes = codes.astype(np.int32, copy=False)
    else:
        if n > 1:
            first[1:] = pc.not_equal(ids.slice(1), ids.slice(0, n - 1)).to_numpy(
                zero_copy_only=False)
        starts = np.flatnonzero(first)
        codes = (np.cumsum(first, dtype=np.int32) - 1) if n else np.zeros(0, np.int32)
    counts = np.diff(np.append(starts, n)).astype(np.int32)
    coded = table.select(list(EVENT_SCHEMA.names)).cast(EVENT_SCHEMA).append_column(
        USER_CODE, pa.array(codes, pa.int32()))
    return coded, ids.take(pa.array(starts, pa.int64())), counts


def text_order(ids: pa.Array) -> np.ndarray:
    """The permutation that sorts text values bytewise (as Arrow and Python sort them).

    Ids of up to 8 bytes without NUL bytes (or whose first 8 bytes already differ) are
    compared as big-endian 64-bit integers: numpy's stable sort finds the sorted runs (one
    per partition here) and merges them. Anything else: Arrow's sort."""
    from .ingest.arrow_text import _string_buffers

    n = len(ids)
    if n < 2:
        return np.arange(n, dtype=np.int64)
    if ids.null_count == 0:
        offsets, data = _string_buffers(ids)
        lengths = np.diff(offsets)
        start, stop = int(offsets[0]), int(offsets[-1])
        if not (data[start:stop] == 0).any():
            if (lengths == 8).all():
                first = data[start:stop].reshape(n, 8).view(">u8")[:, 0].astype(np.uint64)
            else:  # the first 8 bytes, zero-padded (shorter text sorts first, as bytewise)
                first = np.zeros(n, np.uint64)
                last = max(len(data) - 1, 0)
                for j in range(8):
                    byte = data[np.minimum(offsets[:-1] + j, last)].astype(np.uint64)
                    byte[lengths <= j] = 0
                    first |= byte << np.uint64(8 * (7 - j))
            order = np.argsort(first, kind="stable")
            ordered = first[order]
            if int(lengths.max()) <= 8 or not bool((ordered[1:] == ordered[:-1]).any()):
                return order.astype(np.int64, copy=False)
    return np.asarray(pc.sort_indices(ids).to_numpy(), dtype=np.int64)


def user_dictionary(pieces: dict[int, tuple[pa.Array, np.ndarray]]) -> pa.Table:
    """The user dictionary of a version from each partition's distinct ids (in its code
    order) and event counts: one row per user, in user-id order (bytewise, as Arrow and
    Python sort text). A user in two partitions is an error (the hash puts each in one)."""
    ids = [pieces[p][0] for p in sorted(pieces)]
    parts = [np.full(len(pieces[p][0]), p, np.int16) for p in sorted(pieces)]
    codes = [np.arange(len(pieces[p][0]), dtype=np.int32) for p in sorted(pieces)]
    counts = [pieces[p][1].astype(np.int32, copy=False) for p in sorted(pieces)]
    table = pa.table({
        "user_id": pa.concat_arrays([a.cast(pa.string()) for a in ids]) if ids
        else pa.array([], pa.string()),
        "part": np.concatenate(parts) if parts else np.zeros(0, np.int16),
        "code": np.concatenate(codes) if codes else np.zeros(0, np.int32),
        "events": np.concatenate(counts) if counts else np.zeros(0, np.int32),
    }, schema=CODES_SCHEMA)
    if table.num_rows > 1:
        table = table.take(pa.array(text_order(table.column("user_id").combine_chunks())))
        ids_sorted = table.column("user_id").combine_chunks()
        n = len(ids_sorted)
        if pc.any(pc.equal(ids_sorted.slice(1), ids_sorted.slice(0, n - 1))).as_py():
            raise ValueError("a user id is in two partitions of the store")
    return table


def partition_of(user_ids: pd.Series | np.ndarray, partitions: int) -> np.ndarray:
    """Stable partition number for each user id (same id -> same partition, across runs).

    Each value is hashed on its own (``categorize=True`` gives the same numbers, after a
    slow factorize of the object array): callers pass distinct ids where they can."""
    hashed = pd.util.hash_array(np.asarray(user_ids, dtype=object), categorize=False)
    return (hashed % np.uint64(partitions)).astype(np.int32)


def users_file(part: int) -> str:
    """The name of one partition's slice of ``users.parquet``."""
    return f"users-{part:02d}.parquet"


def users_by_partition(users: pa.Table, partitions: int) -> dict[int, pa.Table]:
    """The users table split by the user-hash partition of each row (rows keep their order)."""
    ids = users.column("user_id").to_numpy(zero_copy_only=False) if users.num_rows \
        else np.zeros(0, dtype=object)
    part = partition_of(ids, partitions)
    return {p: users.filter(pa.array(part == p)) for p in range(partitions)}


@dataclass(frozen=True)
class Version:
    """One published, immutable version of a dataset."""

    path: Path
    number: int
    manifest: dict[str, Any] = field(default_factory=dict)
    fs: Any = field(default=None, compare=False, repr=False)  # fsspec filesystem of a URL store

    @property
    def partitions(self) -> int:
        return int(self.manifest.get("partitions", 0))

    def event_files(self) -> list[Path]:
        if self.fs is not None:
            return [PurePosixPath(p) for p in sorted(self.fs.glob(f"{self.path}/events-*.parquet"))]  # type: ignore[misc]
        return sorted(self.path.glob("events-*.parquet"))


def _coded_columns(with_properties: bool, columns: Sequence[str] | None) -> list[str]:
    """The columns a coded read takes: ``columns`` when given, else the per-user frame's
    (``user``, ``event``, ``timestamp``, ``revenue``, ``cost``, and ``properties`` if asked)."""
    if columns is not None:
        return list(columns)
    return ["user", "event", "timestamp", "revenue", "cost"] + (
        ["properties"] if with_properties else [])


class EventStore:
    """Reads and atomically publishes dataset versions under one root folder."""

    def __init__(self, root: str | os.PathLike[str], partitions: int = 8,
                 local_root: str | os.PathLike[str] | None = None,
                 options: dict[str, Any] | None = None,
                 locker: Any = None) -> None:
        self.partitions = partitions
        self.url = str(root)
        self.fs: Any = None  # an fsspec filesystem when the root is a URL
        self.locker = locker  # key -> context manager: the write lock of a URL store
        if "://" in self.url and not self.url.startswith("file://"):
            import fsspec

            # Another worker may have written since this process listed a folder: no cached
            # listings (s3fs keeps them by default).
            opts = {"use_listings_cache": False, **(options or {})}
            self.fs, base = fsspec.core.url_to_fs(self.url, **opts)
            self.base = str(base).rstrip("/")
            digest = hashlib.sha256(self.url.encode()).hexdigest()[:16]
            self.root = Path(local_root) if local_root is not None else \
                Path(tempfile.gettempdir()) / "segment-planner-store" / digest
        else:
            self.root = Path(self.url[len("file://"):] if self.url.startswith("file://")
                             else root)
            self.base = str(self.root)

    # ----- the filesystem: a local folder, or an fsspec URL ---------------------------------
    def _open(self, path: Any, mode: str = "rb") -> Any:
        return self.fs.open(str(path), mode) if self.fs is not None else open(path, mode)

    def _exists(self, path: Any) -> bool:
        return bool(self.fs.exists(str(path))) if self.fs is not None else Path(path).exists()

    def _read_table(self, path: Any, columns: list[str] | None = None) -> pa.Table:
        if self.fs is None:
            return pq.read_table(path, columns=columns)
        with self._open(path) as handle:
            return pq.read_table(handle, columns=columns)

    def _read_events(self, path: Any, columns: list[str] | None = None) -> pa.Table:
        """An event file's columns (by default the event columns, without layout 2's codes)."""
        return self._read_table(path, columns if columns is not None else list(EVENT_COLUMNS))

    def _remote_dir(self, key: str) -> str:
        self.dataset_dir(key)  # validates the key
        return f"{self.base}/{key}"

    def work_path(self, name: str) -> str:
        """A folder for intermediate results (fan-out parts), outside every dataset."""
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"invalid work name {name!r}")
        return f"{self.base}/.work/{name}"

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write a whole file: a single put on an object store; locally a temporary file
        then ``os.replace`` (a redelivered task overwrites its own file)."""
        if self.fs is not None:
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            self.fs.pipe_file(path, data)
            return
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        tmp.write_bytes(data)
        os.replace(tmp, target)

    # ----- files outside the dataset versions (uploads, member lists, cluster labels) --------
    def file_path(self, *parts: str) -> str:
        """A file or folder under the root, beside the datasets: a local path, or for a URL
        store the full URL (kept in the database, it names the store it lives in)."""
        for part in parts:
            if not part or "/" in part or part in (".", ".."):
                raise ValueError(f"invalid store file name {part!r}")
        return "/".join([self.url.rstrip("/") if self.fs is not None else self.base, *parts])

    def file_exists(self, path: str) -> bool:
        return self._exists(path)

    def open_file(self, path: str, mode: str = "rb") -> Any:
        """A file of the store; writing creates its folder. On an object store a file written
        is one object, visible whole when closed."""
        if "w" in mode:
            if self.fs is not None:
                self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            else:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        return self._open(path, mode)

    def write_file_table(self, path: str, table: pa.Table, **options: Any) -> None:
        """Write a Parquet file whole (see ``write_file_with``)."""
        self.write_file_with(path, lambda target: pq.write_table(table, target, **options))

    def write_file_with(self, path: str, write: Any) -> None:
        """Write a file whole with ``write(local_path)``: locally a temporary file beside it,
        then ``os.replace``; for a URL store a private temporary file, then one upload (a
        failed write leaves nothing half written in the store), the temporary file deleted.
        A reader never sees half a file."""
        if self.fs is not None:
            with tempfile.TemporaryDirectory(prefix="store-put-") as private:
                tmp = Path(private) / "file"
                write(str(tmp))
                self.put_local_file(tmp, path)
            return
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        try:
            write(str(tmp))
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def read_file_table(self, path: str, columns: list[str] | None = None,
                        filters: Any = None) -> pa.Table:
        with self._open(path) as handle:
            return pq.read_table(handle, columns=columns, filters=filters)

    def list_files(self, folder: str, prefix: str = "", suffix: str = "") -> list[str]:
        """Full paths of the files directly in a folder whose names match (sorted)."""
        return [f"{folder}/{name}" for name in self.list_work(folder, prefix)
                if name.endswith(suffix)]

    def remove_file(self, path: str) -> None:
        if self.fs is not None:
            if self.fs.exists(path):
                self.fs.rm_file(path)
        else:
            Path(path).unlink(missing_ok=True)

    def put_local_file(self, source: str | os.PathLike[str], path: str) -> None:
        """Copy a local file into the store (whole; locally by ``os.replace`` of a copy)."""
        if self.fs is not None:
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            self.fs.put_file(str(source), path)
            return
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)

    def read_bytes(self, path: str) -> bytes:
        if self.fs is not None:
            return bytes(self.fs.cat_file(path))
        return Path(path).read_bytes()

    def list_work(self, folder: str, prefix: str = "") -> list[str]:
        if self.fs is not None:
            names = [str(p).rsplit("/", 1)[-1] for p in self.fs.ls(folder, detail=False)] \
                if self.fs.exists(folder) else []
        else:
            names = [p.name for p in Path(folder).iterdir()] if Path(folder).is_dir() else []
        return sorted(n for n in names if n.startswith(prefix))

    def remove_work(self, folder: str) -> None:
        if self.fs is not None:
            if self.fs.exists(folder):
                self.fs.rm(folder, recursive=True)
        else:
            shutil.rmtree(folder, ignore_errors=True)

    def version(self, key: str, number: int) -> Version:
        """A published version by number (fan-out tasks all read the one they were given)."""
        current = self.current(key)
        if current is not None and current.number == number:
            return current
        if self.fs is not None:
            names = [str(p).rsplit("/", 1)[-1] for p in self.fs.ls(self._remote_dir(key),
                                                                   detail=False)]
            parent: Any = PurePosixPath(self._remote_dir(key))
        else:
            names = [p.name for p in self.dataset_dir(key).iterdir()]
            parent = self.dataset_dir(key)
        for name in names:
            if name.startswith(f"v{number:06d}") and self._exists(parent / name / "manifest.json"):
                with self._open(parent / name / "manifest.json") as handle:
                    manifest = json.loads(handle.read())
                return Version(path=parent / name, number=number, manifest=manifest, fs=self.fs)
        raise FileNotFoundError(f"dataset {key!r} has no version {number} (pruned?)")

    def read_version_partition(self, key: str, number: int, part: int,
                               columns: Sequence[str] | None = None) -> pa.Table:
        version = self.version(key, number)
        cols = list(columns) if columns is not None else None
        path = version.path / f"events-{part:02d}.parquet"
        if not self._exists(path):
            empty = EVENT_SCHEMA.empty_table()
            return empty.select(cols) if cols is not None else empty
        return self._read_events(path, cols)

    def read_version_users(self, key: str, number: int) -> pd.DataFrame:
        version = self.version(key, number)
        if not self._exists(version.path / "users.parquet"):
            return pd.DataFrame({"user_id": pd.Series([], dtype="str")})
        return self._read_table(version.path / "users.parquet").to_pandas()

    def read_partition_users(self, key: str, number: int, part: int) -> pd.DataFrame:
        """The attributes of one partition's users only: its ``users-NN.parquet``, or (a
        version written before those files) the rows of ``users.parquet`` that hash there."""
        version = self.version(key, number)
        if self._exists(version.path / users_file(part)):
            return self._read_table(version.path / users_file(part)).to_pandas()
        if not self._exists(version.path / "users.parquet"):
            return pd.DataFrame({"user_id": pd.Series([], dtype="str")})
        table = self._read_table(version.path / "users.parquet")
        return users_by_partition(table, self.partitions)[part].to_pandas()

    def read_coded_partition(self, key: str, number: int, part: int,
                             with_properties: bool = False,
                             columns: Sequence[str] | None = None,
                             ) -> tuple[pa.Table, pa.Table] | None:
        """One partition of a layout-2 version as ``build_user_events_coded`` takes it: (its
        rows of the user dictionary, its table); None for a layout-1 version. ``columns`` as
        in ``iter_coded_partitions``."""
        version = self.version(key, number)
        codes = self.read_user_codes(version)
        if codes is None:
            return None
        mine = codes.filter(pc.equal(codes.column("part"), part))
        columns = _coded_columns(with_properties, columns)
        path = version.path / f"events-{part:02d}.parquet"
        if not self._exists(path):
            return mine, STORED_SCHEMA.empty_table().select(columns)
        with self._open(path) as handle:
            table = pq.read_table(handle, columns=columns, read_dictionary=["properties"]
                                  if "properties" in columns else None)
        return mine, table

    def time_bounds(self, key: str, version: Version) -> tuple[int | None, int | None]:
        """(earliest, latest) event time in µs of a version, from the Parquet statistics
        (the timestamp column is read only where a file has none)."""
        low: int | None = None
        high: int | None = None
        for path in version.event_files():
            with self._open(path) as handle:
                meta = pq.ParquetFile(handle).metadata
                index = meta.schema.names.index("timestamp")
                stats = [meta.row_group(i).column(index).statistics
                         for i in range(meta.num_row_groups)]
            if any(s is None or not s.has_min_max for s in stats):
                values = self._read_table(path, ["timestamp"]).column("timestamp")
                if len(values) == 0:
                    continue
                import pyarrow.compute as pc

                bounds = pc.min_max(values)
                lo_v, hi_v = bounds["min"].value, bounds["max"].value
                lo, hi = int(lo_v), int(hi_v)
            else:
                lo = min(_micros(s.min) for s in stats)
                hi = max(_micros(s.max) for s in stats)
            low = lo if low is None else min(low, lo)
            high = hi if high is None else max(high, hi)
        return low, high

    # ----- reading -------------------------------------------------------------------------
    def dataset_dir(self, key: str) -> Path:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"invalid dataset key {key!r}")
        return self.root / key

    def current(self, key: str) -> Version | None:
        """The published version of a dataset, or None when nothing was published yet."""
        if self.fs is not None:
            remote = PurePosixPath(self._remote_dir(key))
            try:
                name = self.fs.cat_file(str(remote / "CURRENT")).decode().strip()
            except FileNotFoundError:
                return None
            manifest = json.loads(self.fs.cat_file(str(remote / name / "manifest.json")))
            return Version(path=remote / name, number=int(manifest["version"]),  # type: ignore[arg-type]
                           manifest=manifest, fs=self.fs)
        directory = self.dataset_dir(key)
        pointer = directory / "CURRENT"
        if not pointer.exists():
            return None
        name = pointer.read_text().strip()
        path = directory / name
        manifest = json.loads((path / "manifest.json").read_text())
        return Version(path=path, number=int(manifest["version"]), manifest=manifest)

    def read_events(
        self,
        key: str,
        columns: Sequence[str] | None = None,
        partitions: Sequence[int] | None = None,
    ) -> pd.DataFrame:
        """Events of the current version (only the columns asked for), sorted by user then time."""
        frames = list(self.iter_partitions(key, columns=columns, partitions=partitions))
        if not frames:
            return empty_events(columns)
        return pd.concat(frames, ignore_index=True)

    def iter_partitions(
        self,
        key: str,
        columns: Sequence[str] | None = None,
        partitions: Sequence[int] | None = None,
    ) -> Iterator[pd.DataFrame]:
        """One DataFrame per user-hash partition; each user lives in exactly one partition."""
        version = self.current(key)
        if version is None:
            return
        wanted = set(partitions) if partitions is not None else None
        cols = list(columns) if columns is not None else None
        for path in version.event_files():
            number = int(path.stem.split("-")[1])
            if wanted is not None and number not in wanted:
                continue
            yield self._read_events(path, cols).to_pandas()

    def iter_partition_tables(self, key: str, columns: Sequence[str] | None = None,
                              ) -> Iterator[pa.Table]:
        """Like ``iter_partitions``, as Arrow tables (no conversion to pandas)."""
        version = self.current(key)
        if version is None:
            return
        cols = list(columns) if columns is not None else None
        for path in version.event_files():
            yield self._read_events(path, cols)

    def read_users(self, key: str) -> pd.DataFrame:
        version = self.current(key)
        if version is None or not self._exists(version.path / "users.parquet"):
            return pd.DataFrame({"user_id": pd.Series([], dtype="str")})
        return self._read_table(version.path / "users.parquet").to_pandas()

    # ----- writing -------------------------------------------------------------------------
    def publish(
        self,
        key: str,
        partitions: dict[int, pa.Table],
        users: pa.Table | None,
        manifest: dict[str, Any],
    ) -> Version:
        """Write a complete new version and make it current in one atomic step.

        ``partitions`` holds the full content of every partition that changed; partitions
        not named are carried over from the previous version by hard link (or copy).
        """
        if self.fs is not None:
            return self._publish_remote(key, partitions, users, manifest)
        directory = self.dataset_dir(key)
        directory.mkdir(parents=True, exist_ok=True)
        previous = self.current(key)
        number = (previous.number + 1) if previous else 1
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=directory))
        try:
            writes, carried, codes = self._coded_parts(previous, partitions)
            for part in carried:
                name = f"events-{part:02d}.parquet"
                _link_or_copy(previous.path / name, tmp / name)  # type: ignore[union-attr]

            def write(part: int) -> None:
                pq.write_table(writes.pop(part), tmp / f"events-{part:02d}.parquet",
                               **EVENT_WRITE_OPTIONS)

            # Parquet encoding and compression release the GIL: two partitions at a time
            # when there is much to write.
            todo = sorted(writes)
            if sum(writes[p].num_rows for p in todo) >= PARALLEL_WRITE_ROWS and len(todo) > 1:
                with ThreadPoolExecutor(max_workers=2) as pool:
                    list(pool.map(write, todo))
            else:
                for part in todo:
                    write(part)
            pq.write_table(codes, tmp / CODES_FILE, compression="zstd")
            del codes
            if users is not None:
                pq.write_table(users, tmp / "users.parquet", compression="zstd")
                for part, table in users_by_partition(users, self.partitions).items():
                    pq.write_table(table, tmp / users_file(part), compression="zstd")
            elif previous is not None and (previous.path / "users.parquet").exists():
                _link_or_copy(previous.path / "users.parquet", tmp / "users.parquet")
                for part in range(self.partitions):
                    if (previous.path / users_file(part)).exists():
                        _link_or_copy(previous.path / users_file(part), tmp / users_file(part))
            full_manifest = {**manifest, "version": number, "partitions": self.partitions,
                             "layout": LAYOUT}
            (tmp / "manifest.json").write_text(json.dumps(full_manifest, default=str))
            _fsync_dir(tmp)
            final = directory / f"v{number:06d}"
            os.rename(tmp, final)
            pointer_tmp = directory / f".CURRENT-{uuid.uuid4().hex}"
            pointer_tmp.write_text(final.name)
            os.replace(pointer_tmp, directory / "CURRENT")
            _fsync_dir(directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._prune(directory, keep=final.name)
        return Version(path=final, number=number, manifest=full_manifest)

    def _coded_parts(self, previous: Version | None, partitions: dict[int, pa.Table],
                     ) -> tuple[dict[int, pa.Table], set[int], pa.Table]:
        """What a publish writes in layout 2: the partitions to write (with their user codes),
        the partitions carried over as they are (unchanged and already coded) and the new
        version's user dictionary. A partition of a layout-1 version is rewritten with codes
        (the upgrade)."""
        writes: dict[int, pa.Table] = {}
        carried: set[int] = set()
        pieces: dict[int, tuple[pa.Array, np.ndarray]] = {}
        old_codes = self.read_user_codes(previous) if previous is not None else None
        for part in range(self.partitions):
            if part in partitions:
                coded, ids, counts = with_user_codes(partitions[part])
            elif previous is not None and self._exists(
                    previous.path / f"events-{part:02d}.parquet"):
                if old_codes is not None:
                    carried.add(part)
                    mine = old_codes.filter(pc.equal(old_codes.column("part"), part))
                    pieces[part] = (mine.column("user_id").combine_chunks(),
                                    mine.column("events").to_numpy())
                    continue
                coded, ids, counts = with_user_codes(self._read_events(
                    previous.path / f"events-{part:02d}.parquet"))
            else:
                coded, ids, counts = with_user_codes(EVENT_SCHEMA.empty_table())
            writes[part] = coded
            pieces[part] = (ids, counts)
        return writes, carried, user_dictionary(pieces)

    def read_user_codes(self, version: Version) -> pa.Table | None:
        """The user dictionary of a layout-2 version (None for a layout-1 version)."""
        if version.manifest.get("layout") != LAYOUT:
            return None
        return self._read_table(version.path / CODES_FILE)

    def iter_coded_partitions(self, version: Version, with_properties: bool = False,
                              columns: Sequence[str] | None = None,
                              ) -> Iterator[tuple[int, pa.Table]]:
        """(partition, table) of a layout-2 version with the columns the per-user frame needs:
        ``user`` (codes within the partition), ``event``, ``timestamp``, ``revenue``,
        ``cost`` and, when asked, ``properties`` read as an Arrow dictionary (the file's own
        dictionary pages: no Python strings per event). ``columns`` names others instead
        (``["properties"]`` for properties read later)."""
        columns = _coded_columns(with_properties, columns)
        for path in version.event_files():
            part = int(str(path).rsplit("/", 1)[-1].split("-")[1].split(".")[0])
            if self.fs is None:
                table = pq.read_table(path, columns=columns, read_dictionary=["properties"])
            else:
                with self._open(path) as handle:
                    table = pq.read_table(handle, columns=columns,
                                          read_dictionary=["properties"])
            yield part, table

    def read_partition_table(self, key: str, part: int,
                             columns: Sequence[str] | None = None) -> pa.Table:
        version = self.current(key)
        cols = list(columns) if columns is not None else None
        empty = EVENT_SCHEMA.empty_table()
        if version is None:
            return empty.select(cols) if cols is not None else empty
        path = version.path / f"events-{part:02d}.parquet"
        if not self._exists(path):
            return empty.select(cols) if cols is not None else empty
        return self._read_events(path, cols)

    def delete(self, key: str) -> None:
        if self.fs is not None:
            if self.fs.exists(self._remote_dir(key)):
                self.fs.rm(self._remote_dir(key), recursive=True)
            return
        shutil.rmtree(self.dataset_dir(key), ignore_errors=True)

    def _publish_remote(self, key: str, partitions: dict[int, pa.Table],
                        users: pa.Table | None, manifest: dict[str, Any]) -> Version:
        """Object storage: every file of the new version under a unique folder, then the
        CURRENT object (one small put) last. A crash before that leaves an unreferenced
        folder, removed by a later publish."""
        directory = PurePosixPath(self._remote_dir(key))
        previous = self.current(key)
        number = (previous.number + 1) if previous else 1
        final = directory / f"v{number:06d}-{uuid.uuid4().hex[:12]}"
        self.fs.makedirs(str(final), exist_ok=True)

        def put_table(table: pa.Table, name: str, **options: Any) -> None:
            with self.fs.open(str(final / name), "wb") as handle:
                pq.write_table(table, handle, **options)

        writes, carried, codes = self._coded_parts(previous, partitions)
        for part in range(self.partitions):
            name = f"events-{part:02d}.parquet"
            if part in carried:
                self.fs.copy(str(previous.path / name), str(final / name))  # type: ignore[union-attr]
            else:
                put_table(writes.pop(part), name, **EVENT_WRITE_OPTIONS)
        put_table(codes, CODES_FILE, compression="zstd")
        if users is not None:
            put_table(users, "users.parquet", compression="zstd")
            for part, table in users_by_partition(users, self.partitions).items():
                put_table(table, users_file(part), compression="zstd")
        elif previous is not None and self.fs.exists(str(previous.path / "users.parquet")):
            self.fs.copy(str(previous.path / "users.parquet"), str(final / "users.parquet"))
            for part in range(self.partitions):
                if self.fs.exists(str(previous.path / users_file(part))):
                    self.fs.copy(str(previous.path / users_file(part)),
                                 str(final / users_file(part)))
        full_manifest = {**manifest, "version": number, "partitions": self.partitions,
                         "layout": LAYOUT}
        self.fs.pipe_file(str(final / "manifest.json"),
                          json.dumps(full_manifest, default=str).encode())
        self.fs.pipe_file(str(directory / "CURRENT"), final.name.encode())
        # Keep the current and the one before it (a reader may still be on it).
        keep = {final.name} | ({previous.path.name} if previous is not None else set())
        for path in self.fs.ls(str(directory), detail=False):
            name = str(path).rstrip("/").rsplit("/", 1)[-1]
            if name.startswith("v") and name not in keep:
                self.fs.rm(str(path), recursive=True)
        return Version(path=final, number=number, manifest=full_manifest, fs=self.fs)  # type: ignore[arg-type]

    @contextmanager
    def write_lock(self, key: str, timeout: float | None = None) -> Iterator[None]:
        """Serialize read-modify-publish cycles of one dataset (an import and an erasure must
        not both start from the same version). An advisory lock on a file of the dataset; for
        a URL store the ``locker`` given (``locker(key, timeout)``: the database's lock; without
        one, a lock file in the system's temporary folder, which serializes one machine only).
        With ``timeout`` (seconds), TimeoutError when the lock was not had in time."""
        if self.fs is not None and self.locker is not None:
            with self.locker(key, timeout):
                yield
            return
        if self.fs is not None:
            directory = Path(tempfile.gettempdir()) / "segment-planner-locks"
            lock_file = directory / hashlib.sha256(f"{self.url}\0{key}".encode()).hexdigest()
        else:
            directory = self.dataset_dir(key)
            lock_file = directory / ".write-lock"
        directory.mkdir(parents=True, exist_ok=True)
        with open(lock_file, "a+b") as handle:
            if timeout is None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            else:
                deadline = time.monotonic() + timeout
                while True:
                    try:
                        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            raise TimeoutError(f"dataset {key}: the write lock is held") from None
                        time.sleep(0.1)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def prune_history(self, key: str) -> int:
        """Remove every version but the current one (after an erasure, no older version may
        still hold the erased rows). Returns how many versions were removed."""
        current = self.current(key)
        if current is None:
            return 0
        removed = 0
        if self.fs is not None:
            for path in self.fs.ls(self._remote_dir(key), detail=False):
                name = str(path).rstrip("/").rsplit("/", 1)[-1]
                if name.startswith("v") and name != current.path.name:
                    self.fs.rm(str(path), recursive=True)
                    removed += 1
            return removed
        for old in self.dataset_dir(key).glob("v*"):
            if old.is_dir() and old.name != current.path.name:
                shutil.rmtree(old, ignore_errors=True)
                removed += 1
        return removed

    @staticmethod
    def _prune(directory: Path, keep: str) -> None:
        # Keep the current and the one before it, so a reader that opened the previous
        # version a moment ago can finish.
        versions = sorted(p for p in directory.glob("v*") if p.is_dir())
        for old in versions[:-2]:
            if old.name != keep:
                shutil.rmtree(old, ignore_errors=True)
        for stale in directory.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)


def _micros(value: Any) -> int:
    """µs since the epoch of a Parquet timestamp statistic (a datetime or an integer)."""
    if isinstance(value, int):
        return value
    return int(pd.Timestamp(value).value) // 1000  # ns -> µs (the stored unit is µs)


def empty_events(columns: Sequence[str] | None = None) -> pd.DataFrame:
    frame = EVENT_SCHEMA.empty_table().to_pandas()
    return frame[list(columns)] if columns is not None else frame


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _fsync_dir(path: Path) -> None:
    for child in path.iterdir():
        if child.is_file():
            with open(child, "rb") as handle:
                os.fsync(handle.fileno())
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
