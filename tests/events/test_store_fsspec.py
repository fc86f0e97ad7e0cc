"""The event store on an fsspec URL (``memory://``): import, read, publish, refresh."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import fsspec
import pyarrow as pa
import pytest

from events.ingest import ImportOptions, merge_into_store, parse_events, parse_users
from events.store import EVENT_SCHEMA, EventStore

EVENTS = """user_id,event,timestamp,revenue
a,signup,2025-01-01T00:00:00Z,
a,purchase,2025-01-05T00:00:00Z,30
b,signup,2025-01-02T00:00:00Z,
b,report_created,2025-01-03T00:00:00Z,
c,signup,2025-01-03T00:00:00Z,
c,purchase,2025-02-01T00:00:00Z,12.5
"""
MORE = """user_id,event,timestamp,revenue
d,signup,2025-02-01T00:00:00Z,
a,purchase,2025-02-05T00:00:00Z,20
"""
USERS = "user_id,plan\na,pro\nb,free\nc,pro\nd,free\n"
OPTIONS = ImportOptions(now=datetime(2030, 1, 1, tzinfo=UTC))


@pytest.fixture
def url() -> str:
    return f"memory://bucket-{uuid.uuid4().hex[:8]}/store"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_import_read_and_two_published_versions_on_memory(url, tmp_path):
    store = EventStore(url, partitions=3, local_root=tmp_path / "local")
    assert store.current("ds") is None
    merge_into_store(store, "ds", import_id="1",
                     events=parse_events(_write(tmp_path, "e.csv", EVENTS), OPTIONS),
                     users=parse_users(_write(tmp_path, "u.csv", USERS), OPTIONS), report={})
    first = store.current("ds")
    assert first is not None and first.number == 1
    events = store.read_events("ds")
    assert len(events) == 6 and events["user_id"].is_monotonic_increasing
    assert sorted(store.read_users("ds")["user_id"]) == ["a", "b", "c", "d"]
    merge_into_store(store, "ds", import_id="2",
                     events=parse_events(_write(tmp_path, "m.csv", MORE), OPTIONS), users=None,
                     report={})
    second = store.current("ds")
    assert second.number == 2 and second.manifest["partitions"] == 3
    assert len(store.read_events("ds")) == 8
    assert sorted(store.read_users("ds")["user_id"]) == ["a", "b", "c", "d"]  # carried over
    # Nothing was written to the local folder: the versions are objects under the URL.
    fs = fsspec.filesystem("memory")
    names = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(url.removeprefix("memory://") + "/ds",
                                                         detail=False))
    assert "CURRENT" in names
    assert sum(n.startswith("v000002-") for n in names) == 1
    assert fs.cat_file(url.removeprefix("memory://") + "/ds/CURRENT").decode() == \
        second.path.name
    # Reading by version number and the time bounds from the Parquet statistics.
    assert store.read_version_partition("ds", 2, 0).num_rows + \
        store.read_version_partition("ds", 2, 1).num_rows + \
        store.read_version_partition("ds", 2, 2).num_rows == 8
    low, high = store.time_bounds("ds", second)
    assert (low, high) == (int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1e6),
                           int(datetime(2025, 2, 5, tzinfo=UTC).timestamp() * 1e6))
    assert not (tmp_path / "local" / "ds").exists() or not any(
        p.name.startswith("v") for p in (tmp_path / "local" / "ds").iterdir())


def test_a_crash_before_current_leaves_the_previous_version(url, tmp_path, monkeypatch):
    store = EventStore(url, partitions=2, local_root=tmp_path / "local")
    table = pa.table({"user_id": ["a"], "event": ["e"],
                      "timestamp": pa.array([1_700_000_000_000_000], pa.timestamp("us", "UTC")),
                      "revenue": [None], "cost": [None], "properties": [None]})
    store.publish("ds", {0: table.cast(EVENT_SCHEMA)}, None, {"imports": []})
    real = store.fs.pipe_file

    def crash(path: str, data: bytes, **kw: object) -> None:
        if path.endswith("/CURRENT"):
            raise OSError("lost the connection")
        real(path, data, **kw)

    monkeypatch.setattr(store.fs, "pipe_file", crash)
    # Another user (a user lives in one partition: the user dictionary refuses one in two).
    other = table.set_column(0, "user_id", pa.array(["b"])).cast(EVENT_SCHEMA)
    with pytest.raises(OSError):
        store.publish("ds", {1: other}, None, {"imports": []})
    monkeypatch.undo()
    assert store.current("ds").number == 1
    assert len(store.read_events("ds")) == 1
    store.publish("ds", {1: other}, None, {"imports": []})
    assert store.current("ds").number == 2 and len(store.read_events("ds")) == 2


def test_file_urls_are_the_local_folder(tmp_path):
    store = EventStore(f"file://{tmp_path}/store", partitions=2)
    assert store.fs is None and store.root == tmp_path / "store"


@pytest.mark.django_db
def test_a_refresh_on_a_memory_store(team, tmp_path, settings):
    from django.core.management import call_command

    from events.models import Dataset
    from segments import segment_services
    from segments.models import Refresh, SegmentSnapshot

    settings.EVENT_STORE = f"memory://bucket-{uuid.uuid4().hex[:8]}/store"
    call_command("import_events", workspace="acme", events=_write(tmp_path, "e.csv", EVENTS),
                 users=_write(tmp_path, "u.csv", USERS), dataset="app")
    dataset = Dataset.objects.get(name="app")
    team["acme"].min_segment_size = 1
    team["acme"].save()
    pro = segment_services.segment_create(dataset=dataset, name="pro",
                                          definition={"attribute": "plan", "op": "eq",
                                                      "value": "pro"})
    results = {}
    for mode in ("off", "on"):
        settings.FANOUT = mode
        call_command("refresh_segments", workspace="acme")
        refresh = Refresh.objects.filter(dataset=dataset).order_by("-id").first()
        snap = SegmentSnapshot.objects.get(segment=pro, refresh=refresh)
        results[mode] = (snap.size, snap.signals, snap.holdout,
                         sorted(segment_services.snapshot_members(snap).tolist()))
    assert results["off"][0] == 2 and results["off"][3] == ["a", "c"]
    assert results["off"] == results["on"]
    # Raw uploads and member lists are objects of the store too (any worker reads them),
    # never in a local folder, nor in one named "memory:".
    assert not (Path.cwd() / "memory:").exists()
    fs = fsspec.filesystem("memory")
    base = settings.EVENT_STORE.removeprefix("memory://")
    record = dataset.imports.get()
    assert record.events_path.startswith(settings.EVENT_STORE + f"/uploads/{team['acme'].pk}/")
    assert fs.exists(record.events_path.removeprefix("memory://"))
    assert fs.exists(f"{base}/snapshots/{dataset.store_key}/refresh-{refresh.pk}.parquet")


def test_the_write_lock_of_a_url_store_excludes_a_second_writer(url, tmp_path):
    """Without a locker (the pure store), a lock file in the system's temporary folder; the
    store's content stays remote. A second writer waits, or with a timeout gives up."""
    store = EventStore(url, partitions=2, local_root=tmp_path / "local")
    other = EventStore(url, partitions=2, local_root=tmp_path / "local")
    with store.write_lock("ds"):
        with pytest.raises(TimeoutError, match="ds"), other.write_lock("ds", timeout=0.2):
            pass
        with other.write_lock("another", timeout=0.2):  # another dataset: its own lock
            pass
    with other.write_lock("ds", timeout=0.2):  # released
        pass
    assert not (tmp_path / "local").exists()


@pytest.mark.django_db(transaction=True)
def test_the_app_store_locks_through_the_database_lock(url, settings):
    """``get_store`` gives a URL store the database's lock (PostgreSQL: an advisory lock,
    held per connection; SQLite: one machine's lock file): another worker (here a thread,
    with its own database connection) waits for it, or with a timeout gives up."""
    import threading

    from django.db import connection

    from events.services import dataset_write_lock, get_store

    settings.EVENT_STORE = url
    store = get_store()
    assert store.locker is dataset_write_lock

    def other_worker(key: str) -> str:
        outcome: list[str] = []

        def run() -> None:
            try:
                with get_store().write_lock(key, timeout=0.3):
                    outcome.append("locked")
            except TimeoutError:
                outcome.append("timed out")
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        return outcome[0]

    with store.write_lock("ds"):
        assert other_worker("ds") == "timed out"
        assert other_worker("another") == "locked"
    assert other_worker("ds") == "locked"
