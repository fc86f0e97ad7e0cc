"""Privacy, the pure part: keyed pseudonyms for user ids, and scrubbing an id out of results.

No Django. A pseudonym is ``p_`` + the first 32 hex digits of HMAC-SHA256(key, user id); the
key comes from the environment (``PSEUDONYMIZATION_KEY``) and is never stored. The same key
gives the same pseudonym in every import, so de-duplication and appends keep working.
Hashing is done once per distinct id (Arrow dictionary-encodes the column), then mapped back.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .ingest import ImportRejected

KEY_ENV = "PSEUDONYMIZATION_KEY"
MIN_KEY_CHARS = 16
PREFIX = "p_"
DIGEST_CHARS = 32
PSEUDONYM_RE = re.compile(r"^p_[0-9a-f]{32}$")
ERASED = "[erased]"
REDACTED = "[redacted: raw line of a pseudonymized import]"
_CHECK_MESSAGE = b"segment-planner/pseudonymization-key-check"


def pseudonymization_key(environ: dict[str, str] | None = None) -> bytes:
    """The key from the environment; a clear rejection when it is missing or too short."""
    value = (environ if environ is not None else os.environ).get(KEY_ENV, "")
    if not value:
        raise ImportRejected(
            "pseudonymization_key_missing",
            f"pseudonymization needs the environment variable {KEY_ENV} (a secret of at least "
            f"{MIN_KEY_CHARS} characters) in the web and worker processes",
            KEY_ENV)
    if len(value) < MIN_KEY_CHARS:
        raise ImportRejected(
            "pseudonymization_key_too_short",
            f"{KEY_ENV} must be at least {MIN_KEY_CHARS} characters long", KEY_ENV)
    return value.encode("utf-8")


def key_check(key: bytes) -> str:
    """A keyed check value (not the key): tells whether a later import uses the same key."""
    return hmac.new(key, _CHECK_MESSAGE, hashlib.sha256).hexdigest()[:16]


def pseudonym(key: bytes, user_id: str) -> str:
    return PREFIX + hmac.digest(key, user_id.encode("utf-8"), "sha256").hex()[:DIGEST_CHARS]


def pseudonymize(values: pd.Series | pa.Array | pa.ChunkedArray, key: bytes) -> pa.Array:
    """Pseudonyms for a column of ids: each distinct id is hashed once, then mapped.
    Nulls stay null."""
    arr = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(
        np.asarray(values, dtype=object), type=pa.string(), from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.string():
        arr = arr.cast(pa.string())
    encoded = pc.dictionary_encode(arr)
    distinct = encoded.dictionary.to_pylist()
    hashed = pa.array([pseudonym(key, u) for u in distinct], type=pa.string())
    return hashed.take(encoded.indices)


def pseudonymize_column(frame: pd.DataFrame, key: bytes, column: str = "user_id") -> None:
    """Replace ``frame[column]`` by its pseudonyms in place (same dtype)."""
    dtype = frame[column].dtype
    hashed = pseudonymize(frame[column], key).to_numpy(zero_copy_only=False)
    frame[column] = pd.Series(hashed, index=frame.index).astype(dtype)


def pseudonymize_samples(samples: dict[str, list[dict[str, Any]]], key: bytes,
                         user_column: str) -> None:
    """In the quality report's samples of one file (``Problems.samples``): user ids become
    pseudonyms, raw text lines are redacted (they would carry the raw id)."""
    for rows in samples.values():
        for sample in rows:
            values = sample.get("values")
            if not isinstance(values, dict):
                continue
            for name, value in list(values.items()):
                if name == user_column and isinstance(value, str) and value.strip():
                    values[name] = pseudonym(key, value.strip())
                elif name == "text":
                    values[name] = REDACTED


# ----- erasure -----------------------------------------------------------------------------------
def salted_user_hash(user_id: str, secret: str, salt: str | None = None) -> str:
    """``salt$hmac``: HMAC-SHA256 keyed with the site secret over salt + id. Not reversible
    without the secret; the same id can be recognized with :func:`user_hash_matches`."""
    salt = salt or secrets.token_hex(8)
    digest = hmac.new(secret.encode("utf-8"), f"{salt}:{user_id}".encode(),
                      hashlib.sha256).hexdigest()
    return f"{salt}${digest}"


def user_hash_matches(stored: str, user_id: str, secret: str) -> bool:
    salt, _, _ = stored.partition("$")
    return hmac.compare_digest(stored, salted_user_hash(user_id, secret, salt))


def _mentions(text: str, user_id: str) -> bool:
    if text == user_id:
        return True
    return re.search(r"(?<![\w-])" + re.escape(user_id) + r"(?![\w-])", text) is not None


def scrub(value: Any, user_id: str) -> tuple[Any, int]:
    """``value`` (JSON-like) without ``user_id``: equal strings become ``[erased]``, report
    samples that mention it are dropped. Returns (new value, number of places changed)."""
    if isinstance(value, str):
        return (ERASED, 1) if value == user_id else (value, 0)
    if isinstance(value, list):
        out, total = [], 0
        for item in value:
            new, n = scrub(item, user_id)
            out.append(new)
            total += n
        return out, total
    if isinstance(value, dict):
        result: dict[Any, Any] = {}
        total = 0
        for k, v in value.items():
            if k == "samples" and isinstance(v, list):
                kept = [s for s in v if not _sample_mentions(s, user_id)]
                total += len(v) - len(kept)
                v = kept
            new, n = scrub(v, user_id)
            result[k] = new
            total += n
        return result, total
    return value, 0


def _sample_mentions(sample: Any, user_id: str) -> bool:
    if isinstance(sample, str):
        return _mentions(sample, user_id)
    if isinstance(sample, dict):
        return any(_sample_mentions(v, user_id) for v in sample.values())
    if isinstance(sample, list):
        return any(_sample_mentions(v, user_id) for v in sample)
    return False


def without_user(table: pa.Table, user_id: str, column: str = "user_id") -> tuple[pa.Table, int]:
    """The table's rows of every other user (order and content unchanged); rows removed."""
    if table.num_rows == 0 or column not in table.column_names:
        return table, 0
    keep = pc.fill_null(pc.not_equal(table.column(column), pa.scalar(user_id, pa.string())), True)
    kept = table.filter(keep)
    return kept, table.num_rows - kept.num_rows


