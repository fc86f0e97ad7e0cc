"""User paths: the most common sequences of events after a start event or before an end event,
and which of them reach an outcome. Pure, vectorized (no loop per user, session or event).

Semantics:

* Events of users in ``users`` with ``since_us <= time <= as_of_us``.
* **Ties: events that share a timestamp are simultaneous**, as in funnels: their stored order
  (by event name) is never read. A user's events at one time are one **step** of a path: the
  set of their event names, shown as the names joined by `` + `` (``"cart + view"``; in
  ``PathRow.step_events`` as a tuple of names). So renaming events never changes a path.
* **Sessions**: a user's steps split where the gap to the previous step is more than
  ``session_gap_minutes`` (default 30; a gap of exactly 30 minutes stays in the session).
* **Repeats collapsed**: consecutive steps with the same set of names inside a session count
  once.
* **Anchor**, one per session at most: with ``start_event``, the session's first step that
  holds it, and the path is that step plus the next ``steps - 1`` steps of the session; with
  ``end_event``, its first step, and the path is the ``steps - 1`` steps before it plus it;
  with neither, the session's first ``steps`` steps. Paths are shorter where the session is.
* **Share of users**: distinct users with the path / distinct users with an anchored session.
* **Outcome**: a path's session reaches the outcome when an ``outcome_event`` occurs in the
  session at or after the path's first step (in that step too). Per path: outcome rate (Wilson) and lift = rate /
  rate over all anchored sessions; ``reaching`` lists paths (support >= ``min_sessions``) with
  lift > 1, highest first, ``stalling`` those with lift < 1, lowest first.
* **Sankey: every user once.** Each user is drawn on the path of their first anchored
  session (``first_users`` per path; these add up to ``users``). The ``top`` paths by those
  users are drawn; a path that ends before ``steps`` (the session ended) flows into an
  ``(end)`` node, and before an end event a path that starts late (the session started there)
  flows from a ``(session start)`` node, so one-step paths are drawn too. ``sankey_users``
  says how many users the drawing holds and how many follow the other paths.
* When the outcome is the end event, every anchored session holds it: rates are 1 by
  construction (``outcome_is_end``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from behaviour.analytics.funnels import Rate
from events.frame import UserEvents

US_PER_MINUTE = 60_000_000
END_NODE = "(end)"
START_NODE = "(session start)"
# How the events of one step (one timestamp) are shown: their names, sorted, joined by this.
SIMULTANEOUS = " + "


@dataclass(frozen=True)
class PathRow:
    steps: tuple[str, ...]  # one label per step: its event names joined by SIMULTANEOUS
    sessions: int
    users: int
    user_share: float | None
    session_share: float | None  # support: sessions / anchored sessions
    outcome_sessions: int
    outcome_rate: Rate | None  # None without an outcome event
    lift: float | None
    step_events: tuple[tuple[str, ...], ...] = ()  # per step, its event names (sorted)
    first_users: int = 0  # users whose first anchored session follows this path

    def to_dict(self) -> dict[str, Any]:
        return {"steps": list(self.steps), "step_events": [list(s) for s in self.step_events],
                "sessions": self.sessions, "users": self.users,
                "first_users": self.first_users,
                "user_share": self.user_share, "session_share": self.session_share,
                "outcome_sessions": self.outcome_sessions,
                "outcome_rate": None if self.outcome_rate is None
                else self.outcome_rate.to_dict(), "lift": self.lift}


@dataclass(frozen=True)
class SankeyNode:
    id: int
    step: int  # 0-based position in the path
    event: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "step": self.step, "event": self.event}


@dataclass(frozen=True)
class SankeyLink:
    source: int
    target: int
    step: int  # the source's step
    value: int  # users (each on the path of their first anchored session)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "step": self.step,
                "value": self.value}


@dataclass(frozen=True)
class PathsResult:
    direction: str  # "after_start" | "before_end" | "session_start"
    anchor: str | None
    steps: int
    session_gap_minutes: float
    outcome: str | None
    as_of_us: int
    sessions: int  # anchored sessions
    users: int  # distinct users with an anchored session
    outcome_rate: Rate | None
    paths: tuple[PathRow, ...]  # most common, by users then sessions
    reaching: tuple[PathRow, ...]
    stalling: tuple[PathRow, ...]
    nodes: tuple[SankeyNode, ...]
    links: tuple[SankeyLink, ...]
    sankey_users: dict[str, Any] | None = None  # drawn / total users, the other paths
    outcome_is_end: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"direction": self.direction, "anchor": self.anchor, "steps": self.steps,
                "session_gap_minutes": self.session_gap_minutes, "outcome": self.outcome,
                "as_of_us": int(self.as_of_us), "sessions": self.sessions, "users": self.users,
                "outcome_rate": None if self.outcome_rate is None
                else self.outcome_rate.to_dict(),
                "paths": [p.to_dict() for p in self.paths],
                "reaching": [p.to_dict() for p in self.reaching],
                "stalling": [p.to_dict() for p in self.stalling],
                "outcome_is_end": self.outcome_is_end,
                "sankey": {"nodes": [n.to_dict() for n in self.nodes],
                           "links": [link.to_dict() for link in self.links],
                           "coverage": self.sankey_users}}


def _first_per_run(positions: np.ndarray, run: np.ndarray) -> np.ndarray:
    if len(positions) == 0:
        return positions
    r = run[positions]
    return positions[np.r_[True, r[1:] != r[:-1]]]


def paths(
    ue: UserEvents,
    *,
    as_of_us: int,
    start_event: str | None = None,
    end_event: str | None = None,
    steps: int = 3,
    top: int | None = 20,
    outcome_event: str | None = None,
    session_gap_minutes: float = 30,
    users: np.ndarray | None = None,
    since_us: int | None = None,
    min_sessions: int = 30,
    alpha: float = 0.05,
) -> PathsResult:
    """Most common paths of up to ``steps`` (1..5) events; see the module docstring."""
    options = PathsOptions(as_of_us=as_of_us, start_event=start_event, end_event=end_event,
                           steps=steps, outcome_event=outcome_event,
                           session_gap_minutes=session_gap_minutes)
    return paths_from_partials([paths_partial(ue, options, users=users, since_us=since_us)],
                               options, top=top, min_sessions=min_sessions, alpha=alpha)


@dataclass(frozen=True)
class PathsOptions:
    """Which paths ``paths`` counts, which its partials and their sum must agree on."""

    as_of_us: int
    start_event: str | None = None
    end_event: str | None = None
    steps: int = 3
    outcome_event: str | None = None
    session_gap_minutes: float = 30


@dataclass
class PathsPartial:
    """Path counts of some users (one user-hash partition; sessions never span users): per
    path its steps (each a JSON list of the step's sorted event names, ``""`` where the path is
    shorter), sessions, distinct users and sessions reaching the outcome; and the anchored
    sessions, their users and how many reached the outcome. Counts of disjoint users add up."""

    labels: np.ndarray  # (paths, steps) str
    sessions: np.ndarray
    users: np.ndarray
    outcome: np.ndarray
    anchored: int
    anchored_users: int
    reached: int
    first_users: np.ndarray | None = None  # per path: users whose first anchored session it is


def paths_partial(ue: UserEvents, options: PathsOptions, *, users: np.ndarray | None = None,
                  since_us: int | None = None) -> PathsPartial:
    """The counts of ``paths`` for the users of ``ue``."""
    as_of_us, steps = options.as_of_us, options.steps
    start_event, end_event = options.start_event, options.end_event
    outcome_event, session_gap_minutes = options.outcome_event, options.session_gap_minutes
    if not 1 <= steps <= 5:
        raise ValueError("steps must be between 1 and 5")
    if start_event is not None and end_event is not None:
        raise ValueError("give a start event or an end event, not both")
    gap = int(round(session_gap_minutes * US_PER_MINUTE))
    sel = ue.time <= as_of_us
    if since_us is not None:
        sel &= ue.time >= since_us
    if users is not None:
        sel &= np.asarray(users, dtype=bool)[ue.user]
    pos = np.flatnonzero(sel)
    del sel
    u, t, e = ue.user[pos], ue.time[pos], ue.event[pos]
    del pos
    steps_of = _Steps.of(u, t, e, ue.event_names)
    u, t, e = steps_of.user, steps_of.time, steps_of.code
    if len(u):
        new = np.empty(len(u), dtype=bool)
        new[0] = True
        np.not_equal(u[1:], u[:-1], out=new[1:])
        new[1:] |= (t[1:] - t[:-1]) > gap
        keep = new.copy()
        keep[1:] |= e[1:] != e[:-1]
        u, e, new = u[keep], e[keep], new[keep]
        del keep
    else:
        new = np.zeros(0, dtype=bool)
    del t
    sid = np.cumsum(new) - 1
    n = len(e)
    n_sessions = int(sid[-1]) + 1 if n else 0
    session_first = np.flatnonzero(new)
    del new

    if start_event is not None or end_event is not None:
        holds = steps_of.holding(ue.event_code(start_event if start_event is not None
                                               else end_event))
        hits = np.flatnonzero(holds[e])
        anchors = _first_per_run(hits, sid)
    else:
        anchors = session_first
    before = end_event is not None
    m = len(anchors)
    base = len(steps_of.labels) + 1
    digits = np.zeros((steps, m), dtype=np.int64)
    a_sid = sid[anchors]
    for j in range(steps):
        idx = anchors - (steps - 1 - j) if before else anchors + j
        ok = (idx >= 0) & (idx < n)
        idx_c = np.clip(idx, 0, max(n - 1, 0))
        ok &= sid[idx_c] == a_sid if n else ok
        digits[j] = np.where(ok, e[idx_c].astype(np.int64) + 1 if n else 0, 0)
    if base ** steps < 2**62:
        key = np.zeros(m, dtype=np.int64)
        for j in range(steps):
            key = key * base + digits[j]
        if base ** steps <= 1 << 22:  # dense: counting beats sorting
            full = np.bincount(key, minlength=base ** steps)
            uniq = np.flatnonzero(full)
            rank = np.zeros(len(full), dtype=np.int64)
            rank[uniq] = np.arange(len(uniq))
            inv, counts = rank[key], full[uniq]
        else:
            uniq, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
        uniq_digits = np.stack([(uniq // base ** (steps - 1 - j)) % base for j in range(steps)])
    else:  # pragma: no cover - thousands of event names and 5 steps
        uniq_digits, inv, counts = np.unique(digits, axis=1, return_inverse=True,
                                             return_counts=True)
    inv = inv.ravel()
    n_paths = len(counts)
    au = u[anchors].astype(np.int64)
    # Distinct (user, path) pairs: sort the combined key and keep the first of each run
    # (a plain sort; numpy's hash-based unique is several times slower on millions of keys).
    pair = au * max(n_paths, 1) + inv
    pair.sort()
    first = np.r_[True, pair[1:] != pair[:-1]] if m else np.zeros(0, bool)
    path_users = np.bincount(pair[first] % max(n_paths, 1), minlength=n_paths)
    total_users = int(np.count_nonzero(au[1:] != au[:-1])) + 1 if m else 0  # sorted by user
    # Anchors ascend by position (user, then time): a user's first is the first of their run.
    first_anchor = np.r_[True, au[1:] != au[:-1]] if m else np.zeros(0, bool)
    first_users = np.bincount(inv[first_anchor], minlength=n_paths).astype(np.int64)

    reached_total = 0
    if outcome_event is not None:
        last_out = np.full(n_sessions, -1, dtype=np.int64)
        op = np.flatnonzero(steps_of.holding(ue.event_code(outcome_event))[e])
        if len(op):
            ends = np.r_[sid[op][1:] != sid[op][:-1], True]
            last_out[sid[op][ends]] = op[ends]
        first_step = np.maximum(anchors - (steps - 1), session_first[a_sid]) if before \
            else anchors
        reached = last_out[a_sid] >= first_step if m else np.zeros(0, bool)
        path_out = np.bincount(inv, weights=reached, minlength=n_paths).astype(np.int64)
        reached_total = int(reached.sum())
    else:
        path_out = np.zeros(n_paths, dtype=np.int64)
    table = np.array(("",) + steps_of.labels, dtype=str)
    labels = table[np.asarray(uniq_digits, dtype=np.int64)].T.reshape(n_paths, steps) \
        if n_paths else np.zeros((0, steps), dtype=str)
    return PathsPartial(labels=labels, sessions=np.asarray(counts, dtype=np.int64),
                        users=np.asarray(path_users, dtype=np.int64), outcome=path_out,
                        anchored=m, anchored_users=total_users, reached=reached_total,
                        first_users=first_users)


@dataclass(frozen=True)
class _Steps:
    """Events as path steps: one per (user, time), coded by the set of its event names. Codes
    below ``len(names)`` are single event names; the others, sets of several (``members``:
    (set code, name code) pairs). ``labels``: per code, the JSON list of its sorted names."""

    user: np.ndarray
    time: np.ndarray
    code: np.ndarray
    names: tuple[str, ...]
    labels: tuple[str, ...]
    members: tuple[np.ndarray, np.ndarray]

    @classmethod
    def of(cls, u: np.ndarray, t: np.ndarray, e: np.ndarray, names: tuple[str, ...]) -> _Steps:
        n = len(u)
        first = np.ones(n, dtype=bool)
        if n:
            first[1:] = (u[1:] != u[:-1]) | (t[1:] != t[:-1])
        singles = tuple(json.dumps([name]) for name in names)
        none = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        if first.all():  # no two events share a time: every step is one event
            return cls(u, t, e.astype(np.int64), names, singles, none)
        moment = np.cumsum(first) - 1
        n_moments = int(moment[-1]) + 1
        code = e[first].astype(np.int64)  # right for moments of one distinct name
        # Distinct (moment, name) pairs of moments of more than one event, names ascending.
        rows = np.flatnonzero(np.bincount(moment, minlength=n_moments)[moment] > 1)
        pm, pe = moment[rows], e[rows].astype(np.int64)
        order = np.lexsort((pe, pm))
        pm, pe = pm[order], pe[order]
        distinct = np.r_[True, (pm[1:] != pm[:-1]) | (pe[1:] != pe[:-1])] if len(pm) else \
            np.zeros(0, bool)
        pm, pe = pm[distinct], pe[distinct]
        size = np.bincount(pm, minlength=n_moments)
        several = size[pm] > 1
        pm, pe = pm[several], pe[several]
        labels = singles
        members = none
        if len(pm):
            # Each set of names gets one id: refine an id by one more element at a time.
            start = np.flatnonzero(np.r_[True, pm[1:] != pm[:-1]])
            owners = pm[start]
            width = np.diff(np.r_[start, len(pm)])
            ident = np.zeros(len(start), dtype=np.int64)
            for j in range(int(width.max())):
                element = np.where(j < width, pe[np.minimum(start + j, len(pe) - 1)] + 1, 0)
                ident, _ = pd.factorize(ident * (len(names) + 1) + element)
                ident = ident.astype(np.int64)
            firsts = np.unique(ident, return_index=True)[1]
            code[owners] = len(names) + ident
            set_names = [tuple(sorted(names[c] for c in pe[start[i]:start[i] + width[i]]))
                         for i in firsts]
            labels = singles + tuple(json.dumps(list(group)) for group in set_names)
            which = np.repeat(ident, width)
            members = (len(names) + which, pe)
        return cls(u[first], t[first], code, names, labels, members)

    def holding(self, name_code: int) -> np.ndarray:
        """Per step code: does the step hold the event name ``name_code`` (-1: none)?"""
        out = np.zeros(len(self.labels), dtype=bool)
        if name_code >= 0:
            out[name_code] = True
            sets, codes = self.members
            out[sets[codes == name_code]] = True
        return out


def _display(label: str) -> tuple[str, tuple[str, ...]]:
    """A partial's step label (JSON list of names) as (shown text, names)."""
    names = tuple(json.loads(label))
    return SIMULTANEOUS.join(names), names


