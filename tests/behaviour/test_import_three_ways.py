"""Issue 16, items 13-14: the same rows imported three ways (in order, shuffled, split across
three imports that overlap) give identical store contents and identical funnel, path,
retention and revenue results. The planted rows have many ties: events sharing user and
second, rows differing only in properties or in amount. No database."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import numpy as np

from behaviour.analytics.cohorts import retention
from behaviour.analytics.funnels import funnel
from behaviour.analytics.paths import paths
from events.frame import build_user_events
from events.ingest import ImportOptions, merge_into_store, parse_events
from events.store import EventStore
from segments.analytics.refine import revenue_since_signup
from segments.analytics.refresh import SegmentSpec, run_refresh

T0 = datetime(2024, 1, 1, tzinfo=UTC)
NOW = datetime(2024, 6, 1, tzinfo=UTC)
AS_OF = int(datetime(2024, 4, 1, tzinfo=UTC).timestamp() * 1_000_000)
HEADER = "user_id,event,timestamp,revenue,cost,properties\n"
NAMES = ["signup", "view", "cart", "buy", "support"]


def planted_rows(seed: int = 11) -> list[str]:
    """~1,200 distinct rows of 60 users over 60 days on a 1-minute grid within bursts, so many
    events share a user and a second; buys carry amounts (some twice in one second)."""
    rng = random.Random(seed)
    rows: set[str] = set()
    for u in range(60):
        start = T0 + timedelta(days=rng.randrange(20), minutes=rng.randrange(600))
        rows.add(f"u{u:02d},signup,{start:%Y-%m-%dT%H:%M:%SZ},,,")
        for _ in range(rng.randrange(8, 30)):
            t = start + timedelta(days=rng.randrange(40), minutes=rng.randrange(4))
            event = rng.choice(NAMES[1:])
            revenue = rng.choice(["10", "99", "10"]) if event == "buy" else ""
            cost = rng.choice(["", "1.5"])
            props = rng.choice(["", '"{""plan"": ""pro""}"', '"{""plan"": ""free""}"'])
            rows.add(f"u{u:02d},{event},{t:%Y-%m-%dT%H:%M:%SZ},{revenue},{cost},{props}")
    return sorted(rows)


def import_files(tmp_path, name: str, files: list[list[str]]) -> EventStore:
    store = EventStore(tmp_path / name, partitions=4)
    for i, lines in enumerate(files):
        path = tmp_path / f"{name}-{i}.csv"
        path.write_text(HEADER + "\n".join(lines) + "\n")
        merge_into_store(store, "ds", import_id=str(i),
                         events=parse_events(path, ImportOptions(now=NOW)), users=None, report={})
    return store


def contents(store: EventStore) -> list[list[tuple]]:
    out = []
    for frame in store.iter_partitions("ds"):
        frame = frame.assign(event=frame["event"].astype(str))
        out.append([tuple(None if v != v else v for v in row)
                    for row in frame.itertuples(index=False)])
    return out


def results(store: EventStore) -> str:
    ue = build_user_events(store.iter_partitions("ds"))
    out = {}
    for mode in ("ordered", "strict", "any_order"):
        out[f"funnel-{mode}"] = funnel(ue, ["view", "cart", "buy"], mode=mode, as_of_us=AS_OF,
                                       window_days=7, exclusions=["support"]).to_dict()
    out["paths"] = paths(ue, as_of_us=AS_OF, start_event="view", steps=4,
                         outcome_event="buy", top=None, min_sessions=1).to_dict()
    out["retention"] = retention(ue, as_of_us=AS_OF, cohort_by="first_event").to_dict()
    out["revenue"] = revenue_since_signup(ue, AS_OF, days=30).round(9).tolist()
    refresh = run_refresh(ue, [SegmentSpec("buyers", "rule", {"event": "buy", "min_count": 2})],
                          as_of=AS_OF, outcome_event="buy")
    out["refresh"] = {"baseline": refresh.baseline,
                      "segments": [(s.key, s.size, s.signals) for s in refresh.segments]}
    return json.dumps(out, sort_keys=True, default=str)


def test_in_order_shuffled_or_split_the_same_rows_give_the_same_store_and_results(tmp_path):
    lines = planted_rows()
    shuffled = lines[:]
    random.Random(5).shuffle(shuffled)
    # Three overlapping imports, each shuffled: every row is in one or two of them.
    rng = np.random.default_rng(3)
    parts: list[list[str]] = [[], [], []]
    for line in shuffled:
        for p in rng.choice(3, size=rng.integers(1, 3), replace=False):
            parts[int(p)].append(line)
    stores = [import_files(tmp_path, "once", [lines]),
              import_files(tmp_path, "shuffled", [shuffled]),
              import_files(tmp_path, "split", [parts[2], parts[0], parts[1]])]
    first = contents(stores[0])
    assert sum(len(p) for p in first) == len(lines)
    assert contents(stores[1]) == first
    assert contents(stores[2]) == first
    expected = results(stores[0])
    assert results(stores[1]) == expected
    assert results(stores[2]) == expected
