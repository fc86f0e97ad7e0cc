"""A fan-out map reads only its own partition's users: the store writes the users table split
by partition, and ``partition_user_events`` builds a frame with exactly that partition's users,
equal to the partition's slice of the whole dataset's frame."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from events.demo import generate_demo, write_demo
from events.frame import build_user_events
from events.ingest import ImportOptions, merge_into_store, parse_events, parse_users
from events.store import EventStore, partition_of, users_file

COLUMNS = ["user_id", "event", "timestamp", "revenue", "cost", "properties"]
PARTS = 4


@pytest.fixture
def store_settings(tmp_path: Path, settings) -> EventStore:  # type: ignore[no-untyped-def]
    settings.EVENT_STORE = str(tmp_path / "store")
    settings.EVENT_STORE_PARTITIONS = PARTS
    paths = write_demo(generate_demo(users=800, seed=3), tmp_path)
    store = EventStore(tmp_path / "store", partitions=PARTS)
    options = ImportOptions(now=datetime(2030, 1, 1, tzinfo=UTC))
    merge_into_store(store, "demo", import_id="1",
                     events=parse_events(Path(paths["events"]), options),
                     users=parse_users(Path(paths["users"]), options), report={})
    return store


def test_a_map_frame_holds_exactly_its_partitions_users(store_settings):
    from events.services import partition_user_events

    store = store_settings
    version = store.current("demo")
    all_users = store.read_users("demo")
    whole = build_user_events(store.iter_partitions("demo", columns=COLUMNS), all_users,
                              with_properties=True)
    hashed = partition_of(whole.user_ids, PARTS)
    seen = 0
    for part in range(PARTS):
        # The users file of the partition: exactly the users table's rows that hash there.
        mine = pq.read_table(version.path / users_file(part)).to_pandas()
        expected_rows = all_users[partition_of(all_users["user_id"].to_numpy(object),
                                               PARTS) == part].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, expected_rows)
        ue = partition_user_events("demo", version.number, part)
        own = np.flatnonzero(hashed == part)
        assert list(ue.user_ids) == list(whole.user_ids[own])
        assert len(ue.attributes) == ue.n_users == len(own) > 0
        # Attributes, signups and events equal the whole frame's rows for these users.
        pd.testing.assert_frame_equal(ue.attributes.reset_index(drop=True),
                                      whole.attributes.iloc[own].reset_index(drop=True))
        assert np.array_equal(ue.signup, whole.signup[own])
        rows = np.concatenate([np.arange(whole.starts[u], whole.starts[u + 1]) for u in own])
        assert np.array_equal(ue.time, whole.time[rows])
        names = np.asarray(whole.event_names)[whole.event[rows]]
        assert list(np.asarray(ue.event_names)[ue.event]) == list(names)
        seen += ue.n_users
    assert seen == whole.n_users


def test_an_erasure_rewrites_the_partition_users_files(store_settings):
    from events.privacy import erase_from_store

    store = store_settings
    victim = str(store.read_users("demo")["user_id"].iloc[5])
    assert erase_from_store(store, "demo", victim, erasure_id="e1")["published"]
    version = store.current("demo")
    for part in range(PARTS):
        ids = pq.read_table(version.path / users_file(part), columns=["user_id"])
        assert victim not in ids.column("user_id").to_pylist()
