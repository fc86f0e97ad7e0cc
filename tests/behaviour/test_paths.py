"""Paths (behaviour.analytics.paths): sessions, collapsed repeats, paths after a start / before
an end event and their outcome rates against a plain-Python reference (hypothesis). No DB."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from behaviour.analytics.paths import paths
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


def reference(ue, as_of, start, end, steps, outcome, users):
    """{path tuple: [sessions, set of users, outcome sessions]}, sessions, users. Loops. A
    step is the set of a user's events at one time (events sharing a time are simultaneous),
    shown as their sorted names joined by " + "."""
    out: dict[tuple[str, ...], list] = {}
    n_sessions, anchored_users = 0, set()
    for u in range(ue.n_users):
        if users is not None and not users[u]:
            continue
        at: dict[int, set[str]] = {}
        for i in range(ue.starts[u], ue.starts[u + 1]):
            if ue.time[i] <= as_of:
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
            if start is not None:
                hits = [i for i, names in enumerate(s) if start in names]
                if not hits:
                    continue
                i = hits[0]
                path, first = s[i:i + steps], i
            elif end is not None:
                hits = [i for i, names in enumerate(s) if end in names]
                if not hits:
                    continue
                i = hits[0]
                first = max(0, i - steps + 1)
                path = s[first:i + 1]
            else:
                path, first = s[:steps], 0
            n_sessions += 1
            anchored_users.add(u)
            rec = out.setdefault(tuple(" + ".join(sorted(names)) for names in path), [0, set(), 0])
            rec[0] += 1
            rec[1].add(u)
            rec[2] += int(outcome is not None and any(outcome in names for names in s[first:]))
    return out, n_sessions, len(anchored_users)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), anchor=st.sampled_from(["start", "end", "none"]),
       steps=st.integers(1, 5), scoped=st.booleans())
def test_paths_match_reference(data, anchor, steps, scoped):
    n = data.draw(st.integers(1, 5))
    rows = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 30),
                                        st.integers(0, 3)), max_size=40))
    rows = [(u, m * 15 * MIN, e) for u, m, e in rows]  # gaps of exactly 30 min stay in session
    ue = make_ue(rows, n)
    as_of = 25 * 15 * MIN
    users = np.arange(n) % 2 == 0 if scoped else None
    start = "a" if anchor == "start" else None
    end = "b" if anchor == "end" else None
    res = paths(ue, as_of_us=as_of, start_event=start, end_event=end, steps=steps, top=None,
                outcome_event="o", users=users, min_sessions=1)
    ref, n_sessions, n_users = reference(ue, as_of, start, end, steps, "o", users)
    assert res.sessions == n_sessions and res.users == n_users
    got = {p.steps: (p.sessions, p.users, p.outcome_sessions) for p in res.paths}
    assert got == {k: (v[0], len(v[1]), v[2]) for k, v in ref.items()}
    for p in res.paths:
        assert p.user_share == pytest.approx(p.users / n_users)
        assert p.steps == tuple(" + ".join(names) for names in p.step_events)
    # Events sharing a time are simultaneous: their stored order changes nothing.
    rng = np.random.default_rng(len(rows))
    order = np.lexsort((rng.random(ue.n_events), ue.time, ue.user))
    shuffled = replace(ue, user=ue.user[order], time=ue.time[order], event=ue.event[order],
                       starts=None)
    again = paths(shuffled, as_of_us=as_of, start_event=start, end_event=end, steps=steps,
                  top=None, outcome_event="o", users=users, min_sessions=1)
    assert again.to_dict() == res.to_dict()
    for p in res.reaching:
        assert p.lift > 1
    for p in res.stalling:
        assert p.lift < 1
    json.dumps(res.to_dict())


def test_sankey_and_ranking():
    rows = []
    for u in range(6):  # a b c for 4 users (3 reach o), a c for 2 users (none)
        t = u * 1000 * MIN
        if u < 4:
            rows += [(u, t, 0), (u, t + MIN, 1), (u, t + 2 * MIN, 1), (u, t + 3 * MIN, 2)]
            if u < 3:
                rows.append((u, t + 4 * MIN, 3))
        else:
            rows += [(u, t, 0), (u, t + MIN, 2)]
        rows.append((u, t + 100 * MIN, 1))  # a new session, no "a"
    ue = make_ue(rows, 6)
    res = paths(ue, as_of_us=10**15, start_event="a", steps=3, outcome_event="o",
                min_sessions=1)
    assert [p.steps for p in res.paths] == [("a", "b", "c"), ("a", "c")]
    assert res.paths[0].user_share == pytest.approx(4 / 6)
    assert res.reaching[0].steps == ("a", "b", "c") and res.reaching[0].lift == pytest.approx(
        (3 / 4) / (3 / 6))
    assert res.stalling[0].steps == ("a", "c")
    nodes = {(n.step, n.event): n.id for n in res.nodes}
    links = {(x.source, x.target): x.value for x in res.links}
    assert links[(nodes[(0, "a")], nodes[(1, "b")])] == 4
    assert links[(nodes[(0, "a")], nodes[(1, "c")])] == 2
    assert links[(nodes[(1, "b")], nodes[(2, "c")])] == 4


def test_validation():
    ue = make_ue([(0, 0, 0)], 1)
    with pytest.raises(ValueError):
        paths(ue, as_of_us=1, steps=6)
    with pytest.raises(ValueError):
        paths(ue, as_of_us=1, start_event="a", end_event="b")
    empty = paths(ue, as_of_us=-1)
    assert empty.sessions == 0 and empty.paths == ()