def paths_from_partials(parts: list[PathsPartial], options: PathsOptions, *,
                        top: int | None = 20, min_sessions: int = 30,
                        alpha: float = 0.05) -> PathsResult:
    """``paths`` from the partials of disjoint sets of users (sums of counts: exact). Among
    equal counts, paths are ordered by their steps' names (sorted), shorter first."""
    as_of_us, steps = options.as_of_us, options.steps
    start_event, end_event = options.start_event, options.end_event
    outcome_event, session_gap_minutes = options.outcome_event, options.session_gap_minutes
    before = end_event is not None
    direction = "before_end" if before else "after_start" if start_event else "session_start"
    names = sorted({str(x) for p in parts for x in np.asarray(p.labels).ravel()} - {""},
                   key=lambda label: tuple(json.loads(label)))
    shown = {label: _display(label) for label in names}
    code = {name: i + 1 for i, name in enumerate(names)}
    code[""] = 0
    totals: dict[tuple[int, ...], list[int]] = {}
    for p in parts:
        for i, row_labels in enumerate(np.asarray(p.labels).tolist()):
            key = tuple(code[str(x)] for x in row_labels)
            acc = totals.setdefault(key, [0, 0, 0, 0])
            acc[0] += int(p.sessions[i])
            acc[1] += int(p.users[i])
            acc[2] += int(p.outcome[i])
            acc[3] += int(p.first_users[i]) if p.first_users is not None else 0
    keys = sorted(totals)
    n_paths = len(keys)
    counts = np.array([totals[k][0] for k in keys], dtype=np.int64)
    path_users = np.array([totals[k][1] for k in keys], dtype=np.int64)
    path_out = np.array([totals[k][2] for k in keys], dtype=np.int64)
    path_first = np.array([totals[k][3] for k in keys], dtype=np.int64)
    m = sum(p.anchored for p in parts)
    total_users = sum(p.anchored_users for p in parts)
    overall = Rate.of(sum(p.reached for p in parts), m, alpha) \
        if outcome_event is not None else None

    def row(i: int) -> PathRow:
        labels = tuple(shown[names[x - 1]][0] for x in keys[i] if x > 0)
        events = tuple(shown[names[x - 1]][1] for x in keys[i] if x > 0)
        rate = Rate.of(int(path_out[i]), int(counts[i]), alpha) if overall is not None else None
        lift = rate.estimate / overall.estimate if rate is not None and overall.estimate \
            else None
        return PathRow(steps=labels, sessions=int(counts[i]), users=int(path_users[i]),
                       user_share=float(path_users[i] / total_users) if total_users else None,
                       session_share=float(counts[i] / m) if m else None,
                       outcome_sessions=int(path_out[i]), outcome_rate=rate, lift=lift,
                       step_events=events, first_users=int(path_first[i]))

    limit = n_paths if top is None else top
    order = np.lexsort((np.arange(n_paths), -counts, -path_users))[:limit]
    top_rows = tuple(row(int(i)) for i in order)
    reaching: tuple[PathRow, ...] = ()
    stalling: tuple[PathRow, ...] = ()
    if overall is not None and overall.estimate:
        with np.errstate(invalid="ignore", divide="ignore"):
            lift = (path_out / counts) / overall.estimate
        big = counts >= min_sessions
        up = np.flatnonzero(big & (lift > 1))
        down = np.flatnonzero(big & (lift < 1))
        up = up[np.lexsort((up, -counts[up], -lift[up]))][:limit]
        down = down[np.lexsort((down, -counts[down], lift[down]))][:limit]
        reaching = tuple(row(int(i)) for i in up)
        stalling = tuple(row(int(i)) for i in down)

    nodes, links, coverage = _sankey(
        [row(int(i)) for i in np.lexsort((np.arange(n_paths), -counts, -path_first))[:limit]
         if path_first[i] > 0], steps, before, total_users, int((path_first > 0).sum()))
    return PathsResult(
        sankey_users=coverage,
        outcome_is_end=outcome_event is not None and outcome_event == end_event,
        direction=direction, anchor=start_event if start_event is not None else end_event,
        steps=steps, session_gap_minutes=float(session_gap_minutes), outcome=outcome_event,
        as_of_us=int(as_of_us), sessions=m, users=total_users, outcome_rate=overall,
        paths=top_rows, reaching=reaching, stalling=stalling, nodes=nodes, links=links)


