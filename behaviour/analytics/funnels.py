"""Conversion funnels on ``UserEvents``. Pure (no Django), vectorized over attempts.

Semantics (follows PostHog's documented funnel rules; every choice below is tested against a
plain-Python per-user reference in ``tests/behaviour/test_funnels.py``):

* **Event order.** A user's events are taken in the stored order of ``UserEvents`` (time, then
  the stored tie order). "After" means later in that order; an event fills at most one step.
  Events with ``time > as_of_us`` and users outside ``users`` are ignored.
* **Attempts.** Every event matching step 1 starts an attempt (so a new step-1 event starts a
  new attempt; attempts may overlap). The window is measured from the attempt's step-1 event
  and is inclusive: a step counts if ``time - t_step1 <= window_days``.
* **ordered**: step k+1 is the first step-(k+1) event after step k's event (greedy earliest
  matching, which reaches as far as any other matching); other events may come between.
* **strict**: step k+1 must be the very next event of the user after step k's event (any other
  event in between, of any name, breaks the attempt there).
* **any_order**: every event that matches any step starts an attempt; a step is completed if
  one of its events lies at or after the start event and within the window; the attempt
  reaches k steps when k distinct steps are completed. Step event sets must be disjoint.
  Step k's time is the k-th earliest completion.
* **Exclusions.** An attempt is invalid if an exclusion event lies strictly between its step-1
  (start) event and the event of the furthest step it reached (nothing to check when it only
  reached step 1). Invalid attempts count as nothing; a user whose attempts are all invalid is
  ``excluded`` (reported apart, not in any step).
* **Per user** the furthest step over valid attempts counts; time to convert is read from the
  user's first attempt that reaches that furthest step.
* **Still in window**: an entered, not excluded user who did not reach the last step and whose
  latest step-1 event is within the window of ``as_of`` (``as_of - t <= window``). They count in
  ``users`` of the steps they reached, but at their furthest step they are reported as
  ``in_window`` instead of ``dropped``.
* Conversion from the previous step and from step 1 with Wilson score intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from events.frame import US_PER_DAY, UserEvents
from segments.analytics.intervals import finite_or_none, wilson

MODES = ("ordered", "strict", "any_order")
US_PER_S = 1_000_000
# Time-to-convert histogram edges in seconds (cut at the window, whose length closes the last bin).
HIST_EDGES_S = (0, 60, 300, 900, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400,
                3 * 86400, 7 * 86400, 14 * 86400, 30 * 86400, 60 * 86400, 90 * 86400)


@dataclass(frozen=True)
class Rate:
    """A proportion numerator / denominator with its Wilson interval."""

    estimate: float | None
    low: float | None
    high: float | None
    numerator: int
    denominator: int

    @classmethod
    def of(cls, k: int, n: int, alpha: float = 0.05) -> Rate:
        p, lo, hi = wilson(k, n, alpha)
        return cls(finite_or_none(p) if n else None, finite_or_none(lo), finite_or_none(hi),
                   int(k), int(n))

    def to_dict(self) -> dict[str, Any]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high,
                "numerator": self.numerator, "denominator": self.denominator}


@dataclass(frozen=True)
class StepSpec:
    """A funnel step: one event name or several (any of them counts)."""

    event: str | tuple[str, ...]
    label: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.event,) if isinstance(self.event, str) else tuple(self.event)

    @property
    def display(self) -> str:
        return self.label or " | ".join(self.names)


@dataclass(frozen=True)
class TimeToConvert:
    """Seconds from the previous step (and from step 1) for users who reached this step."""

    n: int
    median_seconds: float | None
    mean_seconds: float | None
    median_from_start_seconds: float | None
    histogram_edges_seconds: tuple[float, ...]
    histogram_counts: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "median_seconds": self.median_seconds,
                "mean_seconds": self.mean_seconds,
                "median_from_start_seconds": self.median_from_start_seconds,
                "histogram_edges_seconds": list(self.histogram_edges_seconds),
                "histogram_counts": list(self.histogram_counts)}


@dataclass(frozen=True)
class FunnelStep:
    index: int  # 1-based
    label: str
    users: int  # reached this step (in-window users included)
    conversion_from_previous: Rate
    conversion_from_start: Rate
    dropped: int  # furthest step is this one and no longer inside the window
    in_window: int  # furthest step is this one and still inside the window at as_of
    time_to_convert: TimeToConvert | None  # None for step 1

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "label": self.label, "users": self.users,
                "conversion_from_previous": self.conversion_from_previous.to_dict(),
                "conversion_from_start": self.conversion_from_start.to_dict(),
                "dropped": self.dropped, "in_window": self.in_window,
                "time_to_convert": None if self.time_to_convert is None
                else self.time_to_convert.to_dict()}


@dataclass(frozen=True)
class FunnelSeries:
    """The funnel for one group of users (everyone, or one breakdown value)."""

    label: str
    entered: int
    excluded: int
    in_window: int
    steps: tuple[FunnelStep, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "entered": self.entered, "excluded": self.excluded,
                "in_window": self.in_window, "steps": [s.to_dict() for s in self.steps]}


@dataclass(frozen=True)
class FunnelResult:
    steps: tuple[str, ...]
    mode: str
    window_days: float
    exclusions: tuple[str, ...]
    as_of_us: int
    alpha: float
    overall: FunnelSeries
    breakdown: tuple[FunnelSeries, ...]
    definition: str
    # Per user (index = user code): furthest step reached (0 = never entered or excluded),
    # still inside the window, every attempt excluded. Not part of to_dict().
    furthest: np.ndarray = field(repr=False, compare=False)
    in_window_users: np.ndarray = field(repr=False, compare=False)
    excluded_users: np.ndarray = field(repr=False, compare=False)

    def dropoff_mask(self, step: int, include_in_window: bool = False) -> np.ndarray:
        """Users who reached ``step`` (1-based) but not the next one: a segment mask. Users
        still inside their window are left out unless ``include_in_window``."""
        if not 1 <= step < len(self.steps):
            raise ValueError(f"step must be in 1..{len(self.steps) - 1}")
        mask = self.furthest == step
        return mask if include_in_window else mask & ~self.in_window_users

    def reached_mask(self, step: int) -> np.ndarray:
        return self.furthest >= step

    def to_dict(self) -> dict[str, Any]:
        return {"steps": list(self.steps), "mode": self.mode, "window_days": self.window_days,
                "exclusions": list(self.exclusions), "as_of_us": int(self.as_of_us),
                "alpha": self.alpha, "definition": self.definition,
                "overall": self.overall.to_dict(),
                "breakdown": [s.to_dict() for s in self.breakdown]}


DEFINITION = {
    "ordered": "each step is the first event of that step after the previous step's event; "
               "window from the step-1 event, inclusive; furthest step over attempts counts",
    "strict": "each step is the very next event after the previous step's event; window from "
              "the step-1 event, inclusive; furthest step over attempts counts",
    "any_order": "distinct steps completed at or after an attempt's first step event within the "
                 "window, inclusive; furthest count over attempts counts",
}


# ----------------------------------------------------------------------------- core
def _lut(ue: UserEvents, names: Sequence[str]) -> np.ndarray:
    lut = np.zeros(len(ue.event_names) + 1, dtype=bool)
    for name in names:
        code = ue.event_code(name)
        if code >= 0:
            lut[code] = True
    return lut


def _positions(ue: UserEvents, lut: np.ndarray, users: np.ndarray | None,
               as_of_us: int) -> np.ndarray:
    codes = np.flatnonzero(lut[:-1])
    if len(codes) == 0:
        return np.zeros(0, np.int64)
    mask = ue.event == codes[0] if len(codes) == 1 else lut[ue.event]
    pos = np.flatnonzero(mask)
    keep = ue.time[pos] <= as_of_us
    if users is not None:
        keep &= users[ue.user[pos]]
    return pos[keep]


def _attempts(ue: UserEvents, luts: list[np.ndarray], mode: str, window_us: int,
              users: np.ndarray | None, as_of_us: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per attempt: start position, steps reached, step times (K, m; -1 where not reached)
    and the position of the furthest matched event."""
    k_steps = len(luts)
    time, user = ue.time, ue.user
    if mode == "any_order":
        union = np.zeros_like(luts[0])
        for lut in luts:
            union |= lut
        starts = _positions(ue, union, users, as_of_us)
        m = len(starts)
        t0, u0 = time[starts], user[starts]
        times = np.full((k_steps, m), np.iinfo(np.int64).max, dtype=np.int64)
        last = starts.copy()
        for k, lut in enumerate(luts):
            pk = _positions(ue, lut, users, as_of_us)
            if len(pk) == 0:
                continue
            j = np.searchsorted(pk, starts, side="left")
            cand = pk[np.minimum(j, len(pk) - 1)]
            ok = (j < len(pk)) & (user[cand] == u0) & (time[cand] - t0 <= window_us)
            times[k, ok] = time[cand[ok]]
            last = np.where(ok, np.maximum(last, cand), last)
        reached = (times != np.iinfo(np.int64).max).sum(axis=0).astype(np.int16)
        times.sort(axis=0)
        times[times == np.iinfo(np.int64).max] = -1
        return starts, reached, times, last
    starts = _positions(ue, luts[0], users, as_of_us)
    m = len(starts)
    t0, u0 = time[starts], user[starts]
    times = np.full((k_steps, m), -1, dtype=np.int64)
    times[0] = t0
    reached = np.ones(m, dtype=np.int16)
    last = starts.copy()
    idx = np.arange(m)  # attempts still alive
    cur = starts.copy()
    n_events = len(time)
    for k in range(1, k_steps):
        if len(idx) == 0:
            break
        if mode == "strict":
            cand = cur + 1
            inside = cand < n_events
            cand_c = np.minimum(cand, n_events - 1)
            ok = inside & luts[k][ue.event[cand_c]] & (user[cand_c] == u0[idx]) \
                & (time[cand_c] <= as_of_us) & (time[cand_c] - t0[idx] <= window_us)
            cand = cand_c
        else:
            pk = _positions(ue, luts[k], users, as_of_us)
            if len(pk) == 0:
                break
            j = np.searchsorted(pk, cur, side="right")
            cand = pk[np.minimum(j, len(pk) - 1)]
            ok = (j < len(pk)) & (user[cand] == u0[idx]) & (time[cand] - t0[idx] <= window_us)
        idx, cur = idx[ok], cand[ok]
        reached[idx] += 1
        times[k, idx] = time[cur]
        last[idx] = cur
    return starts, reached, times, last


