"""A published store version as the per-user frame: the one way every reader loads it (the
refresh and analysis jobs through ``events.services``, the benchmarks). Pure: a store and a
version in, a ``UserEvents`` out."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .frame import UserEvents, build_user_events, build_user_events_coded

EVENT_COLUMNS = ["user_id", "event", "timestamp", "revenue", "cost", "properties"]


def read_frame(store: Any, version: Any, store_key: str) -> UserEvents:
    """From the integer codes of a layout-2 version (the users file read on a second thread
    while the partitions are placed; properties read on first use), else (a version written
    before layout 2) the old way, with properties."""
    codes = store.read_user_codes(version)
    if codes is None:
        users = store.read_version_users(store_key, version.number)
        return build_user_events(store.iter_partitions(store_key, columns=EVENT_COLUMNS),
                                 users, with_properties=True)
    with ThreadPoolExecutor(max_workers=1) as side:
        users = side.submit(store.read_version_users, store_key, version.number)
        return build_user_events_coded(
            store.iter_coded_partitions(version), codes, users.result,
            properties_from=lambda: store.iter_coded_partitions(version,
                                                                columns=["properties"]))


def read_partition_frame(store: Any, store_key: str, version: int, part: int) -> UserEvents:
    """One partition of a version as a per-user frame with only its own users' attributes (a
    fan-out map: what it reads follows its partition, not the dataset). A layout-2 partition
    loads from its integer codes (no string factorizing, no sort), its properties on first
    use; an older one the old way, with properties."""
    users = store.read_partition_users(store_key, version, part)
    coded = store.read_coded_partition(store_key, version, part)
    if coded is None:
        events = store.read_version_partition(store_key, version, part,
                                              columns=EVENT_COLUMNS).to_pandas()
        return build_user_events([events], users, with_properties=True)
    codes, table = coded

    def properties() -> list[tuple[int, Any]]:
        later = store.read_coded_partition(store_key, version, part, columns=["properties"])
        return [(part, later[1])]
    return build_user_events_coded([(part, table)], codes, users, properties_from=properties)