def _sankey(drawn: list[PathRow], steps: int, before: bool, total_users: int,
            paths_with_users: int) -> tuple[tuple[SankeyNode, ...], tuple[SankeyLink, ...],
                                            dict[str, Any]]:
    """Nodes (position, step) and links (users, summed over paths) of the drawn paths, with
    ``(end)`` / ``(session start)`` nodes where a path is shorter than ``steps``."""
    node_id: dict[tuple[int, str], int] = {}
    link_val: dict[tuple[int, int, int], int] = {}
    for p in drawn:
        offset = steps - len(p.steps) if before else 0
        names = list(p.steps)
        if len(p.steps) < steps:
            if before:
                names.insert(0, START_NODE)
                offset -= 1
            else:
                names.append(END_NODE)
        ids = [node_id.setdefault((j + offset, name), len(node_id))
               for j, name in enumerate(names)]
        for j in range(len(ids) - 1):
            k = (ids[j], ids[j + 1], j + offset)
            link_val[k] = link_val.get(k, 0) + p.first_users
    nodes = tuple(SankeyNode(i, s, name) for (s, name), i in node_id.items())
    links = tuple(SankeyLink(a, b, s, v) for (a, b, s), v in link_val.items())
    drawn_users = sum(p.first_users for p in drawn)
    coverage = {
        "drawn_users": drawn_users, "total_users": total_users,
        "share": drawn_users / total_users if total_users else None,
        "drawn_paths": len(drawn), "other_paths": paths_with_users - len(drawn),
        "other_users": total_users - drawn_users,
        "unit": "users, each on the path of their first anchored session",
    }
    return nodes, links, coverage
