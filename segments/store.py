"""The event store: validated events as Parquet, partitioned by a hash of the user id.

Pure (no Django). Layout of one dataset::

    <root>/<dataset_key>/
        CURRENT                 name of the published version directory (atomically replaced)
        v000003/
            manifest.json       version, row counts, the imports it contains, their reports
            events-00.parquet   one file per user-hash partition, sorted by (user_id, timestamp)
            users.parquet       user attributes, one row per user (optional)

A new version is written to a temporary directory, fsynced, renamed into place, and only then
is CURRENT replaced (``os.replace`` is atomic). Readers open CURRENT once and read one
consistent version; a crash mid-write leaves the previous version untouched.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
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


def partition_of(user_ids: pd.Series | np.ndarray, partitions: int) -> np.ndarray:
    """Stable partition number for each user id (same id -> same partition, across runs).

    Each value is hashed on its own (``categorize=True`` gives the same numbers, after a
    slow factorize of the object array): callers pass distinct ids where they can."""
    hashed = pd.util.hash_array(np.asarray(user_ids, dtype=object), categorize=False)
    return (hashed % np.uint64(partitions)).astype(np.int32)


@dataclass(frozen=True)
class Version:
    """One published, immutable version of a dataset."""

    path: Path
    number: int
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def partitions(self) -> int:
        return int(self.manifest.get("partitions", 0))

    def event_files(self) -> list[Path]:
        return sorted(self.path.glob("events-*.parquet"))


class EventStore:
    """Reads and atomically publishes dataset versions under one root folder."""

    def __init__(self, root: str | os.PathLike[str], partitions: int = 8) -> None:
        self.root = Path(root)
        self.partitions = partitions

    # ----- reading -------------------------------------------------------------------------
    def dataset_dir(self, key: str) -> Path:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"invalid dataset key {key!r}")
        return self.root / key

    def current(self, key: str) -> Version | None:
        """The published version of a dataset, or None when nothing was published yet."""
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
            yield pq.read_table(path, columns=cols).to_pandas()

    def read_users(self, key: str) -> pd.DataFrame:
        version = self.current(key)
        if version is None or not (version.path / "users.parquet").exists():
            return pd.DataFrame({"user_id": pd.Series([], dtype="str")})
        return pq.read_table(version.path / "users.parquet").to_pandas()

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
        directory = self.dataset_dir(key)
        directory.mkdir(parents=True, exist_ok=True)
        previous = self.current(key)
        number = (previous.number + 1) if previous else 1
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=directory))
        try:
            for part in range(self.partitions):
                target = tmp / f"events-{part:02d}.parquet"
                if part in partitions:
                    pq.write_table(
                        partitions[part].cast(EVENT_SCHEMA),
                        target,
                        compression="zstd",
                        row_group_size=1_000_000,
                        # Sorted user ids compress as well without a dictionary, and faster.
                        use_dictionary=["event", "properties"],
                    )
                elif previous is not None and (previous.path / target.name).exists():
                    _link_or_copy(previous.path / target.name, target)
                else:
                    pq.write_table(EVENT_SCHEMA.empty_table(), target)
            if users is not None:
                pq.write_table(users, tmp / "users.parquet", compression="zstd")
            elif previous is not None and (previous.path / "users.parquet").exists():
                _link_or_copy(previous.path / "users.parquet", tmp / "users.parquet")
            full_manifest = {**manifest, "version": number, "partitions": self.partitions}
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

    def read_partition_table(self, key: str, part: int,
                             columns: Sequence[str] | None = None) -> pa.Table:
        version = self.current(key)
        cols = list(columns) if columns is not None else None
        empty = EVENT_SCHEMA.empty_table()
        if version is None:
            return empty.select(cols) if cols is not None else empty
        path = version.path / f"events-{part:02d}.parquet"
        if not path.exists():
            return empty.select(cols) if cols is not None else empty
        return pq.read_table(path, columns=cols)

    def delete(self, key: str) -> None:
        shutil.rmtree(self.dataset_dir(key), ignore_errors=True)

    @contextmanager
    def write_lock(self, key: str) -> Iterator[None]:
        """Serialize read-modify-publish cycles of one dataset (an import and an erasure must
        not both start from the same version). An advisory lock on a file of the dataset."""
        directory = self.dataset_dir(key)
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / ".write-lock", "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
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
