"""Conversion funnels on ``UserEvents``. Pure (no Django), vectorized over attempts.

Semantics (follows PostHog's documented funnel rules; every choice below is tested against a
plain-Python per-user reference in ``tests/behaviour/test_funnels.py``):

* **Ties: events that share a timestamp are simultaneous.** Their stored order (the store
  breaks ties by event name) is never read, so renaming events never changes a funnel. Order
  is time: "at or after" an event means at its time or later, "between" two events means
  strictly between their times. An event fills at most one step. Events with
  ``time > as_of_us`` and users outside ``users`` are ignored.
* **Attempts.** Every event matching step 1 starts an attempt (so a new step-1 event starts a
  new attempt; attempts may overlap). The window is measured from the attempt's step-1 event
  and is inclusive: a step counts if ``time - t_step1 <= window_days``.
* **ordered**: step k+1 is the earliest step-(k+1) event at or after step k's time
  (``t[k+1] >= t[k]``: a step may share the previous step's second, PostHog's rule), other than
  the events the attempt already used (greedy earliest matching, which reaches as far as any
  other matching); other events may come between. Where PostHog wants a step that repeats the
  previous step's event strictly later (its SQL cannot tell two events of one second apart),
  here a second event of that second will do.
* **strict**: step k+1 must be at step k's time or at the user's next event time: no event of
  the user, of any name, lies strictly between the two times (one that shares either time is
  simultaneous, not between).
* **Simultaneous candidates.** When several events of one second could fill a step, the one
  that can fill the fewest of the following steps is taken (the nearer steps weigh more);
  candidates equal in that are interchangeable, so the result does not depend on which.
* **any_order**: every event that matches any step starts an attempt; a step is completed if
  one of its events lies at or after the start event's time and within the window; the
  attempt reaches k steps when k distinct steps are completed. Step event sets must be
  disjoint. Step k's time is the k-th earliest completion.
* **Exclusions.** An attempt is invalid if an exclusion event lies strictly between the time
  of its step-1 (start) event and the time of the furthest step it reached (PostHog's rule;
  one at either time does not count; nothing to check when it only reached step 1). Invalid
  attempts count as nothing; a user whose attempts are all invalid is ``excluded`` (reported
  apart, not in any step).
* **Per user** the furthest step over valid attempts counts; time to convert is read from the
  user's attempt that reaches that furthest step with the earliest step times (step 1's time
  first, then step 2's, ...).
* **Still in window**: an entered, not excluded user who did not reach the last step and whose
  latest step-1 event is within the window of ``as_of`` (``as_of - t <= window``). They count in
  ``users`` of the steps they reached, but at their furthest step they are reported as
  ``in_window`` instead of ``dropped``.
* Conversion from the previous step and from step 1 with Wilson score intervals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from behaviour.analytics.step_filters import StepFilter, filter_positions
from events.frame import US_PER_DAY, UserEvents
from segments.analytics.intervals import finite_or_none, wilson

MODES = ("ordered", "strict", "any_order")
PARALLEL_MIN_EVENTS = 1_000_000  # below this a funnel's per-user stage runs on one thread
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
    """A funnel step: one event name or several (any of them counts), optionally only the
    events whose properties pass ``filter`` (``step_filters``)."""

    event: str | tuple[str, ...]
    label: str | None = None
    filter: StepFilter | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.event,) if isinstance(self.event, str) else tuple(self.event)

    @property
    def display(self) -> str:
        if self.label:
            return self.label
        base = " | ".join(self.names)
        return f"{base} [{self.filter.display}]" if self.filter is not None else base


Step = StepSpec | str | Mapping[str, Any]


def step_spec(step: StepSpec | str | Mapping[str, Any]) -> StepSpec:
    """A step from its API form: an event name, or ``{"event": name, "filter": {key, op,
    value}}`` (``filter`` optional)."""
    if isinstance(step, StepSpec):
        return step
    if isinstance(step, Mapping):
        event = step["event"]
        names = event if isinstance(event, str) else tuple(event)
        spec = step.get("filter")
        return StepSpec(names, step.get("label"), StepFilter.of(spec) if spec else None)
    return StepSpec(str(step))


# Time-to-convert bins shown on the page: (label, from, to) in seconds, from inclusive, to
# exclusive; the last is open.
TTC_BINS: tuple[tuple[str, float, float], ...] = (
    ("< 1 min", 0, 60), ("1–10 min", 60, 600), ("10–60 min", 600, 3600),
    ("1–6 h", 3600, 6 * 3600), ("6–24 h", 6 * 3600, 86400), ("1–3 d", 86400, 3 * 86400),
    ("3–7 d", 3 * 86400, 7 * 86400), ("7–14 d", 7 * 86400, 14 * 86400),
    ("≥ 14 d", 14 * 86400, float("inf")))
QUANTILE_RULE = ("quantiles are exact, except where a fanned-out analysis has more than "
                 "50,000 users in one duration: there they come from a log-bucket sketch "
                 "merged over the partitions, within 0.5% (relative) of the exact value")
PERCENTILE_RULE = ("percentiles interpolate linearly between the sorted times (numpy's "
                   "default, Hyndman-Fan type 7)")


@dataclass(frozen=True)
class TimeToConvert:
    """Seconds from the previous step (and from step 1) for users who reached this step (or,
    for a whole funnel, from step 1 to the last step): quantiles and histograms."""

    n: int
    median_seconds: float | None
    mean_seconds: float | None
    median_from_start_seconds: float | None
    histogram_edges_seconds: tuple[float, ...]
    histogram_counts: tuple[int, ...]
    p25_seconds: float | None = None
    p75_seconds: float | None = None
    p90_seconds: float | None = None
    bins: tuple[tuple[str, int], ...] = ()  # (TTC_BINS label, users)
    # 0: quantiles exact; else their largest relative error (a merged sketch,
    # ``funnel_partials``)
    quantile_relative_error: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "median_seconds": self.median_seconds,
                "mean_seconds": self.mean_seconds,
                "median_from_start_seconds": self.median_from_start_seconds,
                "p25_seconds": self.p25_seconds, "p75_seconds": self.p75_seconds,
                "p90_seconds": self.p90_seconds,
                "quantile_relative_error": self.quantile_relative_error,
                "bins": [{"label": label, "users": c} for label, c in self.bins],
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
    time_to_convert: TimeToConvert | None = None  # step 1 to the last step, converted users

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "entered": self.entered, "excluded": self.excluded,
                "in_window": self.in_window, "steps": [s.to_dict() for s in self.steps],
                "time_to_convert": None if self.time_to_convert is None
                else self.time_to_convert.to_dict()}


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
    over_time: tuple[Any, ...] = ()  # funnel_time.EntryWeek rows, oldest first

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
                "breakdown": [s.to_dict() for s in self.breakdown],
                "over_time": [w.to_dict() for w in self.over_time],
                "time_rules": {"percentiles": PERCENTILE_RULE, "quantiles": QUANTILE_RULE,
                               "bins": [b[0] for b in TTC_BINS]}}


DEFINITION = {
    "ordered": "each step is the first event of that step at or after the previous step's time "
               "(events of one second are simultaneous: a step may share the previous step's "
               "second); window from the step-1 event, inclusive; furthest step over attempts "
               "counts",
    "strict": "each step is at the previous step's time or the user's next event time, with no "
              "event strictly between; window from the step-1 event, inclusive; furthest step "
              "over attempts counts",
    "any_order": "distinct steps completed at or after the time of an attempt's first step "
                 "event within the window, inclusive; furthest count over attempts counts",
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


def _moment_bounds(ue: UserEvents, pos: np.ndarray, end: bool) -> np.ndarray:
    """Per position, where its moment (the run of the user's events at that same time) starts,
    or one past where it ends (``end``). Events are sorted by (user, time), so a moment is
    contiguous: a galloping search from each position, O(log moment size) vectorized steps."""
    n = len(ue.time)
    pos = np.asarray(pos, dtype=np.int64)
    if len(pos) == 0:
        return pos.copy()
    user, time = ue.user, ue.time
    u, t = user[pos], time[pos]
    sign = 1 if end else -1

    def inside(probe: np.ndarray, which: np.ndarray) -> np.ndarray:
        ok = (probe >= 0) & (probe < n)
        at = np.clip(probe, 0, n - 1)
        return ok & (user[at] == u[which]) & (time[at] == t[which])

    known = pos.copy()  # in the moment
    beyond = np.empty_like(pos)  # out of it (or past the ends of the array)
    active = np.arange(len(pos))
    step = 1
    while len(active):
        probe = known[active] + sign * step
        hit = inside(probe, active)
        known[active[hit]] = probe[hit]
        beyond[active[~hit]] = probe[~hit]
        active = active[hit]
        step *= 2
    active = np.flatnonzero(np.abs(beyond - known) > 1)
    while len(active):  # binary search between the last inside and the first outside
        mid = (known[active] + beyond[active]) // 2
        hit = inside(mid, active)
        known[active[hit]] = mid[hit]
        beyond[active[~hit]] = mid[~hit]
        active = active[np.abs(beyond[active] - known[active]) > 1]
    return known + 1 if end else known


def _later_signatures(luts: list[np.ndarray]) -> list[np.ndarray]:
    """Per step k, per event code: which later steps the event could also fill, as a number
    that is larger the nearer those steps are (bit K-1-j for step j > k)."""
    k_steps = len(luts)
    out = []
    for k in range(k_steps):
        sig = np.zeros(len(luts[0]), dtype=np.int64)
        for j in range(k + 1, k_steps):
            sig |= luts[j].astype(np.int64) << (k_steps - 1 - j)
        out.append(sig)
    return out


def _pick(ue: UserEvents, pk: np.ndarray, sig: Any, here: np.ndarray, u0: np.ndarray,
          used: np.ndarray) -> np.ndarray:
    """For each attempt, the candidate (a position in ``pk``, -1 for none) an overlapping step
    takes: among the user's earliest candidates at or after ``here`` (a moment start) that the
    attempt has not ``used`` (steps x attempts positions), the one with the smallest
    ``sig`` (then the first stored: equal signatures are interchangeable). When every
    candidate of that second is used, the next second's candidates."""
    n_pk = len(pk)
    best = np.full(len(here), -1, dtype=np.int64)
    lo = np.searchsorted(pk, here, side="left")
    todo = np.arange(len(here))
    for _ in range(2):  # the first candidates' second, then (all used) the next one
        alive = lo[todo] < n_pk
        todo = todo[alive]
        if len(todo) == 0:
            break
        first = pk[lo[todo]]
        own = ue.user[first] == u0[todo]
        todo, first = todo[own], first[own]
        hi = np.searchsorted(pk, _moment_bounds(ue, first, end=True), side="left")
        best_sig = np.full(len(todo), np.iinfo(np.int64).max, dtype=np.int64)
        width = hi - lo[todo]
        for off in range(int(width.max()) if len(todo) else 0):
            rows = np.flatnonzero((off < width) & (best_sig != 0))  # 0: none can be better
            if len(rows) == 0:
                break
            cand = pk[lo[todo[rows]] + off]
            free = ~(used[:, todo[rows]] == cand).any(axis=0)
            cand_sig = sig(cand)
            better = free & (cand_sig < best_sig[rows])
            best[todo[rows[better]]] = cand[better]
            best_sig[rows[better]] = cand_sig[better]
        missing = best[todo] < 0
        todo = todo[missing]
        lo[todo] = hi[missing]
    return best


def _step_positions(ue: UserEvents, luts: list[np.ndarray], specs: Sequence[StepSpec],
                    users: np.ndarray | None, as_of_us: int) -> list[np.ndarray]:
    """Per step, the ascending positions of the events that can fill it (its names, its
    property filter, the scope and ``as_of``)."""
    out = []
    for lut, spec in zip(luts, specs, strict=True):
        pos = _positions(ue, lut, users, as_of_us)
        out.append(pos if spec.filter is None else filter_positions(ue, pos, spec.filter))
    return out


def _signature_of(ue: UserEvents, luts: list[np.ndarray], step_pos: list[np.ndarray] | None,
                  k: int) -> Any:
    """Per candidate position of step k: ``_later_signatures`` read from the event's name,
    or, with property filters, from whether the event itself can fill each later step."""
    if step_pos is None:
        sig = _later_signatures(luts)[k]
        return lambda cand: sig[ue.event[cand]]
    k_steps = len(luts)

    def of(cand: np.ndarray) -> np.ndarray:
        out = np.zeros(len(cand), dtype=np.int64)
        for j in range(k + 1, k_steps):
            pj = step_pos[j]
            at = np.minimum(np.searchsorted(pj, cand), max(len(pj) - 1, 0))
            hit = (pj[at] == cand) if len(pj) else np.zeros(len(cand), bool)
            out |= hit.astype(np.int64) << (k_steps - 1 - j)
        return out
    return of


def _attempts(ue: UserEvents, luts: list[np.ndarray], mode: str, window_us: int,
              users: np.ndarray | None, as_of_us: int,
              specs: Sequence[StepSpec] | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per attempt: start position, steps reached, step times (K, m; -1 where not reached)
    and the position of the furthest matched event. Ties as in the module docstring: the
    stored order of events sharing a time is never read."""
    k_steps = len(luts)
    time, user = ue.time, ue.user
    filtered = specs is not None and any(s.filter is not None for s in specs)
    step_pos = _step_positions(ue, luts, specs, users, as_of_us) if filtered else None

    def positions(k: int) -> np.ndarray:
        return step_pos[k] if step_pos is not None else _positions(ue, luts[k], users,
                                                                    as_of_us)
    if mode == "any_order":
        union = np.zeros_like(luts[0])
        for lut in luts:
            union |= lut
        starts = np.unique(np.concatenate(step_pos)) if step_pos is not None \
            else _positions(ue, union, users, as_of_us)
        m = len(starts)
        t0, u0 = time[starts], user[starts]
        times = np.full((k_steps, m), np.iinfo(np.int64).max, dtype=np.int64)
        last = starts.copy()
        at_start = _moment_bounds(ue, starts, end=False)  # the start's second counts
        for k in range(k_steps):
            pk = positions(k)
            if len(pk) == 0:
                continue
            j = np.searchsorted(pk, at_start, side="left")
            cand = pk[np.minimum(j, len(pk) - 1)]
            ok = (j < len(pk)) & (user[cand] == u0) & (time[cand] - t0 <= window_us)
            times[k, ok] = time[cand[ok]]
            last = np.where(ok, np.maximum(last, cand), last)
        reached = (times != np.iinfo(np.int64).max).sum(axis=0).astype(np.int16)
        times.sort(axis=0)
        times[times == np.iinfo(np.int64).max] = -1
        return starts, reached, times, last
    starts = positions(0)
    m = len(starts)
    t0, u0 = time[starts], user[starts]
    times = np.full((k_steps, m), -1, dtype=np.int64)
    times[0] = t0
    reached = np.ones(m, dtype=np.int16)
    chosen = np.full((k_steps, m), -1, dtype=np.int64)  # the events each attempt used
    chosen[0] = starts
    idx = np.arange(m)  # attempts still alive
    cur = starts.copy()
    n_events = len(time)
    for k in range(1, k_steps):
        if len(idx) == 0:
            break
        pk = positions(k)
        if len(pk) == 0:
            break
        here = _moment_bounds(ue, cur, end=False)  # candidates from step k's second on
        overlaps = any((luts[k][:-1] & luts[j][:-1]).any() for j in range(k_steps) if j != k)
        if overlaps:  # an event of another step could be taken: choose among ties
            cand = _pick(ue, pk, _signature_of(ue, luts, step_pos, k), here, u0[idx],
                         chosen[:k, idx])
            ok = cand >= 0
            cand = np.where(ok, cand, 0)
        else:
            j = np.searchsorted(pk, here, side="left")
            cand = pk[np.minimum(j, len(pk) - 1)]
            ok = (j < len(pk)) & (user[cand] == u0[idx])
        ok &= time[cand] - t0[idx] <= window_us
        if mode == "strict":  # in step k's second or the user's next one, nothing between
            after = _moment_bounds(ue, cur, end=True)
            nxt = np.minimum(after, n_events - 1)
            limit = np.where((after < n_events) & (user[nxt] == u0[idx]),
                             _moment_bounds(ue, nxt, end=True), after)
            ok &= cand < limit
        idx, cur = idx[ok], cand[ok]
        reached[idx] += 1
        times[k, idx] = time[cur]
        chosen[k, idx] = cur
    last = chosen[reached.astype(np.int64) - 1, np.arange(m)]
    return starts, reached, times, last


def funnel(
    ue: UserEvents,
    steps: Sequence[Step],
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


def funnel_users(ue: UserEvents, steps: Sequence[Step], options: FunnelOptions, *,
                 users: np.ndarray | None = None) -> FunnelUsers:
    """The per-user stage of ``funnel``."""
    as_of_us, window_days, mode = options.as_of_us, options.window_days, options.mode
    exclusions = options.exclusions
    specs = [step_spec(s) for s in steps]
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

    def stage(part: UserEvents, scope: np.ndarray | None) -> FunnelUsers:
        return _per_user(part, specs, luts, ex_lut, mode, window_us, scope, as_of_us,
                         exclusions)
    # Users are independent: contiguous ranges of them on two threads, rows concatenated.
    parts = ue.over_user_ranges(stage, users, PARALLEL_MIN_EVENTS)
    if len(parts) == 1:
        return parts[0]
    return FunnelUsers(*(np.concatenate([getattr(p, name) for p in parts], axis=-1)
                         for name in ("furthest", "in_window", "excluded", "step_times")))


def _per_user(ue: UserEvents, specs: Sequence[StepSpec], luts: list[np.ndarray],
              ex_lut: np.ndarray, mode: str, window_us: int, users: np.ndarray | None,
              as_of_us: int, exclusions: Sequence[str]) -> FunnelUsers:
    """``funnel_users`` after its checks, on ``ue`` (the whole frame or a range of users)."""
    k_steps = len(specs)
    n = ue.n_users
    starts, reached, times, last = _attempts(ue, luts, mode, window_us, users, as_of_us, specs)
    if len(exclusions) and len(starts):
        # Exclusion events strictly between the start's time and the furthest step's time.
        pex = _positions(ue, ex_lut, users, as_of_us)
        between = np.searchsorted(pex, _moment_bounds(ue, last, end=False), side="left") \
            - np.searchsorted(pex, _moment_bounds(ue, starts, end=True), side="left")
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
        # The user's attempt that reaches the best with the earliest step times: the first
        # marked attempt in each run, unless another one starts at the same time (a tie).
        marked = np.flatnonzero(reached == np.repeat(best, lengths))
        run = np.repeat(np.arange(len(bounds)), lengths)[marked]
        if bool(((run[1:] == run[:-1]) & (times[0, marked[1:]] == times[0, marked[:-1]])).any()):
            by_times = np.lexsort(tuple(times[k, marked] for k in range(k_steps - 1, -1, -1))
                                  + (run,))
            marked, run = marked[by_times], run[by_times]
        first = marked[np.r_[True, run[1:] != run[:-1]]]
        step_times[:, ue.user[starts[first]]] = times[:, first]
    return FunnelUsers(furthest, in_window, excluded, step_times)


def funnel_from_users(per_user: FunnelUsers, steps: Sequence[Step],
                      options: FunnelOptions, *, users: np.ndarray | None = None,
                      breakdown: np.ndarray | pd.Series | None = None,
                      alpha: float = 0.05) -> FunnelResult:
    """``funnel`` from its per-user stage (``funnel_users``)."""
    specs = [step_spec(s) for s in steps]
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
        from behaviour.analytics.funnel_partials import breakdown_groups

        if len(breakdown) != n:
            raise ValueError("breakdown needs one label per user")
        entered = (furthest > 0) | excluded
        series = [_series(label, furthest, in_window, excluded, step_times, labels, alpha,
                          window_us, group)
                  for label, group in breakdown_groups(np.asarray(breakdown, dtype=object),
                                                       entered, users)]
    from behaviour.analytics.funnel_time import conversion_by_week

    return FunnelResult(
        over_time=conversion_by_week(furthest, in_window, step_times, users=users,
                                     alpha=alpha),
        steps=tuple(labels), mode=options.mode, window_days=float(options.window_days),
        exclusions=tuple(options.exclusions), as_of_us=int(options.as_of_us), alpha=alpha,
        overall=overall, breakdown=tuple(series), definition=DEFINITION[options.mode],
        furthest=furthest, in_window_users=in_window, excluded_users=excluded)


def hist_edges(window_us: int) -> list[float]:
    """The time-to-convert histogram's edges in seconds: ``HIST_EDGES_S`` cut at the window,
    whose length closes the last bin."""
    window_s = window_us / US_PER_S
    return [float(e) for e in HIST_EDGES_S if e < window_s] + [window_s]


def _series(label: str, furthest: np.ndarray, in_window: np.ndarray, excluded: np.ndarray,
            step_times: np.ndarray, labels: list[str], alpha: float, window_us: int,
            group: np.ndarray | None) -> FunnelSeries:
    """One series from the per-user stage, through the same counts a partition returns
    (``funnel_partials``), with every duration kept: quantiles exact."""
    from behaviour.analytics.funnel_partials import SeriesPartial

    return SeriesPartial.of(furthest, in_window, excluded, step_times, window_us, group,
                            None).finish(label, labels, alpha, window_us)
