"""Paths count every user: each user once on the Sankey (the path of their first anchored
session), one-step paths drawn into "(end)", the drawn share stated, the outcome apart from
the end event. Against a plain-Python loop on generated logs. No database."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from behaviour.analytics.paths import END_NODE, START_NODE, paths
from events.frame import UserEvents

MIN = 60_000_000
NAMES = ("a", "b", "c", "o")


def make_ue(rows: list[tuple[int, int, int]], n_users: int) -> UserEvents:
    user = np.array([r[0] for r in rows], dtype=np.int32)
    time = np.array([r[1] for r in rows], dtype=np.int64)
    event = np.array([r[2] for r in rows], dtype=np.int32)
    order = np.lexsort((time, user))
    return UserEvents(user_ids=np.array([f"u{i}" for i in range(n_users)], dtype=object),
                      user=user[order], time=time[order], event=event[order], event_names=NAMES,
                      revenue=np.zeros(len(rows)), cost=np.zeros(len(rows)),
                      signup=np.zeros(n_users, dtype=np.int64),
                      attributes=pd.DataFrame(index=pd.RangeIndex(n_users)))


def generated(seed: int, n_users: int = 120) -> UserEvents:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        t = int(rng.integers(0, 1000)) * MIN
        for _ in range(int(rng.integers(1, 9))):
            t += int(rng.choice([0, 1, 5, 20, 30, 31, 90, 600])) * MIN
            rows.append((u, t, int(rng.choice(4, p=[0.4, 0.3, 0.2, 0.1]))))
    return make_ue(rows, n_users)


def first_paths(ue: UserEvents, start: str | None, end: str | None,
                steps: int) -> dict[tuple[str, ...], int]:
    """Per path: users whose first anchored session follows it. Loops over users, steps
    (a user's events at one time, names sorted), 30-minute sessions, collapsed repeats."""
    out: dict[tuple[str, ...], int] = {}
    for u in range(ue.n_users):
        at: dict[int, set[str]] = {}
        for i in range(ue.starts[u], ue.starts[u + 1]):
            at.setdefault(int(ue.time[i]), set()).add(NAMES[ue.event[i]])
        sessions: list[list[frozenset[str]]] = []
        prev = None
        for t in sorted(at):
            names = frozenset(at[t])
            if prev is None or t - prev > 30 * MIN:
                sessions.append([])
            if not sessions[-1] or sessions[-1][-1] != names:
                sessions[-1].append(names)
            prev = t
        for s in sessions:
            anchor = start or end
            hits = [i for i, names in enumerate(s) if anchor in names] if anchor else [0]
            if not hits:
                continue
            i = hits[0]
            path = s[max(0, i - steps + 1):i + 1] if end else s[i:i + steps]
            key = tuple(" + ".join(sorted(names)) for names in path)
            out[key] = out.get(key, 0) + 1
            break  # the first anchored session only
    return out


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize(("start", "end"), [("a", None), (None, "b"), (None, None)])
@pytest.mark.parametrize("steps", [1, 2, 3])
def test_every_user_is_drawn_once(seed, start, end, steps):
    ue = generated(seed)
    res = paths(ue, as_of_us=10**15, start_event=start, end_event=end, steps=steps, top=500)
    ref = first_paths(ue, start, end, steps)
    users_in_scope = sum(ref.values())
    assert res.users == users_in_scope
    assert {p.steps: p.first_users for p in res.paths if p.first_users} == ref
    cov = res.sankey_users
    assert (cov["drawn_users"], cov["total_users"], cov["other_users"]) == (
        users_in_scope, users_in_scope, 0)
    assert cov["share"] == 1.0
    # The Sankey's flows hold every user: out of the anchor's column (after a start event or
    # from the session start) or into it (before an end event) they sum to all users.
    if steps > 1:
        if end:
            last = {n.id for n in res.nodes if n.step == steps - 1}
            assert sum(x.value for x in res.links if x.target in last) == users_in_scope
        else:
            first = {n.id for n in res.nodes if n.step == 0}
            assert sum(x.value for x in res.links if x.source in first) == users_in_scope
        shorter = [p for p in ref if len(p) < steps]
        marker = START_NODE if end else END_NODE
        assert any(n.event == marker for n in res.nodes) == bool(shorter)


@pytest.mark.parametrize("top", [1, 3])
def test_top_paths_state_what_is_left_out(top):
    ue = generated(3)
    res = paths(ue, as_of_us=10**15, start_event="a", steps=3, top=top)
    ref = first_paths(ue, "a", None, 3)
    ranked = sorted(ref.items(), key=lambda kv: -kv[1])
    drawn = sum(v for _, v in ranked[:top])
    cov = res.sankey_users
    assert cov["drawn_users"] == drawn and cov["total_users"] == sum(ref.values())
    assert cov["other_users"] == sum(ref.values()) - drawn
    assert cov["other_paths"] == len(ref) - top
    assert cov["share"] == drawn / sum(ref.values())


def test_one_step_paths_flow_into_end_and_outcome_apart_from_end():
    rows = [(0, 0, 0), (1, 0, 0), (1, MIN, 1), (2, 0, 0), (2, 100 * MIN, 1)]
    ue = make_ue(rows, 3)
    res = paths(ue, as_of_us=10**15, start_event="a", steps=3, outcome_event="b",
                min_sessions=1)
    nodes = {n.id: (n.step, n.event) for n in res.nodes}
    links = {(nodes[x.source], nodes[x.target]): x.value for x in res.links}
    # users 0 and 2: "a" then nothing in the session; user 1: a -> b -> (end)
    assert links == {((0, "a"), (1, END_NODE)): 2, ((0, "a"), (1, "b")): 1,
                     ((1, "b"), (2, END_NODE)): 1}
    assert res.sankey_users["drawn_users"] == 3 and not res.outcome_is_end
    same = paths(ue, as_of_us=10**15, end_event="b", steps=2, outcome_event="b")
    assert same.outcome_is_end and same.outcome_rate.estimate == 1.0
    assert same.to_dict()["outcome_is_end"] is True