def funnel(
    ue: UserEvents,
    steps: Sequence[StepSpec | str],
    *,
    as_of_us: int,
    window_days: float = 14,
    mode: str = "ordered",
    exclusions: Sequence[str] = (),
    users: np.ndarray | None = None,
    breakdown: np.ndarray | pd.Series | None = None,
    alpha: float = 0.05,
) -> FunnelResult:
    """Funnel over ``steps`` (2..20); see the module docstring for the exact semantics.

    ``users``: boolean mask over user codes (the scope, e.g. a segment). ``breakdown``: one
    label per user code (NaN/None -> "(none)"); one extra series per label.
    """
    options = FunnelOptions(as_of_us=as_of_us, window_days=window_days, mode=mode,
                            exclusions=exclusions)
    return funnel_from_users(funnel_users(ue, steps, options, users=users), steps, options,
                             users=users, breakdown=breakdown, alpha=alpha)


@dataclass(frozen=True)
class FunnelOptions:
    """How ``funnel`` counts, which its per-user stage and its totals must agree on."""

    as_of_us: int
    window_days: float = 14
    mode: str = "ordered"
    exclusions: Sequence[str] = ()


@dataclass
class FunnelUsers:
    """The per-user stage of a funnel (index = user code): furthest step, still in the window,
    every attempt excluded, and the time of each step of the counted attempt (k x n, -1 when
    not reached). Users of different user-hash partitions are independent: the funnels of
    partitions are the rows of the whole, concatenated in user order."""

    furthest: np.ndarray
    in_window: np.ndarray
    excluded: np.ndarray
    step_times: np.ndarray


