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
``calibration = [a, b)`` and confirmed on users who signed up in ``holdout = [b, c)``.
Default split, by whole UTC signup days: the holdout starts at midnight of the signup day of
the user two thirds of the way through the eligible signups (the ``2n // 3``-th, 0-based), or
of the next day when that is the first signup day; so about the last third of the signups,
split between days. Whole days let a partition count its own users per signup day and the
merge of partitions (``DiscoveryPartial``) give exactly the single process's tables. On
calibration every
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
from collections.abc import Iterable, Sequence
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
    split = None if calibration_us is None or holdout_us is None \
        else (calibration_us, holdout_us)
    part = discovery_partial(ue, as_of_us=as_of_us, outcome=outcome, candidates=candidates,
                             users=users, split=split)
    return discover_from_partials([part], as_of_us=as_of_us, outcome=outcome,
                                  candidates=candidates, split=split, alpha=alpha)


@dataclass
class DiscoveryPartial:
    """What ``discover`` needs from a group of users (a user-hash partition: users are
    independent), as counts whose size depends on the candidates and the signup days, never
    on the users. Per *slot* (the UTC signup day, days since 1970-01-01; or, with explicit
    bounds, 0 = calibration and 1 = holdout) of the users with a full observation window:
    users, users with the outcome, and per candidate the users showing it and of those the
    ones with the outcome. Also the users censored, and the earliest and latest signup."""

    slots: np.ndarray  # (s,) int64, ascending
    n: np.ndarray  # (s,)
    n_y: np.ndarray  # (s,)
    exposed: np.ndarray  # (s, candidates)
    exposed_y: np.ndarray  # (s, candidates)
    censored: int
    signup_min: int
    signup_max: int

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"slots": self.slots, "n": self.n, "n_y": self.n_y, "exposed": self.exposed,
                "exposed_y": self.exposed_y,
                "totals": np.array([self.censored, self.signup_min, self.signup_max], np.int64)}

    @classmethod
    def from_arrays(cls, arrays: Any) -> DiscoveryPartial:
        censored, low, high = (int(x) for x in arrays["totals"])
        return cls(*(np.asarray(arrays[k], np.int64) for k in ("slots", "n", "n_y", "exposed",
                                                               "exposed_y")),
                   censored=censored, signup_min=low, signup_max=high)

    def merge(self, other: DiscoveryPartial) -> DiscoveryPartial:
        slots = np.union1d(self.slots, other.slots)
        out = []
        for key in ("n", "n_y", "exposed", "exposed_y"):
            total = np.zeros((len(slots),) + getattr(self, key).shape[1:], np.int64)
            for part in (self, other):
                total[np.searchsorted(slots, part.slots)] += getattr(part, key)
            out.append(total)
        return DiscoveryPartial(slots, *out, censored=self.censored + other.censored,
                                signup_min=min(self.signup_min, other.signup_min),
                                signup_max=max(self.signup_max, other.signup_max))


def _grid_axes(candidates: Sequence[Candidate]) -> tuple[list[str], list[float]]:
    return (sorted({c.event for c in candidates}),
            sorted({float(c.window_days) for c in candidates}))


_NO_SIGNUP = (np.iinfo(np.int64).max, np.iinfo(np.int64).min)


