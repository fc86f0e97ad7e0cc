"""Upload limits: size and type (by name and leading bytes), checked before anything is stored.

Event files: .csv, .parquet, .jsonl / .ndjson / .json, and gzip-compressed text (.csv.gz,
.jsonl.gz, .json.gz), decompressed while stored under the same byte limit (a gzip bomb stops
at MAX_UPLOAD_BYTES). Experiment tables (assignments, per-arm summaries): .csv only, up to
EXPERIMENT_UPLOAD_MAX_BYTES (a name without an extension is read as CSV).
"""

from __future__ import annotations

import gzip
import zlib
from typing import Any, BinaryIO

from django.conf import settings
from rest_framework.exceptions import APIException

from events.ingest import BINARY_SIGNATURES, ImportRejected

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
TEXT_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".json")
EVENT_SUFFIXES = (*TEXT_SUFFIXES, ".parquet", *(s + ".gz" for s in TEXT_SUFFIXES))
ACCEPTED = ".csv, .csv.gz, .parquet, .jsonl(.gz) or .json(.gz)"


def human_bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}".replace(".0 ", " ")
        n /= 1024  # type: ignore[assignment]
    return str(n)  # pragma: no cover


class UploadRefused(APIException):
    """An upload refused before it is stored: 413 when too large, 400 for its type."""

    status_code = 400
    default_code = "upload_refused"

    def __init__(self, code: str, message: str, where: str, status: int = 400) -> None:
        self.status_code = status
        self.code, self.message, self.where = code, message, where
        super().__init__({"error": {"code": code, "message": message, "where": where}})


def check_size(name: str, size: int | None, limit: int, where: str) -> None:
    if size is not None and size > limit:
        raise UploadRefused("too_large", f"{name} has {human_bytes(size)} ({size:,} bytes), over "
                            f"the limit of {human_bytes(limit)} ({limit:,} bytes)", where,
                            status=413)


def _head(upload: Any, n: int = 8) -> bytes:
    upload.seek(0)
    head = upload.read(n)
    upload.seek(0)
    return head or b""


class _GunzipStream:
    """Reads the decompressed bytes; a corrupt archive is an import rejection, not a 500."""

    def __init__(self, upload: Any, name: str) -> None:
        self._inner = gzip.GzipFile(fileobj=upload, mode="rb")
        self._name = name

    def read(self, size: int = -1) -> bytes:
        try:
            return self._inner.read(size)
        except (OSError, EOFError, zlib.error) as exc:
            raise ImportRejected("malformed_gzip", f"not a readable gzip file ({exc})",
                                 self._name) from None


def event_upload(upload: Any, *, field: str, limit: int | None = None
                 ) -> tuple[BinaryIO, str]:
    """Check an uploaded event/user file; returns the stream to store and the stored name."""
    limit = settings.MAX_UPLOAD_BYTES if limit is None else limit
    name = str(getattr(upload, "name", "") or field)
    check_size(name, getattr(upload, "size", None), limit, field)
    lower = name.lower()
    if not lower.endswith(EVENT_SUFFIXES):
        raise UploadRefused("unsupported_type", f"{name}: only {ACCEPTED} files are accepted",
                            field)
    head = _head(upload)
    if lower.endswith(".gz"):
        if head[:2] != GZIP_MAGIC:
            raise UploadRefused("wrong_type", f"{name} is named .gz but is not gzip-compressed",
                                field)
        return _GunzipStream(upload, name), name[:-3]  # type: ignore[return-value]
    if lower.endswith(".parquet") and head[:4] != PARQUET_MAGIC:
        raise UploadRefused("wrong_type", f"{name} is named .parquet but is not a Parquet file "
                            "(it does not start with PAR1)", field)
    if not lower.endswith(".parquet") and head[:4] == PARQUET_MAGIC:
        raise UploadRefused("wrong_type", f"{name} is a Parquet file: name it .parquet", field)
    if head[:2] == GZIP_MAGIC:
        raise UploadRefused("wrong_type", f"{name} is gzip-compressed: name it {name}.gz", field)
    return upload, name


def experiment_table(upload: Any, *, field: str = "file") -> bytes:
    """The bytes of an uploaded experiment CSV (assignments or summaries), within the limit."""
    name = str(getattr(upload, "name", "") or field)
    limit = settings.EXPERIMENT_UPLOAD_MAX_BYTES
    check_size(name, getattr(upload, "size", None), limit, field)
    # A name without an extension (a script posting raw bytes) is read as CSV.
    if "." in name and not name.lower().endswith(".csv"):
        raise UploadRefused("unsupported_type", f"{name}: only .csv files are accepted", field)
    head = _head(upload, 64)
    for magic, what in (*BINARY_SIGNATURES, (PARQUET_MAGIC, "a Parquet file")):
        if head.startswith(magic):
            raise UploadRefused("wrong_type", f"{name} is {what}, not a CSV text file", field)
    data = upload.read(limit + 1)
    check_size(name, len(data), limit, field)  # a size the client under-reported
    return data
