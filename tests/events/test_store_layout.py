"""The store's layout 2 (integer user codes + a user dictionary) and its loader.

The frame loaded from the codes must equal the frame built the old way (string factorizing and
sorting) on the same events, array for array; a version written in the old layout still loads
and the next publish upgrades it; erasure and object stores keep working.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from events import privacy
from events.frame import UserEvents, build_user_events, build_user_events_coded
from events.ingest import ImportOptions, merge_into_store, parse_events, parse_users
from events.services import read_user_events
from events.store import CODES_FILE, EVENT_SCHEMA, LAYOUT, EventStore, partition_of

OPTIONS = ImportOptions(now=datetime(2030, 1, 1, tzinfo=UTC))
COLUMNS = ["user_id", "event", "timestamp", "revenue", "cost", "properties"]


def generated_events(seed: int, n: int = 4000, users: int = 300) -> pd.DataFrame:
    """Rows in random order: ids of different lengths (some non-ASCII), ties in time within a
    user, revenue and cost mostly missing, properties missing or one of a few texts."""
    rng = np.random.default_rng(seed)
    names = [f"u{k}" + ("é" * (k % 3)) + ("x" * (k % 5)) for k in range(users)]
    user = rng.integers(0, users, n)
    event = rng.choice(["signup", "view", "cart", "purchase", "Zoom", "äpfel"], n)
    seconds = 1_735_689_600 + rng.integers(0, 40, n) * 3600  # few distinct times: ties
    frame = pd.DataFrame({
        "user_id": [names[u] for u in user],
        "event": event,
        "timestamp": pd.to_datetime(seconds, unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "revenue": np.where(rng.random(n) < 0.2, rng.integers(1, 500, n) / 4, np.nan),
        "cost": np.where(rng.random(n) < 0.1, rng.integers(1, 50, n) / 8, np.nan),
        "properties": [("" if r < 0.4 else json.dumps({"plan": f"p{int(r * 10)}"}))
                       for r in rng.random(n)],
    })
    # Whole-row repeats would be de-duplicated by the import: keep one of each here.
    return frame.drop_duplicates().sample(frac=1.0, random_state=seed).reset_index(drop=True)


def write_csv(tmp_path: Path, name: str, frame: pd.DataFrame) -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def import_frames(store: EventStore, key: str, tmp_path: Path, *frames: pd.DataFrame,
                  users: pd.DataFrame | None = None) -> None:
    for i, frame in enumerate(frames):
        users_path = write_csv(tmp_path, f"users{i}.csv", users) \
            if users is not None and i == 0 else None
        merge_into_store(store, key, import_id=f"imp-{i}",
                         events=parse_events(write_csv(tmp_path, f"e{i}.csv", frame), OPTIONS),
                         users=parse_users(users_path, OPTIONS) if users_path else None,
                         report={})


def old_way(store: EventStore, key: str) -> UserEvents:
    return build_user_events(store.iter_partitions(key, columns=COLUMNS), store.read_users(key),
                             with_properties=True)


def coded(store: EventStore, key: str, with_properties: bool = True) -> UserEvents:
    version = store.current(key)
    return build_user_events_coded(store.iter_coded_partitions(version, with_properties),
                                   store.read_user_codes(version),
                                   store.read_version_users(key, version.number),
                                   with_properties=with_properties)


def assert_same_frame(new: UserEvents, old: UserEvents) -> None:
    assert list(new.user_ids) == list(old.user_ids)
    for name in ("user", "time", "event", "revenue", "cost", "signup", "starts"):
        a, b = getattr(new, name), getattr(old, name)
        assert a.dtype == b.dtype, name
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert new.event_names == old.event_names
    assert new.has_cost == old.has_cost
    pd.testing.assert_frame_equal(new.attributes, old.attributes)
    if old.properties is not None:
        codes_new, texts_new = new.property_table()
        codes_old, texts_old = old.property_table()
        assert list(texts_new[codes_new]) == list(texts_old[codes_old])
        # Distinct entries stay distinct (an analysis may count codes).
        assert len(set(texts_new)) == len(texts_new)


def expected_from_rows(rows: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Sorted user ids, events per user and the times in (user, time) order, from the rows."""
    ids = sorted(set(rows["user_id"]))
    counts = rows["user_id"].value_counts().reindex(ids).to_numpy()
    micros = pd.to_datetime(rows["timestamp"], utc=True).to_numpy(dtype="datetime64[us]")
    rank = {u: i for i, u in enumerate(ids)}
    order = np.lexsort((micros.astype(np.int64), rows["user_id"].map(rank).to_numpy()))
    return ids, counts, micros.astype(np.int64)[order]