def funnel_users(ue: UserEvents, steps: Sequence[StepSpec | str], options: FunnelOptions, *,
                 users: np.ndarray | None = None) -> FunnelUsers:
    """The per-user stage of ``funnel``."""
    as_of_us, window_days, mode = options.as_of_us, options.window_days, options.mode
    exclusions = options.exclusions
    specs = [s if isinstance(s, StepSpec) else StepSpec(str(s)) for s in steps]
    if not 2 <= len(specs) <= 20:
        raise ValueError("a funnel needs 2 to 20 steps")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    if window_days <= 0:
        raise ValueError("window_days must be positive")
    if users is not None:
        users = np.asarray(users, dtype=bool)
        if users.shape != (ue.n_users,):
            raise ValueError("users must be a boolean mask with one entry per user")
    luts = [_lut(ue, s.names) for s in specs]
    if mode == "any_order":
        total = np.sum([lut.astype(np.int8) for lut in luts], axis=0)
        if (total > 1).any():
            raise ValueError("any_order funnels need steps with disjoint events")
    ex_lut = _lut(ue, list(exclusions))
    step_names = {n for s in specs for n in s.names}
    if step_names & set(exclusions):
        raise ValueError("an exclusion event cannot also be a step")
    window_us = int(round(window_days * US_PER_DAY))
    k_steps = len(specs)
    n = ue.n_users

    starts, reached, times, last = _attempts(ue, luts, mode, window_us, users, as_of_us)
    if len(exclusions) and len(starts):
        pex = _positions(ue, ex_lut, users, as_of_us)
        between = np.searchsorted(pex, last, side="left") - np.searchsorted(pex, starts,
                                                                            side="right")
        reached = np.where(between > 0, 0, reached).astype(np.int16)

    furthest = np.zeros(n, dtype=np.int16)
    in_window = np.zeros(n, dtype=bool)
    excluded = np.zeros(n, dtype=bool)
    step_times = np.full((k_steps, n), -1, dtype=np.int64)
    if len(starts):
        u0 = ue.user[starts]
        bounds = np.flatnonzero(np.r_[True, u0[1:] != u0[:-1]])
        lengths = np.diff(np.r_[bounds, len(u0)])
        who = u0[bounds]
        best = np.maximum.reduceat(reached, bounds)
        furthest[who] = best
        excluded[who] = best == 0
        latest = ue.time[starts[bounds + lengths - 1]]
        in_window[who] = (best > 0) & (best < k_steps) & (as_of_us - latest <= window_us)
        # The user's first attempt that reaches the best: first marked attempt in each run.
        marked = np.flatnonzero(reached == np.repeat(best, lengths))
        run = np.repeat(np.arange(len(bounds)), lengths)[marked]
        first = marked[np.r_[True, run[1:] != run[:-1]]]
        step_times[:, ue.user[starts[first]]] = times[:, first]
    return FunnelUsers(furthest, in_window, excluded, step_times)


