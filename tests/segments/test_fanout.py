"""Fan-out per user-hash partition: map per partition, reduce over per-user rows, and the result
identical to the single-process path (pure; through the DB with eager Celery; real worker)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from segments.analytics.data import build_user_events
from segments.analytics.fanout import refresh_map, refresh_reduce, refresh_split
from segments.analytics.refresh import SegmentSpec, run_refresh
from segments.demo import generate_demo, write_demo
from segments.ingest import ImportOptions, merge_into_store, parse_events, parse_users
from segments.store import EventStore

COLUMNS = ["user_id", "event", "timestamp", "revenue", "cost", "properties"]
PLAN_EARLY = "2025-06-01T00:00:00Z"

SPECS = [
    SegmentSpec("plan-team", "rule", {"attribute": "plan", "op": "eq", "value": "team"}),
    SegmentSpec("early-reports", "rule", {"event": "report_created", "min_count": 3,
                                          "window": {"from_signup_days": [0, 14]}}),
    SegmentSpec("pro-recent", "rule", {"all": [
        {"attribute": "plan", "op": "eq", "value": "pro"},
        {"last_seen": {"op": "within_days", "value": 30}}]}),
    SegmentSpec("invited", "rule", {"event": "invite_sent", "min_count": 1}),
    SegmentSpec("champions", "rfm", {"rfm": "Champions"}),
    SegmentSpec("bad-rfm", "rfm", {"rfm": "No such segment"}),
    SegmentSpec("nobody", "rule", {"attribute": "plan", "op": "eq", "value": "none"}),
]


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory) -> tuple[EventStore, str]:
    tmp = tmp_path_factory.mktemp("fanout")
    data = generate_demo(users=5000, seed=7)
    paths = write_demo(data, tmp)
    store = EventStore(tmp / "store", partitions=8)
    options = ImportOptions(now=datetime(2030, 1, 1, tzinfo=UTC))
    merge_into_store(store, "demo", import_id="1", events=parse_events(Path(paths["events"]),
                                                                      options),
                     users=parse_users(Path(paths["users"]), options), report={})
    return store, "demo"


def _whole(store: EventStore, key: str):
    return build_user_events(store.iter_partitions(key, columns=COLUMNS),
                             store.read_users(key), with_properties=True)


def _parts(store: EventStore, key: str):
    users = store.read_users(key)
    return [build_user_events([frame], users, with_properties=True)
            for frame in store.iter_partitions(key, columns=COLUMNS)]


def _cluster_spec(whole) -> SegmentSpec:
    members = list(whole.user_ids[::7][:300])
    return SegmentSpec("cluster", "cluster", {"members": members})


def assert_same_refresh(a, b) -> None:
    assert a.as_of == b.as_of
    assert a.baseline == b.baseline
    assert a.clv_fit == b.clv_fit
    assert [s.key for s in a.segments] == [s.key for s in b.segments]
    for x, y in zip(a.segments, b.segments, strict=True):
        assert (x.key, x.size, x.share, x.error) == (y.key, y.size, y.share, y.error)
        assert list(x.members) == list(y.members), x.key
        assert x.signals == y.signals, x.key
        assert x.holdout == y.holdout, x.key
        assert _nan_equal(x.retention, y.retention), x.key


def _nan_equal(a, b) -> bool:
    return repr(a) == repr(b)


def test_refresh_reduce_of_partition_maps_equals_the_single_process_refresh(demo_store):
    store, key = demo_store
    whole = _whole(store, key)
    parts = _parts(store, key)
    assert len(parts) == 8 and sum(p.n_users for p in parts) == whole.n_users
    assert all(p.n_users > 0 for p in parts)
    specs = [*SPECS, _cluster_spec(whole)]
    as_of = int(whole.time.max()) + 1
    split = refresh_split(as_of, int(whole.time.min()))
    expected = run_refresh(whole, specs, as_of=as_of, outcome_event="upgrade")
    rows = [refresh_map(p, specs, as_of=as_of, split=split, outcome_event="upgrade")
            for p in parts]
    got = refresh_reduce(rows, specs, as_of=as_of, split=split)
    assert_same_refresh(got, expected)
    assert expected.clv_fit["fitted"]
    sizes = {s.key: s.size for s in expected.segments}
    assert sizes["plan-team"] > 0 and sizes["champions"] > 0 and sizes["nobody"] == 0
    assert {s.key: s.error for s in expected.segments}["bad-rfm"]
    # The order the partitions arrive in does not matter.
    again = refresh_reduce(rows[::-1], specs, as_of=as_of, split=split)
    assert_same_refresh(again, expected)


def test_a_refresh_as_of_before_the_last_event_and_without_outcome(demo_store):
    store, key = demo_store
    whole = _whole(store, key)
    parts = _parts(store, key)
    as_of = int(np.quantile(whole.time, 0.8))
    split = refresh_split(as_of, int(whole.time.min()))
    expected = run_refresh(whole, SPECS, as_of=as_of, outcome_event=None, seed=3)
    rows = [refresh_map(p, SPECS, as_of=as_of, split=split) for p in parts]
    assert_same_refresh(refresh_reduce(rows, SPECS, as_of=as_of, split=split, seed=3), expected)