def test_frame_from_codes_equals_the_frame_built_the_old_way(tmp_path):
    rows = generated_events(seed=3)
    users = pd.DataFrame({"user_id": sorted(set(rows["user_id"]))[::2] + ["nobody"],
                          "plan": "pro"})
    users["signup_time"] = ["2024-12-01T00:00:00Z"] * (len(users) - 1) + [""]
    store = EventStore(tmp_path / "store", partitions=5)
    half = len(rows) // 2
    import_frames(store, "ds", tmp_path, rows.iloc[:half], rows.iloc[half:], users=users)
    version = store.current("ds")
    assert version.manifest["layout"] == LAYOUT == 2
    codes = store.read_user_codes(version)
    # The dictionary: every user with events once, in id order, with its own event count.
    ids, counts, times = expected_from_rows(rows)
    assert codes.column("user_id").to_pylist() == ids
    np.testing.assert_array_equal(codes.column("events").to_numpy(), counts)
    parts = partition_of(np.array(ids, dtype=object), 5)
    np.testing.assert_array_equal(codes.column("part").to_numpy(), parts)
    new = coded(store, "ds")
    assert list(new.user_ids) == ids
    np.testing.assert_array_equal(np.diff(new.starts), counts)
    np.testing.assert_array_equal(new.time, times)
    assert_same_frame(new, old_way(store, "ds"))
    # Attributes: the users file's plan where given, none for users without a row there.
    plans = new.attributes["plan"].to_numpy(dtype=object)
    assert [p == "pro" for p in plans] == [i % 2 == 0 for i in range(len(ids))]
    # Without properties too (the behaviour bench's load).
    lean = coded(store, "ds", with_properties=False)
    assert lean.properties is None
    np.testing.assert_array_equal(lean.event, new.event)


def test_the_refresh_load_reads_properties_on_first_use_and_they_equal_the_eager_ones(
        tmp_path, monkeypatch):
    rows = generated_events(seed=11)
    store = EventStore(tmp_path / "store", partitions=4)
    half = len(rows) // 2
    import_frames(store, "ds", tmp_path, rows.iloc[:half], rows.iloc[half:])
    version = store.current("ds")
    eager = coded(store, "ds")
    reads: list[list[str]] = []
    real = store.iter_coded_partitions

    def counting(v, with_properties=False, columns=None):
        reads.append(list(columns) if columns else ["<frame>"])
        return real(v, with_properties, columns)

    monkeypatch.setattr(store, "iter_coded_partitions", counting)
    lazy = read_user_events(store, version, "ds")
    assert reads == [["<frame>"]]  # the frame without properties
    assert lazy.__dict__["properties"] is None
    assert_same_frame(lazy, eager)  # reads lazy.properties: the partitions' properties now
    assert reads == [["<frame>"], ["properties"]]
    assert lazy.properties is lazy.properties and reads[-1] == ["properties"]  # kept
    # The very array the eager load makes: the same dictionary, the same codes.
    assert lazy.properties.dictionary.to_pylist() == eager.properties.dictionary.to_pylist()
    assert lazy.properties.indices.to_pylist() == eager.properties.indices.to_pylist()
    texts = lazy.property_table()[1][lazy.property_table()[0]]
    expected = sorted(json.loads(p)["plan"] for p in rows["properties"] if p)  # "": none
    assert sorted(json.loads(t)["plan"] for t in texts.tolist() if t is not None) == expected
    assert sum(t is None for t in texts.tolist()) == sum(not p for p in rows["properties"])