def funnel_from_users(per_user: FunnelUsers, steps: Sequence[StepSpec | str],
                      options: FunnelOptions, *, users: np.ndarray | None = None,
                      breakdown: np.ndarray | pd.Series | None = None,
                      alpha: float = 0.05) -> FunnelResult:
    """``funnel`` from its per-user stage (``funnel_users``)."""
    specs = [s if isinstance(s, StepSpec) else StepSpec(str(s)) for s in steps]
    furthest, in_window = per_user.furthest, per_user.in_window
    excluded, step_times = per_user.excluded, per_user.step_times
    n = len(furthest)
    window_us = int(round(options.window_days * US_PER_DAY))
    if users is not None:
        users = np.asarray(users, dtype=bool)
    labels = [s.display for s in specs]
    overall = _series("all", furthest, in_window, excluded, step_times, labels, alpha,
                      window_us, None)
    series: list[FunnelSeries] = []
    if breakdown is not None:
        values = pd.Series(np.asarray(breakdown, dtype=object)).where(
            pd.notna(pd.Series(np.asarray(breakdown, dtype=object))), "(none)").astype(str)
        if len(values) != n:
            raise ValueError("breakdown needs one label per user")
        codes, uniques = pd.factorize(values, sort=True)
        entered = (furthest > 0) | excluded
        for c, label in enumerate(uniques):
            group = (codes == c) & entered
            if users is not None:
                group &= users
            if group.any():
                series.append(_series(str(label), furthest, in_window, excluded, step_times,
                                      labels, alpha, window_us, group))
    return FunnelResult(
        steps=tuple(labels), mode=options.mode, window_days=float(options.window_days),
        exclusions=tuple(options.exclusions), as_of_us=int(options.as_of_us), alpha=alpha,
        overall=overall, breakdown=tuple(series), definition=DEFINITION[options.mode],
        furthest=furthest, in_window_users=in_window, excluded_users=excluded)