def file_mentions(path: Any, user_id: str, chunk: int = 8 << 20) -> bool:
    """Whether a file's bytes contain the id (streamed; a raw upload kept on disk)."""
    needle = user_id.encode("utf-8")
    if not needle:
        return False
    if hasattr(path, "read"):  # an open binary file (a URL store's object)
        return _stream_mentions(path, needle, chunk)
    with open(path, "rb") as handle:
        return _stream_mentions(handle, needle, chunk)


def _stream_mentions(handle: Any, needle: bytes, chunk: int) -> bool:
    tail = b""
    while block := handle.read(chunk):
        if needle in tail + block:
            return True
        tail = block[-(len(needle) - 1):] if len(needle) > 1 else b""
    return False


def erase_from_store(store: Any, key: str, user_id: str, erasure_id: str) -> dict[str, Any]:
    """Publish a version of the dataset without the user's events and attributes.

    Only the user's partition (and the users file, when the user has attributes) is
    rewritten; every other partition is carried over. Exactly once per ``erasure_id``: the
    manifest records the erasures a version contains. Older versions are removed afterwards,
    so the rows do not survive on disk. Call under ``store.write_lock(key)``."""
    from .store import partition_of

    current = store.current(key)
    nothing = {"events_removed": 0, "users_removed": 0, "attributes_removed": 0,
               "report_samples_removed": 0, "version": current.number if current else 0,
               "published": False}
    if current is None:
        return nothing
    manifest = dict(current.manifest)
    done = dict(manifest.get("erasures", {}))
    if erasure_id in done:
        return {**done[erasure_id], "already_applied": True}
    part = int(partition_of(np.array([user_id], dtype=object), store.partitions)[0])
    events = store.read_partition_table(key, part)
    kept_events, events_removed = without_user(events, user_id)
    users_path = str(current.path / "users.parquet")
    users_table = None
    users_removed = attributes_removed = 0
    if store.file_exists(users_path):  # local or in a URL store
        users = store.read_file_table(users_path)
        kept_users, users_removed = without_user(users, user_id)
        if users_removed:
            gone = users.filter(pc.equal(users.column("user_id"), user_id))
            attributes_removed = sum(
                gone.num_rows - gone.column(name).null_count
                for name in gone.column_names if name not in ("user_id", "__index_level_0__"))
            users_table = kept_users
    imports, samples_removed = scrub(manifest.get("imports", {}), user_id)
    if not (events_removed or users_removed or samples_removed):
        return nothing
    counts = {"events_removed": events_removed, "users_removed": users_removed,
              "attributes_removed": attributes_removed,
              "report_samples_removed": samples_removed,
              "version": current.number + 1, "published": True}
    store.publish(
        key,
        {part: kept_events} if events_removed else {},
        users_table,
        {**manifest, "imports": imports, "erasures": {**done, erasure_id: counts},
         "total_events": int(manifest.get("total_events", 0)) - events_removed,
         "total_users": int(manifest.get("total_users", 0)) - (1 if events_removed else 0)},
    )
    store.prune_history(key)
    return counts


def store_mentions(store: Any, key: str, user_id: str) -> bool:
    """Whether the dataset's current version holds events or attributes of the user."""
    from .store import partition_of

    current = store.current(key)
    if current is None:
        return False
    part = int(partition_of(np.array([user_id], dtype=object), store.partitions)[0])
    ids = store.read_partition_table(key, part, columns=["user_id"]).column("user_id")
    if pc.any(pc.equal(ids, user_id)).as_py():
        return True
    users_path = str(current.path / "users.parquet")
    if store.file_exists(users_path):
        ids = store.read_file_table(users_path, columns=["user_id"]).column("user_id")
        return bool(pc.any(pc.equal(ids, user_id)).as_py())
    return False