def test_the_same_rows_in_another_order_and_split_give_the_same_frame(tmp_path):
    rows = generated_events(seed=5)
    one = EventStore(tmp_path / "one", partitions=3)
    import_frames(one, "ds", tmp_path, rows)
    other = EventStore(tmp_path / "other", partitions=3)
    shuffled = rows.sample(frac=1.0, random_state=11)
    third = len(rows) // 3
    import_frames(other, "ds", tmp_path, shuffled.iloc[:third], shuffled.iloc[third:2 * third],
                  shuffled.iloc[2 * third:])
    assert_same_frame(coded(other, "ds"), coded(one, "ds"))


def write_old_layout(store: EventStore, key: str, rows: pd.DataFrame) -> None:
    """A version as the store wrote it before layout 2: event columns only, no dictionary."""
    table = pa.table({
        "user_id": pa.array(rows["user_id"], pa.string()),
        "event": pa.array(rows["event"], pa.string()),
        "timestamp": pa.array(pd.to_datetime(rows["timestamp"], utc=True)
                              .to_numpy(dtype="datetime64[us]")).cast(
                                  pa.timestamp("us", tz="UTC")),
        "revenue": pa.array(rows["revenue"], pa.float64(), from_pandas=True),
        "cost": pa.array(rows["cost"], pa.float64(), from_pandas=True),
        "properties": pa.array(rows["properties"].replace("", None), pa.string()),
    })
    table = table.sort_by([("user_id", "ascending"), ("timestamp", "ascending"),
                           ("event", "ascending")])
    table = table.set_column(1, "event", table.column("event").dictionary_encode()) \
        .cast(EVENT_SCHEMA)
    folder = store.dataset_dir(key) / "v000001"
    folder.mkdir(parents=True)
    part = partition_of(table.column("user_id").to_numpy(zero_copy_only=False),
                        store.partitions)
    for p in range(store.partitions):
        pq.write_table(table.filter(pa.array(part == p)), folder / f"events-{p:02d}.parquet")
    (folder / "manifest.json").write_text(json.dumps({
        "version": 1, "partitions": store.partitions, "imports": {},
        "total_events": table.num_rows}))
    (store.dataset_dir(key) / "CURRENT").write_text("v000001")


def test_an_old_layout_version_loads_and_the_next_import_upgrades_it(tmp_path):
    rows = generated_events(seed=8, n=1500, users=120)
    store = EventStore(tmp_path / "store", partitions=4)
    write_old_layout(store, "ds", rows)
    version = store.current("ds")
    assert store.read_user_codes(version) is None
    loaded = read_user_events(store, version, "ds")  # the old way, from the strings
    ids, counts, times = expected_from_rows(rows)
    assert list(loaded.user_ids) == ids
    np.testing.assert_array_equal(np.diff(loaded.starts), counts)
    np.testing.assert_array_equal(loaded.time, times)
    # One new event of one user: one partition changes, the other three are upgraded.
    new_row = pd.DataFrame({"user_id": ["u7éxx"], "event": ["view"],
                            "timestamp": ["2025-06-01T00:00:00Z"], "revenue": [np.nan],
                            "cost": [np.nan], "properties": [""]})
    import_frames(store, "ds", tmp_path, new_row)
    upgraded = store.current("ds")
    assert upgraded.number == 2 and upgraded.manifest["layout"] == 2
    for path in upgraded.event_files():
        assert "user" in pq.read_schema(path).names
    all_rows = pd.concat([rows, new_row], ignore_index=True)
    ids, counts, times = expected_from_rows(all_rows)
    frame = read_user_events(store, upgraded, "ds")
    assert list(frame.user_ids) == ids
    np.testing.assert_array_equal(np.diff(frame.starts), counts)
    np.testing.assert_array_equal(frame.time, times)
    assert_same_frame(frame, old_way(store, "ds"))