def _time_stats(dt_us: np.ndarray, from_start_us: np.ndarray, window_us: int) -> TimeToConvert:
    secs = dt_us / US_PER_S
    window_s = window_us / US_PER_S
    edges = [float(e) for e in HIST_EDGES_S if e < window_s] + [window_s]
    # np.histogram sorts its input for uneven bins; a search per value into the few edges does
    # not (the last bin is closed, as in np.histogram).
    counts = np.zeros(len(edges) - 1, dtype=np.int64)
    if len(secs):
        slot = np.searchsorted(np.asarray(edges), secs, side="right") - 1
        slot[secs == edges[-1]] = len(edges) - 2
        inside = (slot >= 0) & (slot < len(edges) - 1)
        counts = np.bincount(slot[inside], minlength=len(edges) - 1)
    return TimeToConvert(
        n=int(len(secs)),
        median_seconds=finite_or_none(np.median(secs)) if len(secs) else None,
        mean_seconds=finite_or_none(secs.mean()) if len(secs) else None,
        median_from_start_seconds=finite_or_none(np.median(from_start_us) / US_PER_S)
        if len(secs) else None,
        histogram_edges_seconds=tuple(edges),
        histogram_counts=tuple(int(c) for c in counts))


def _series(label: str, furthest: np.ndarray, in_window: np.ndarray, excluded: np.ndarray,
            step_times: np.ndarray, labels: list[str], alpha: float, window_us: int,
            group: np.ndarray | None) -> FunnelSeries:
    k_steps = len(labels)
    f = furthest if group is None else furthest[group]
    w = in_window if group is None else in_window[group]
    at_step = np.bincount(f, minlength=k_steps + 1)
    at_step_window = np.bincount(f[w], minlength=k_steps + 1)
    reached = np.cumsum(at_step[::-1])[::-1]  # reached[k] = users with furthest >= k
    steps = []
    for k in range(1, k_steps + 1):
        ttc = None
        if k > 1:
            rows = furthest >= k
            if group is not None:
                rows &= group
            dt = step_times[k - 1, rows] - step_times[k - 2, rows]
            ttc = _time_stats(dt, step_times[k - 1, rows] - step_times[0, rows], window_us)
        last = k == k_steps
        steps.append(FunnelStep(
            index=k, label=labels[k - 1], users=int(reached[k]),
            conversion_from_previous=Rate.of(int(reached[k]), int(reached[k - 1] if k > 1
                                                                 else reached[1]), alpha),
            conversion_from_start=Rate.of(int(reached[k]), int(reached[1]), alpha),
            dropped=0 if last else int(at_step[k] - at_step_window[k]),
            in_window=0 if last else int(at_step_window[k]),
            time_to_convert=ttc))
    n_excl = int(excluded.sum() if group is None else excluded[group].sum())
    return FunnelSeries(label=label, entered=int(reached[1]), excluded=n_excl,
                        in_window=int(w.sum()), steps=tuple(steps))