def discovery_partial(ue: UserEvents, *, as_of_us: int, outcome: Outcome,
                      candidates: Sequence[Candidate], users: np.ndarray | None = None,
                      split: tuple[tuple[int, int], tuple[int, int]] | None = None,
                      ) -> DiscoveryPartial:
    """The counts of ``discover`` for the users of ``ue`` (see ``DiscoveryPartial``)."""
    candidates = list(candidates)
    events, windows = _grid_axes(candidates)
    horizon = int(round(max(outcome.days, windows[-1]) * US_PER_DAY))
    signup = ue.signup
    scope = signup <= as_of_us
    if users is not None:
        scope &= np.asarray(users, dtype=bool)
    eligible = scope & (signup + horizon <= as_of_us)
    censored = int((scope & ~eligible).sum())
    rows = np.flatnonzero(eligible)
    s = signup[rows].astype(np.int64)
    low, high = (int(s.min()), int(s.max())) if len(s) else _NO_SIGNUP
    if split is None:
        slot = np.floor_divide(s, US_PER_DAY)
    else:  # 0: calibration, 1: holdout, -1: neither (a user in both counts in calibration)
        (c0, c1), (h0, h1) = split
        slot = np.where((s >= c0) & (s < c1), 0, np.where((s >= h0) & (s < h1), 1, -1))
        keep = slot >= 0
        rows, slot = rows[keep], slot[keep]
    slots, inverse = np.unique(slot, return_inverse=True)
    k = len(slots)
    counts = early_counts(ue, events, windows, rows)
    y = outcome_flags(ue, outcome, rows)
    exposed = np.zeros((k, len(candidates)), np.int64)
    exposed_y = np.zeros((k, len(candidates)), np.int64)
    for j, c in enumerate(candidates):
        x = counts[:, events.index(c.event), windows.index(float(c.window_days))] >= c.min_count
        exposed[:, j] = np.bincount(inverse[x], minlength=k)
        exposed_y[:, j] = np.bincount(inverse[x & y], minlength=k)
    return DiscoveryPartial(slots.astype(np.int64), np.bincount(inverse, minlength=k),
                            np.bincount(inverse[y], minlength=k), exposed, exposed_y,
                            censored=censored, signup_min=low, signup_max=high)


def default_split(slots: np.ndarray, n: np.ndarray) -> int:
    """The first holdout signup day: the day of the user two thirds of the way through the
    eligible signups (the ``2n // 3``-th, 0-based, by signup time), or the day after when that
    is the first day (a calibration needs a day of its own)."""
    total = int(n.sum())
    if total < 3:
        raise ValueError("too few users with a full observation window")
    day = int(slots[int(np.searchsorted(np.cumsum(n), (2 * total) // 3, side="right"))])
    return day + 1 if day == int(slots[0]) else day


def discover_from_partials(
    parts: Iterable[DiscoveryPartial],
    *,
    as_of_us: int,
    outcome: Outcome,
    candidates: Sequence[Candidate],
    split: tuple[tuple[int, int], tuple[int, int]] | None = None,
    alpha: float = 0.05,
) -> DiscoveryResult:
    """``discover`` from the partitions' counts (the 2 x 2 tables are sums: exact).
    ``split``: the explicit (calibration, holdout) bounds the partials were made with."""
    candidates = list(candidates)
    acc: DiscoveryPartial | None = None
    for part in parts:
        acc = part if acc is None else acc.merge(part)
    if acc is None:
        raise ValueError("no partitions to merge")
    if split is None:
        cut_day = default_split(acc.slots, acc.n)
        cut = cut_day * US_PER_DAY
        calibration_us = (acc.signup_min, cut)
        holdout_us = (cut, max(cut, acc.signup_max + 1))
        is_cal = acc.slots < cut_day
    else:
        calibration_us, holdout_us = split
        is_cal = acc.slots == 0

    def tables(group: np.ndarray, which: list[int]) -> tuple[np.ndarray, ...]:
        n_g, n_y = int(acc.n[group].sum()), int(acc.n_y[group].sum())
        a = acc.exposed_y[group][:, which].sum(axis=0).astype(np.int64)
        b = acc.exposed[group][:, which].sum(axis=0).astype(np.int64) - a
        return a, b, n_y - a, (n_g - n_y) - b

    cal_users, hold_users = int(acc.n[is_cal].sum()), int(acc.n[~is_cal].sum())
    all_idx = list(range(len(candidates)))
    cal_assoc = association(*tables(is_cal, all_idx), alpha=alpha)
    p = np.array([s.p_value for s in cal_assoc])
    reject, q, _, _ = multipletests(p, alpha=alpha, method="fdr_bh")
    sig = [j for j in all_idx if reject[j]]
    hold_assoc: dict[int, Association] = {}
    hold_q: dict[int, float] = {}
    confirmed: dict[int, bool] = {}
    if sig and hold_users:
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
        holdout_us=(int(holdout_us[0]), int(holdout_us[1])), calibration_users=cal_users,
        holdout_users=hold_users, censored_users=acc.censored, alpha=alpha, signals=signals,
        definition=DEFINITION)