def test_erasure_rewrites_the_dictionary_without_the_user(tmp_path):
    rows = generated_events(seed=13, n=2000, users=150)
    store = EventStore(tmp_path / "store", partitions=4)
    import_frames(store, "ds", tmp_path, rows)
    gone = "u42" + "é" * (42 % 3) + "x" * (42 % 5)  # as generated_events names user 42
    assert gone in set(rows["user_id"])
    before = store.current("ds")
    result = privacy.erase_from_store(store, "ds", gone, "er-1")
    assert result["events_removed"] == int((rows["user_id"] == gone).sum())
    after = store.current("ds")
    assert after.number == before.number + 1 and after.manifest["layout"] == 2
    codes = store.read_user_codes(after)
    assert gone not in set(codes.column("user_id").to_pylist())
    # No file of the new version holds the id (the dictionary included); older versions pruned.
    assert not any(privacy.file_mentions(p, gone) for p in after.path.iterdir())
    assert [p.name for p in store.dataset_dir("ds").glob("v*")] == [after.path.name]
    kept = rows[rows["user_id"] != gone]
    ids, counts, times = expected_from_rows(kept)
    frame = coded(store, "ds")
    assert list(frame.user_ids) == ids
    np.testing.assert_array_equal(np.diff(frame.starts), counts)
    np.testing.assert_array_equal(frame.time, times)
    assert_same_frame(frame, old_way(store, "ds"))


def test_codes_load_from_an_object_store(tmp_path):
    rows = generated_events(seed=21, n=1200, users=90)
    url = f"memory://bucket-{uuid.uuid4().hex[:8]}/store"
    store = EventStore(url, partitions=3, local_root=tmp_path / "local")
    half = len(rows) // 2
    import_frames(store, "ds", tmp_path, rows.iloc[:half], rows.iloc[half:])
    version = store.current("ds")
    assert version.manifest["layout"] == 2
    assert store._exists(version.path / CODES_FILE)
    ids, counts, times = expected_from_rows(rows)
    frame = read_user_events(store, version, "ds")
    assert list(frame.user_ids) == ids
    np.testing.assert_array_equal(frame.time, times)
    assert_same_frame(frame, old_way(store, "ds"))


def test_a_dictionary_that_does_not_match_the_partitions_is_refused(tmp_path):
    rows = generated_events(seed=2, n=600, users=40)
    store = EventStore(tmp_path / "store", partitions=2)
    import_frames(store, "ds", tmp_path, rows)
    version = store.current("ds")
    codes = store.read_user_codes(version)
    counts = codes.column("events").to_numpy().copy()
    counts[0] += 1
    wrong = codes.set_column(3, "events", pa.array(counts, pa.int32()))
    with pytest.raises(ValueError, match="does not match the user dictionary"):
        build_user_events_coded(store.iter_coded_partitions(version), wrong)


def test_properties_placed_from_two_threads_keep_the_one_thread_dictionary(tmp_path, monkeypatch):
    rows = generated_events(seed=5)
    store = EventStore(tmp_path / "store", partitions=6)
    import_frames(store, "ds", tmp_path, rows)
    built = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("SP_ANALYTIC_THREADS", threads)
        built[threads] = coded(store, "ds").properties
    one, two = built["1"], built["2"]
    assert one.dictionary.to_pylist() == two.dictionary.to_pylist()
    assert one.indices.to_pylist() == two.indices.to_pylist()
    assert len(set(one.dictionary.to_pylist())) == len(one.dictionary)
