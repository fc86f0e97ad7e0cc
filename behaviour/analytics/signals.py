"""High-value behaviour discovery: which early behaviours go with a later outcome. Pure.

A **candidate** is "``min_count``+ ``event`` events in the first ``window_days`` days after
signup", i.e. events with ``0 <= time - signup < window_days`` (half-open, like every window
here). The **outcome** is, per user, one of:

* ``kind="event"``: an ``event`` event with ``0 <= time - signup < days``;
* ``kind="active"``: any event with ``from_days <= time - signup < days`` (retention);
* ``kind="revenue"``: revenue > 0 with ``0 <= time - signup < days``.

**Right-censoring**: a user is analysed only when every window is fully observed at ``as_of``:
``signup + max(outcome days, largest candidate window) <= as_of``. Later signups are left out
(counted in ``censored``), never treated as "no outcome".

**Calibration / holdout**: candidates are screened on users who signed up in
``calibration = [a, b)`` and confirmed on users who signed up in ``holdout = [b, c)``
(defaults: the first two thirds / last third of the eligible signup range). On calibration every
candidate gets a 2x2 table, the outcome rate with and without the behaviour (Wilson), the lift
(risk ratio, Katz log interval), the odds ratio (Woolf log interval; Haldane's +0.5 on every
cell when one is zero), a two-sided Wald p-value on the log odds ratio, the phi coefficient,
precision (= rate with), recall and the share of users showing it. Benjamini-Hochberg
(``statsmodels`` ``fdr_bh``) controls the false discovery rate over all candidates; the
significant ones are re-estimated on the holdout, with BH again over those, and are
**confirmed** when the holdout is significant in the same direction. Ranking: confirmed first,
then significant, then by calibration phi (descending). Every result is **correlational**.

Vectorized: one pass selects the candidate events inside the largest window, a single
``np.bincount`` gives per-user counts per (event, window); loops run over candidates only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import norm
from statsmodels.stats.multitest import multipletests

from behaviour.analytics.funnels import Rate
from events.frame import US_PER_DAY, UserEvents
from segments.analytics.intervals import finite_or_none, z_value

DEFINITION = ("candidate = N+ events of a type with 0 <= time - signup < window; users without "
              "a full observation window at as_of are excluded; screened on calibration "
              "signups with Benjamini-Hochberg, confirmed on holdout signups; correlational")


@dataclass(frozen=True)
class Outcome:
    kind: str = "event"  # "event" | "active" | "revenue"
    event: str | None = "upgrade"
    days: float = 60
    from_days: float = 0  # "active" only: the window starts here

    @property
    def label(self) -> str:
        if self.kind == "event":
            return f"{self.event} within {self.days:g} days of signup"
        if self.kind == "active":
            return f"active between day {self.from_days:g} and day {self.days:g} after signup"
        return f"revenue within {self.days:g} days of signup"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "event": self.event, "days": self.days,
                "from_days": self.from_days, "label": self.label}


@dataclass(frozen=True)
class Candidate:
    event: str
    min_count: int
    window_days: float

    @property
    def label(self) -> str:
        return f"{self.min_count}+ {self.event} in the first {self.window_days:g} days"

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.event, "min_count": self.min_count,
                "window_days": self.window_days, "label": self.label}


@dataclass(frozen=True)
class Interval:
    estimate: float | None
    low: float | None
    high: float | None

    def covers(self, value: float) -> bool:
        return self.low is not None and self.high is not None and self.low <= value <= self.high

    def to_dict(self) -> dict[str, Any]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Association:
    """2x2 table of behaviour x outcome on one group of users, with its statistics."""

    users: int
    exposed_outcome: int  # a
    exposed_no_outcome: int  # b
    unexposed_outcome: int  # c
    unexposed_no_outcome: int  # d
    rate_with: Rate
    rate_without: Rate
    lift: Interval  # risk ratio
    odds_ratio: Interval
    log_odds_ratio_se: float | None
    haldane: bool  # +0.5 added to every cell (a zero cell)
    p_value: float
    phi: float | None
    precision: float | None
    recall: float | None
    share: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"users": self.users, "a": self.exposed_outcome, "b": self.exposed_no_outcome,
                "c": self.unexposed_outcome, "d": self.unexposed_no_outcome,
                "rate_with": self.rate_with.to_dict(),
                "rate_without": self.rate_without.to_dict(), "lift": self.lift.to_dict(),
                "odds_ratio": self.odds_ratio.to_dict(),
                "log_odds_ratio_se": self.log_odds_ratio_se, "haldane": self.haldane,
                "p_value": self.p_value, "phi": self.phi, "precision": self.precision,
                "recall": self.recall, "share": self.share}


@dataclass(frozen=True)
class BehaviourSignal:
    rank: int
    candidate: Candidate
    calibration: Association
    q_value: float  # BH over all candidates on calibration
    significant: bool
    holdout: Association | None  # only for candidates significant on calibration
    holdout_q_value: float | None  # BH over the significant ones, on holdout
    confirmed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "candidate": self.candidate.to_dict(),
                "calibration": self.calibration.to_dict(), "q_value": self.q_value,
                "significant": self.significant,
                "holdout": None if self.holdout is None else self.holdout.to_dict(),
                "holdout_q_value": self.holdout_q_value, "confirmed": self.confirmed}


@dataclass(frozen=True)
class DiscoveryResult:
    outcome: Outcome
    as_of_us: int
    calibration_us: tuple[int, int]
    holdout_us: tuple[int, int]
    calibration_users: int
    holdout_users: int
    censored_users: int  # in scope but without a full observation window at as_of
    alpha: float
    signals: tuple[BehaviourSignal, ...]  # ranked
    correlational: bool = True
    definition: str = ""

    def get(self, event: str, min_count: int, window_days: float) -> BehaviourSignal:
        for s in self.signals:
            c = s.candidate
            if (c.event, c.min_count, float(c.window_days)) == (event, min_count,
                                                                float(window_days)):
                return s
        raise KeyError((event, min_count, window_days))

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome.to_dict(), "as_of_us": int(self.as_of_us),
                "calibration_us": list(self.calibration_us),
                "holdout_us": list(self.holdout_us),
                "calibration_users": self.calibration_users,
                "holdout_users": self.holdout_users, "censored_users": self.censored_users,
                "alpha": self.alpha, "correlational": self.correlational,
                "signals": [s.to_dict() for s in self.signals]}


# ----------------------------------------------------------------------------- statistics
_NO_INTERVAL = Interval(None, None, None)


def _exp_interval(log_value: float, se: float, z: float) -> Interval:
    """A ratio from its log and the log's standard error: exp of the estimate and of its normal
    interval (None where not finite)."""
    return Interval(finite_or_none(math.exp(log_value)),
                    finite_or_none(math.exp(log_value - z * se)),
                    finite_or_none(math.exp(log_value + z * se)))


def association(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray,
                alpha: float = 0.05) -> list[Association]:
    """Statistics of 2x2 tables (vectorized over tables)."""
    a, b, c, d = (np.asarray(x, dtype=np.float64) for x in (a, b, c, d))
    z = z_value(alpha)
    n = a + b + c + d
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    ah, bh, ch, dh = (np.where(zero, x + 0.5, x) for x in (a, b, c, d))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_or = np.log(ah * dh / (bh * ch))
        se = np.sqrt(1 / ah + 1 / bh + 1 / ch + 1 / dh)
        p = 2 * norm.sf(np.abs(log_or) / se)
        r1, r0 = ah / (ah + bh), ch / (ch + dh)
        log_rr = np.log(r1 / r0)
        se_rr = np.sqrt(1 / ah - 1 / (ah + bh) + 1 / ch - 1 / (ch + dh))
        phi = (a * d - b * c) / np.sqrt((a + b) * (c + d) * (a + c) * (b + d))
        rate1, rate0 = a / (a + b), c / (c + d)
        recall = a / (a + c)
        share = (a + b) / n
    degenerate = (a + b == 0) | (c + d == 0) | (a + c == 0) | (b + d == 0)
    p = np.where(degenerate | ~np.isfinite(p), 1.0, p)
    out = []
    for i in range(len(a)):
        ok = not degenerate[i]
        out.append(Association(
            users=int(n[i]), exposed_outcome=int(a[i]), exposed_no_outcome=int(b[i]),
            unexposed_outcome=int(c[i]), unexposed_no_outcome=int(d[i]),
            rate_with=Rate.of(int(a[i]), int(a[i] + b[i]), alpha),
            rate_without=Rate.of(int(c[i]), int(c[i] + d[i]), alpha),
            lift=_exp_interval(log_rr[i], se_rr[i], z) if ok else _NO_INTERVAL,
            odds_ratio=_exp_interval(log_or[i], se[i], z) if ok else _NO_INTERVAL,
            log_odds_ratio_se=finite_or_none(se[i]) if ok else None, haldane=bool(zero[i]),
            p_value=float(p[i]), phi=finite_or_none(phi[i]), precision=finite_or_none(rate1[i]),
            recall=finite_or_none(recall[i]), share=finite_or_none(share[i])))
    del rate0
    return out


# ----------------------------------------------------------------------------- per-user data
def early_counts(ue: UserEvents, events: Sequence[str], windows_days: Sequence[float],
                 rows: np.ndarray) -> np.ndarray:
    """Counts (len(rows), len(events), len(windows)) of each event with
    ``0 <= time - signup < window`` for the users ``rows`` (user codes). Windows ascending."""
    windows = np.asarray([int(round(w * US_PER_DAY)) for w in windows_days], dtype=np.int64)
    if (np.diff(windows) <= 0).any():
        raise ValueError("windows must be strictly increasing")
    m, n_ev, n_w = len(rows), len(events), len(windows)
    col = np.full(len(ue.event_names) + 1, -1, dtype=np.int16)
    for j, name in enumerate(events):
        code = ue.event_code(name)
        if code >= 0:
            col[code] = j
    row_of = np.full(ue.n_users, -1, dtype=np.int64)
    row_of[rows] = np.arange(m)
    pos = np.flatnonzero(col[ue.event] >= 0)
    u = ue.user[pos]
    r = row_of[u]
    dt = ue.time[pos] - ue.signup[u]
    keep = (r >= 0) & (dt >= 0) & (dt < windows[-1])
    pos, r, dt = pos[keep], r[keep], dt[keep]
    wi = np.searchsorted(windows, dt, side="right")  # smallest window that holds the event
    key = (r * n_ev + col[ue.event[pos]].astype(np.int64)) * n_w + wi
    counts = np.bincount(key, minlength=m * n_ev * n_w).reshape(m, n_ev, n_w)
    return np.cumsum(counts, axis=2, dtype=np.int32)


def outcome_flags(ue: UserEvents, outcome: Outcome, rows: np.ndarray) -> np.ndarray:
    """Per user in ``rows``: did the outcome happen in its window after signup."""
    lo = int(round((outcome.from_days if outcome.kind == "active" else 0) * US_PER_DAY))
    hi = int(round(outcome.days * US_PER_DAY))
    if outcome.kind == "event":
        code = ue.event_code(outcome.event or "")
        pos = np.flatnonzero(ue.event == code) if code >= 0 else np.zeros(0, np.int64)
    elif outcome.kind == "revenue":
        pos = np.flatnonzero(ue.revenue > 0)
    elif outcome.kind == "active":
        pos = None
    else:
        raise ValueError("outcome kind must be 'event', 'active' or 'revenue'")
    if pos is None:
        u = ue.user
        dt = ue.time - ue.signup[u]
    else:
        u = ue.user[pos]
        dt = ue.time[pos] - ue.signup[u]
    hit = np.zeros(ue.n_users, dtype=bool)
    hit[u[(dt >= lo) & (dt < hi)]] = True
    return hit[rows]


def behaviour_mask(ue: UserEvents, candidate: Candidate,
                   users: np.ndarray | None = None) -> np.ndarray:
    """Users (boolean mask over user codes) showing a behaviour: to save it as a segment."""
    rows = np.arange(ue.n_users) if users is None else np.flatnonzero(users)
    counts = early_counts(ue, [candidate.event], [candidate.window_days], rows)[:, 0, 0]
    mask = np.zeros(ue.n_users, dtype=bool)
    mask[rows] = counts >= candidate.min_count
    return mask


def candidates_grid(events: Sequence[str], thresholds: Sequence[int] = (1, 2, 3, 5),
                    windows_days: Sequence[float] = (1, 3, 7, 14)) -> list[Candidate]:
    return [Candidate(e, int(k), float(w)) for e in events for k in thresholds
            for w in windows_days]


# ----------------------------------------------------------------------------- discovery
def discover(
    ue: UserEvents,
    *,
    as_of_us: int,
    outcome: Outcome | None = None,
    candidates: Sequence[Candidate] | None = None,
    users: np.ndarray | None = None,
    calibration_us: tuple[int, int] | None = None,
    holdout_us: tuple[int, int] | None = None,
    alpha: float = 0.05,
) -> DiscoveryResult:
    """Screen candidate behaviours on calibration signups, confirm on holdout signups.

    ``outcome`` defaults to an "upgrade" event within 60 days; ``candidates`` to every event
    (but signup and the outcome) x thresholds 1/2/3/5 x windows 1/3/7/14 days; ``users`` is a
    boolean scope mask.
    """
    outcome = outcome or Outcome()
    if candidates is None:
        skip = {"signup", outcome.event}
        candidates = candidates_grid([e for e in ue.event_names if e not in skip])
    candidates = list(candidates)
    if not candidates:
        raise ValueError("no candidate behaviours")
    rows = discovery_rows(ue, as_of_us=as_of_us, outcome=outcome, candidates=candidates,
                          users=users)
    return discover_from_rows([rows], as_of_us=as_of_us, outcome=outcome,
                              candidates=candidates, calibration_us=calibration_us,
                              holdout_us=holdout_us, alpha=alpha)


@dataclass
class DiscoveryRows:
    """Per eligible user (a full observation window after signup, in scope), in user order:
    signup, the early counts (users, events, windows) and the outcome; and how many users in
    scope were censored. Rows of disjoint users (user-hash partitions) concatenate."""

    signup: np.ndarray
    counts: np.ndarray
    y: np.ndarray
    censored: int


def _grid_axes(candidates: Sequence[Candidate]) -> tuple[list[str], list[float]]:
    return (sorted({c.event for c in candidates}),
            sorted({float(c.window_days) for c in candidates}))


def discovery_rows(ue: UserEvents, *, as_of_us: int, outcome: Outcome,
                   candidates: Sequence[Candidate],
                   users: np.ndarray | None = None) -> DiscoveryRows:
    """The per-user stage of ``discover``."""
    events, windows = _grid_axes(candidates)
    horizon = int(round(max(outcome.days, windows[-1]) * US_PER_DAY))
    signup = ue.signup
    scope = signup <= as_of_us
    if users is not None:
        scope &= np.asarray(users, dtype=bool)
    eligible = scope & (signup + horizon <= as_of_us)
    censored = int((scope & ~eligible).sum())
    rows = np.flatnonzero(eligible)
    return DiscoveryRows(signup=signup[rows].astype(np.int64),
                         counts=early_counts(ue, events, windows, rows),
                         y=outcome_flags(ue, outcome, rows), censored=censored)


def discover_from_rows(
    parts: Sequence[DiscoveryRows],
    *,
    as_of_us: int,
    outcome: Outcome,
    candidates: Sequence[Candidate],
    calibration_us: tuple[int, int] | None = None,
    holdout_us: tuple[int, int] | None = None,
    alpha: float = 0.05,
) -> DiscoveryResult:
    """``discover`` from its per-user stage (the 2 x 2 tables are counts: exact sums)."""
    candidates = list(candidates)
    events, windows = _grid_axes(candidates)
    parts = list(parts)
    signup = np.concatenate([p.signup for p in parts]) if parts else np.zeros(0, np.int64)
    all_counts = np.concatenate([p.counts for p in parts]) if parts else \
        np.zeros((0, len(events), len(windows)), np.int32)
    all_y = np.concatenate([p.y for p in parts]) if parts else np.zeros(0, bool)
    censored = sum(p.censored for p in parts)
    if calibration_us is None or holdout_us is None:
        s = np.sort(signup)
        if len(s) < 3:
            raise ValueError("too few users with a full observation window")
        cut = int(s[(2 * len(s)) // 3])
        calibration_us = calibration_us or (int(s[0]), cut)
        holdout_us = holdout_us or (cut, int(s[-1]) + 1)
    cal = np.flatnonzero((signup >= calibration_us[0]) & (signup < calibration_us[1]))
    hold = np.flatnonzero((signup >= holdout_us[0]) & (signup < holdout_us[1]))
    rows = np.r_[cal, hold]
    counts = all_counts[rows]
    y = all_y[rows]
    is_cal = np.zeros(len(rows), dtype=bool)
    is_cal[: len(cal)] = True

    def tables(group: np.ndarray, which: list[int]) -> tuple[np.ndarray, ...]:
        yg = y[group]
        sub = counts[group]
        n_y, n_g = int(yg.sum()), int(group.sum())
        a = np.zeros(len(which), dtype=np.int64)
        b = np.zeros(len(which), dtype=np.int64)
        for i, j in enumerate(which):
            c = candidates[j]
            x = sub[:, events.index(c.event), windows.index(float(c.window_days))] \
                >= c.min_count
            a[i] = np.count_nonzero(x & yg)
            b[i] = np.count_nonzero(x) - a[i]
        return a, b, n_y - a, (n_g - n_y) - b

    all_idx = list(range(len(candidates)))
    cal_assoc = association(*tables(is_cal, all_idx), alpha=alpha)
    p = np.array([s.p_value for s in cal_assoc])
    reject, q, _, _ = multipletests(p, alpha=alpha, method="fdr_bh")
    sig = [j for j in all_idx if reject[j]]
    hold_assoc: dict[int, Association] = {}
    hold_q: dict[int, float] = {}
    confirmed: dict[int, bool] = {}
    if sig and len(hold):
        ha = association(*tables(~is_cal, sig), alpha=alpha)
        hp = np.array([s.p_value for s in ha])
        h_reject, h_q, _, _ = multipletests(hp, alpha=alpha, method="fdr_bh")
        for i, j in enumerate(sig):
            hold_assoc[j], hold_q[j] = ha[i], float(h_q[i])
            same = (ha[i].phi or 0) * (cal_assoc[j].phi or 0) > 0
            confirmed[j] = bool(h_reject[i]) and same
    order = sorted(all_idx, key=lambda j: (not confirmed.get(j, False), not reject[j],
                                           -(cal_assoc[j].phi or 0.0), j))
    signals = tuple(BehaviourSignal(
        rank=r + 1, candidate=candidates[j], calibration=cal_assoc[j], q_value=float(q[j]),
        significant=bool(reject[j]), holdout=hold_assoc.get(j), holdout_q_value=hold_q.get(j),
        confirmed=confirmed.get(j, False)) for r, j in enumerate(order))
    return DiscoveryResult(
        outcome=outcome, as_of_us=int(as_of_us),
        calibration_us=(int(calibration_us[0]), int(calibration_us[1])),
        holdout_us=(int(holdout_us[0]), int(holdout_us[1])), calibration_users=len(cal),
        holdout_users=len(hold), censored_users=censored, alpha=alpha, signals=signals,
        definition=DEFINITION)
