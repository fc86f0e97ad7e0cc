"""Retention cohorts on ``UserEvents`` (a cohort x period matrix). Pure, vectorized.

Semantics:

* **Anchor** per user: ``cohort_by="signup"`` (``UserEvents.signup``) or ``"first_event"`` (the
  user's first event, or first ``cohort_event`` event, at or before ``as_of``). Only users whose
  anchor is ``<= as_of`` (and inside ``users`` and ``[cohorts_from_us, cohorts_to_us)`` when
  given) are in a cohort.
* **Calendar periods** in UTC: ISO weeks (Monday 00:00) or calendar months. A user's cohort is
  the period containing the anchor; an event's period index is ``k = period(event) -
  period(anchor)`` (period 0 = the cohort period).
* **Return events**: events of ``return_events`` (default: any event) with ``anchor <= time <=
  as_of`` (events before the anchor never count; the anchor event itself counts in period 0).
* ``mode="recurring"``: ``return_on="on"`` counts a user in period k if they have a return
  event in period k; ``"on_or_after"`` if they have one in period k or any later period.
* ``mode="first_time"``: with ``f`` = the user's first period >= 1 with a return event,
  ``"on"`` counts the user in period k when ``f == k`` ("returned for the first time in period
  k"), ``"on_or_after"`` when ``f >= k``. Period 0 is the whole cohort in this mode.
* A cell is **observed** when its period has started by ``as_of`` (shares are NaN otherwise)
  and **complete** when its last microsecond is ``<= as_of``. The average row weights cohorts
  by size over complete cells only (sum retained / sum of cohort sizes).
* ``return_on="within"`` with ``within = W``: period k counts the user when they have a return
  event in periods ``k .. k+W-1`` ("within [k, k+W)"); first-time mode: when their first
  return period is one of those. Complete when period ``k+W-1`` has ended.

**Rolling periods** (``period_kind="rolling"``, ``period_days = N``): period k of a user is
``[anchor + k*N days, anchor + (k+1)*N days)``, so ``N = 1`` gives "on day k". Cohort rows
still group users by the calendar ``period`` of their anchor. A user is **eligible** for
period k once the cell's whole window has passed: ``anchor + (k+W)*N days <= as_of`` (W = 1
unless ``within``); a cell's share is retained-and-eligible / eligible users (NaN with none),
and the average row pools cohorts over their eligible users (sum retained / sum eligible).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from events.frame import US_PER_DAY, UserEvents
from segments.analytics.intervals import finite_or_none
from segments.analytics.value import return_lut

WEEK_US = 7 * US_PER_DAY
PARALLEL_MIN_EVENTS = 1_000_000  # below this a retention table is counted on one thread


def period_index(time_us: np.ndarray, period: str) -> np.ndarray:
    """Absolute calendar period number of each time: ISO weeks or months since 1970-01."""
    t = np.asarray(time_us, dtype=np.int64)
    if period == "week":
        return np.floor_divide(np.floor_divide(t, US_PER_DAY) + 3, 7)
    if period == "month":
        return t.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)
    raise ValueError("period must be 'week' or 'month'")


def period_start(index: np.ndarray, period: str) -> np.ndarray:
    """First µs of each absolute period number (inverse of ``period_index``)."""
    idx = np.asarray(index, dtype=np.int64)
    if period == "week":
        return idx * WEEK_US - 3 * US_PER_DAY
    return idx.astype("datetime64[M]").astype("datetime64[us]").astype(np.int64)


RETURN_ON = ("on", "on_or_after", "within")
PERIOD_KINDS = ("calendar", "rolling")


def period_labels(n_periods: int, *, period_kind: str, period: str, period_days: int,
                  return_on: str, within: int) -> list[str]:
    """What each column counts, in words: "day 3", "days 7–13", "week 2", "day 7+",
    "days 7–13 (within [7, 14))"."""
    out = []
    for k in range(n_periods):
        if period_kind == "rolling" and period_days == 1:
            unit = f"day {k}"
        elif period_kind == "rolling":
            unit = f"days {k * period_days}–{(k + 1) * period_days - 1}"
        else:
            unit = f"{period} {k}"
        if return_on == "on_or_after":
            unit += "+"
        elif return_on == "within" and within > 1:
            if period_kind == "rolling":
                unit = f"[{k * period_days}, {(k + within) * period_days}) d"
            else:
                unit = f"{period}s {k}–{k + within - 1}"
        out.append(unit)
    return out


def definition_text(*, period_kind: str, period: str, period_days: int, return_on: str,
                    within: int, mode: str, start: str, returns: str) -> str:
    """One sentence saying what the table counts."""
    if period_kind == "rolling":
        size = "day" if period_days == 1 else f"{period_days}-day period"
        periods = f"rolling {period_days}-day periods from each user's {start}"
    else:
        size = f"calendar {period}"
        periods = f"calendar {period}s (UTC) from the {period} of each user's {start}"
    variant = {"on": f"on {size} N" if period_days == 1 and period_kind == "rolling"
               else f"in {size} N",
               "on_or_after": f"on or after {size} N",
               "within": f"within [N, N+{within}) {size}s"}[return_on]
    first = "for the first time " if mode == "first_time" else ""
    return (f"Share of users who returned {first}{variant} ({periods}; a return is "
            f"{returns}).")


@dataclass(frozen=True)
class RetentionTable:
    cohort_by: str
    period: str
    mode: str
    return_on: str
    as_of_us: int
    cohorts: tuple[str, ...]  # period start dates, YYYY-MM-DD
    cohort_starts_us: tuple[int, ...]
    sizes: tuple[int, ...]
    counts: np.ndarray = field(repr=False, compare=False)  # (cohorts, periods) users retained
    shares: np.ndarray = field(repr=False, compare=False)  # NaN where not observed
    complete: np.ndarray = field(repr=False, compare=False)  # period ended by as_of
    average: tuple[float | None, ...] = ()  # size-weighted over complete cells
    average_users: tuple[int, ...] = ()  # denominator of each average (cohort users)
    period_kind: str = "calendar"
    period_days: int = 0
    within: int = 1
    eligible: np.ndarray | None = field(default=None, repr=False, compare=False)  # rolling
    start_event: str = "signup"
    return_events: tuple[str, ...] | None = None
    return_label: str = "any event"

    @property
    def n_periods(self) -> int:
        return self.counts.shape[1]

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.shares, columns=list(range(self.n_periods)))
        frame.insert(0, "size", list(self.sizes))
        frame.insert(0, "cohort", list(self.cohorts))
        return frame

    def to_dict(self) -> dict[str, Any]:
        observed = ~np.isnan(self.shares)
        eligible = self.eligible if self.eligible is not None else \
            np.broadcast_to(np.asarray(self.sizes, np.int64)[:, None], self.counts.shape)
        start = self.start_event if self.cohort_by == "signup" or self.start_event != "signup" \
            else "first event"
        return {
            "cohort_by": self.cohort_by, "period": self.period, "mode": self.mode,
            "return_on": self.return_on, "as_of_us": int(self.as_of_us),
            "period_kind": self.period_kind, "period_days": int(self.period_days),
            "within": int(self.within), "start_event": start,
            "return_events": None if self.return_events is None else list(self.return_events),
            "return_label": self.return_label,
            "labels": period_labels(self.n_periods, period_kind=self.period_kind,
                                    period=self.period, period_days=self.period_days,
                                    return_on=self.return_on, within=self.within),
            "definition": definition_text(
                period_kind=self.period_kind, period=self.period, period_days=self.period_days,
                return_on=self.return_on, within=self.within, mode=self.mode, start=start,
                returns=self.return_label),
            "periods": list(range(self.n_periods)),
            "rows": [{"cohort": c, "start_us": int(s), "size": int(n),
                      "counts": [int(v) if o else None for v, o in zip(cnt, obs, strict=True)],
                      "shares": [finite_or_none(v) for v in share],
                      "complete": [bool(v) for v in comp],
                      "eligible": [int(v) for v in elig]}
                     for c, s, n, cnt, obs, share, comp, elig in zip(
                         self.cohorts, self.cohort_starts_us, self.sizes, self.counts, observed,
                         self.shares, self.complete, eligible, strict=True)],
            "average": list(self.average), "average_users": list(self.average_users),
        }


def _codes(ue: UserEvents, names: Sequence[str] | None) -> np.ndarray | None:
    """The segments' return-event table, or None for every event (no mask to apply)."""
    return None if names is None else return_lut(ue, names)


def _week_offsets(ue: UserEvents, member: np.ndarray, anchor: np.ndarray, cp: np.ndarray,
                  per_user: np.ndarray, lut: np.ndarray | None, as_of_us: int, n_periods: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(user, week offset k) of return events with 0 <= k < n_periods, in event order (one
    per run of equal (user, k), see below).

    One int64 work array over all events, filled in place: ``time - start of the anchor's
    week`` (per-user values reach the events by ``np.repeat`` over the user slices), invalid
    events pushed far negative, then one float division (exact: the differences are below
    2**52) truncated to int32. Events before the anchor are a prefix of a member's slice, so
    only members whose first event precedes their anchor are looked at one event at a time.
    """
    time = ue.time
    far = 1 << 61
    d = np.repeat(np.where(member, period_start(cp, "week"), far), per_user)
    np.subtract(time, d, out=d)
    has = per_user > 0
    early = np.zeros(ue.n_users, dtype=bool)
    early[has] = time[ue.starts[:-1][has]] < anchor[has]
    early &= member
    if early.any():
        who = np.flatnonzero(early)
        cnt = per_user[who]
        idx = np.repeat(ue.starts[who] - (np.cumsum(cnt) - cnt), cnt) + np.arange(cnt.sum())
        d[idx[time[idx] < np.repeat(anchor[who], cnt)]] = -far
    if as_of_us < time.max(initial=np.iinfo(np.int64).min):
        d[time > as_of_us] = -far
    if lut is not None:
        d[~lut[ue.event]] = -far
    weeks = d.view(np.float64)
    np.divide(d, float(WEEK_US), out=weeks)
    k = weeks.astype(np.int32)  # truncation = floor for the valid (non-negative) ones
    del d, weeks
    # Keep the first event of each run of equal (user, k): first/last k per user and the
    # distinct (user, k) pairs are unchanged (the caller still drops duplicates left where an
    # invalid event splits a run).
    keep = (k >= 0) & (k < n_periods)
    keep[1:] &= (k[1:] != k[:-1]) | (ue.user[1:] != ue.user[:-1])
    pos = np.flatnonzero(keep)
    return ue.user[pos], k[pos]


def retention(
    ue: UserEvents,
    *,
    as_of_us: int,
    cohort_by: str = "signup",
    period: str = "week",
    mode: str = "recurring",
    return_on: str = "on",
    users: np.ndarray | None = None,
    return_events: Sequence[str] | None = None,
    cohort_event: str | None = None,
    max_periods: int | None = None,
    cohorts_from_us: int | None = None,
    cohorts_to_us: int | None = None,
    period_kind: str = "calendar",
    period_days: int = 7,
    within: int = 1,
    return_label: str | None = None,
) -> RetentionTable:
    """Cohort x period retention matrix; see the module docstring for the semantics."""
    options = RetentionOptions(
        as_of_us=as_of_us, cohort_by=cohort_by, period=period, mode=mode, return_on=return_on,
        max_periods=max_periods, period_kind=period_kind, period_days=period_days,
        within=within, cohort_event=cohort_event,
        return_events=None if return_events is None else tuple(return_events),
        return_label=return_label)
    if users is not None:
        users = np.asarray(users, dtype=bool)
        if users.shape != (ue.n_users,):
            raise ValueError("users must be a boolean mask with one entry per user")
    # The partials of disjoint users add up exactly: contiguous ranges of users on two threads.
    parts = ue.over_user_ranges(lambda part, scope: retention_partial(
        part, options, users=scope, cohorts_from_us=cohorts_from_us,
        cohorts_to_us=cohorts_to_us), users, PARALLEL_MIN_EVENTS)
    return retention_from_partials(parts, options)


@dataclass(frozen=True)
class RetentionOptions:
    """How ``retention`` counts, which its partials and their sum must agree on."""

    as_of_us: int
    cohort_by: str = "signup"
    period: str = "week"
    mode: str = "recurring"
    return_on: str = "on"
    max_periods: int | None = None
    period_kind: str = "calendar"
    period_days: int = 7
    within: int = 1
    cohort_event: str | None = None
    return_events: tuple[str, ...] | None = None
    return_label: str | None = None

    @property
    def window(self) -> int:
        """Periods a cell spans: ``within`` for "within", else 1."""
        return int(self.within) if self.return_on == "within" else 1

    @property
    def rolling_us(self) -> int:
        return int(self.period_days) * US_PER_DAY


@dataclass
class RetentionPartial:
    """Cohort sizes and retained counts of some users (one user-hash partition): cohort row i
    is the absolute period ``lo_period + i``; counts are (cohorts, periods). Sums of these
    over disjoint users are the counts of all of them. ``eligible`` (rolling periods only):
    users per cell whose window has passed, (cohorts, periods)."""

    lo_period: int
    size: np.ndarray
    counts: np.ndarray
    eligible: np.ndarray | None = None


def retention_partial(
    ue: UserEvents,
    options: RetentionOptions,
    *,
    users: np.ndarray | None = None,
    return_events: Sequence[str] | None = None,
    cohort_event: str | None = None,
    cohorts_from_us: int | None = None,
    cohorts_to_us: int | None = None,
) -> RetentionPartial | None:
    """The counts of ``retention`` for the users of ``ue`` (None: no user is in a cohort).
    ``return_events`` / ``cohort_event`` default to the options' own."""
    as_of_us, cohort_by, period = options.as_of_us, options.cohort_by, options.period
    mode, return_on, max_periods = options.mode, options.return_on, options.max_periods
    if return_events is None:
        return_events = options.return_events
    if cohort_event is None:
        cohort_event = options.cohort_event
    if cohort_by not in {"signup", "first_event"}:
        raise ValueError("cohort_by must be 'signup' or 'first_event'")
    if mode not in {"recurring", "first_time"}:
        raise ValueError("mode must be 'recurring' or 'first_time'")
    if return_on not in RETURN_ON:
        raise ValueError("return_on must be 'on', 'on_or_after' or 'within'")
    if period not in {"week", "month"}:
        raise ValueError("period must be 'week' or 'month'")
    if options.period_kind not in PERIOD_KINDS:
        raise ValueError("period_kind must be 'calendar' or 'rolling'")
    if options.period_kind == "rolling" and int(options.period_days) < 1:
        raise ValueError("period_days must be at least 1")
    if int(options.within) < 1:
        raise ValueError("within must be at least 1")
    n = ue.n_users
    big = np.iinfo(np.int64).max
    time, user = ue.time, ue.user
    if cohort_by == "signup":
        anchor = ue.signup.astype(np.int64)
    elif cohort_event is None:
        first = ue.starts[:-1]
        anchor = np.full(n, big, dtype=np.int64)
        has = (ue.starts[1:] > first)
        anchor[has] = time[first[has]]  # events are time-sorted within a user
    else:
        code = ue.event_code(cohort_event)
        anchor = np.full(n, big, dtype=np.int64)
        if code >= 0:
            pos = np.flatnonzero(ue.event == code)
            u = user[pos]
            firsts = np.r_[True, u[1:] != u[:-1]] if len(pos) else np.zeros(0, bool)
            anchor[u[firsts]] = time[pos[firsts]]
    member = anchor <= as_of_us
    if users is not None:
        member &= np.asarray(users, dtype=bool)
    if cohorts_from_us is not None:
        member &= anchor >= cohorts_from_us
    if cohorts_to_us is not None:
        member &= anchor < cohorts_to_us
    anchor_m = np.where(member, anchor, 0)
    cp = period_index(anchor_m, period)
    if not member.any():
        return None
    lo_period = int(cp[member].min())
    hi_period = int(cp[member].max())
    last_period = int(period_index(np.array([as_of_us]), period)[0])
    n_periods = int(max_periods) if max_periods else last_period - lo_period + 1
    n_cohorts = hi_period - lo_period + 1
    cohort = np.where(member, cp - lo_period, -1)
    if options.period_kind == "rolling" or return_on == "within":
        return _interval_partial(ue, options, member, anchor_m, cohort, lo_period, n_cohorts,
                                 return_events)

    # Return events of members: anchor <= time <= as_of, k = period(event) - period(anchor).
    per_user = np.diff(ue.starts)
    lut = _codes(ue, return_events)
    span_ok = as_of_us - int(period_start(np.array([lo_period]), period)[0]) < 2**52
    if period == "week" and span_ok:
        u, k = _week_offsets(ue, member, anchor_m, cp, per_user, lut, as_of_us, n_periods)
    else:
        # Non-members get an anchor past every event, so one comparison selects both.
        sel = time >= np.repeat(np.where(member, anchor_m, big), per_user)
        sel &= time <= as_of_us
        if lut is not None:
            sel &= lut[ue.event]
        pos = np.flatnonzero(sel)
        del sel
        u = user[pos]
        k = period_index(time[pos], period) - cp[u]
        keep = k < n_periods
        u, k = u[keep], k[keep]
        del pos

    size = np.bincount(cohort[member], minlength=n_cohorts)
    cells = n_cohorts * n_periods
    if mode == "recurring" and return_on == "on":
        new = np.r_[True, (u[1:] != u[:-1]) | (k[1:] != k[:-1])] if len(u) else np.zeros(0, bool)
        counts = np.bincount(cohort[u[new]] * n_periods + k[new], minlength=cells)
    else:
        if mode == "first_time":
            later = k >= 1
            u, k = u[later], k[later]
            pick = np.r_[True, u[1:] != u[:-1]] if len(u) else np.zeros(0, bool)  # first
        else:
            pick = np.r_[u[1:] != u[:-1], True] if len(u) else np.zeros(0, bool)  # last
        hist = np.bincount(cohort[u[pick]] * n_periods + k[pick], minlength=cells)
        if return_on == "on":
            counts = hist
        else:  # users whose period (first or last) is >= k
            counts = np.cumsum(hist.reshape(n_cohorts, n_periods)[:, ::-1], axis=1)[:, ::-1]
    counts = np.asarray(counts, dtype=np.int64).reshape(n_cohorts, n_periods)
    return RetentionPartial(lo_period=lo_period, size=np.asarray(size, dtype=np.int64),
                            counts=counts)


def _interval_partial(ue: UserEvents, options: RetentionOptions, member: np.ndarray,
                      anchor: np.ndarray, cohort: np.ndarray, lo_period: int, n_cohorts: int,
                      return_events: Sequence[str] | None) -> RetentionPartial:
    """Rolling periods, and calendar "within" windows: each user's returns become disjoint
    intervals of the cells they count in, added per cohort with a difference array."""
    as_of_us, period, mode = options.as_of_us, options.period, options.mode
    rolling = options.period_kind == "rolling"
    length = options.rolling_us
    w = options.window
    big = np.iinfo(np.int64).max
    per_user = np.diff(ue.starts)
    sel = ue.time >= np.repeat(np.where(member, anchor, big), per_user)
    sel &= ue.time <= as_of_us
    lut = _codes(ue, return_events)
    if lut is not None:
        sel &= lut[ue.event]
    pos = np.flatnonzero(sel)
    del sel
    u = ue.user[pos].astype(np.int64)
    if rolling:
        k = np.floor_divide(ue.time[pos] - anchor[u], length)
        first_anchor = int(anchor[member].min())
        span = (as_of_us - first_anchor) // length + 1
    else:
        cp = period_index(anchor, period)
        k = period_index(ue.time[pos], period) - cp[u]
        span = int(period_index(np.array([as_of_us]), period)[0]) - lo_period + 1
    n_periods = int(options.max_periods) if options.max_periods else int(span)
    # Distinct (user, k), in user then k order (events are time-sorted within a user).
    new = np.r_[True, (u[1:] != u[:-1]) | (k[1:] != k[:-1])] if len(u) else np.zeros(0, bool)
    u, k = u[new], k[new]
    if mode == "first_time":
        later = k >= 1
        u, k = u[later], k[later]
        pick = np.r_[True, u[1:] != u[:-1]] if len(u) else np.zeros(0, bool)
        u, k = u[pick], k[pick]
    if options.return_on == "on_or_after":
        last = np.r_[u[1:] != u[:-1], True] if len(u) else np.zeros(0, bool)
        u, hi = u[last], k[last]
        lo = np.zeros(len(u), np.int64)
    else:
        hi = k
        lo = k - w + 1
        # Intervals [k-w+1, k] of one user overlap when ks are closer than w: start each
        # after the previous one's end so that a user counts once per cell.
        same = np.r_[False, u[1:] == u[:-1]] if len(u) else np.zeros(0, bool)
        prev = np.r_[np.int64(-1), k[:-1]] if len(u) else np.zeros(0, np.int64)
        lo = np.where(same, np.maximum(lo, prev + 1), lo)
    # Cells a user can count in: all the table's periods; rolling: only those whose window
    # has passed (anchor + (k + w) * length <= as_of).
    if rolling:
        done = np.where(member, (as_of_us - anchor) // length - w + 1, 0)
        limit = np.clip(done, 0, n_periods)
    else:
        limit = np.full(ue.n_users, n_periods, dtype=np.int64)
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, limit[u] - 1)
    ok = lo <= hi
    u, lo, hi = u[ok], lo[ok], hi[ok]
    diff = np.zeros((n_cohorts, n_periods + 1), dtype=np.int64)
    np.add.at(diff, (cohort[u], lo), 1)
    np.add.at(diff, (cohort[u], hi + 1), -1)
    counts = np.cumsum(diff, axis=1)[:, :n_periods]
    size = np.bincount(cohort[member], minlength=n_cohorts).astype(np.int64)
    eligible = None
    if rolling:
        hist = np.zeros((n_cohorts, n_periods + 1), dtype=np.int64)
        np.add.at(hist, (cohort[member], limit[member]), 1)
        # eligible[c, k] = members of cohort c with limit > k
        eligible = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1][:, 1:]
    return RetentionPartial(lo_period=lo_period, size=size, counts=counts, eligible=eligible)


def retention_from_partials(parts: Sequence[RetentionPartial | None],
                            options: RetentionOptions) -> RetentionTable:
    """``retention`` from the partials of disjoint sets of users (integer sums: exact)."""
    as_of_us, cohort_by, period = options.as_of_us, options.cohort_by, options.period
    mode, return_on, max_periods = options.mode, options.return_on, options.max_periods
    found = [p for p in parts if p is not None]
    rolling = options.period_kind == "rolling"
    start = options.cohort_event or ("signup" if cohort_by == "signup" else "first event")
    label = options.return_label or ("any event" if options.return_events is None else
                                     ", ".join(options.return_events) or "no event")
    extra = {"period_kind": options.period_kind,
             "period_days": int(options.period_days) if rolling else 0,
             "within": options.window, "start_event": start,
             "return_events": options.return_events, "return_label": label}
    if not found:
        p = int(max_periods or 0)
        empty = np.zeros((0, p))
        return RetentionTable(cohort_by, period, mode, return_on, int(as_of_us), (), (), (),
                              empty.astype(np.int64), empty, empty.astype(bool),
                              average=(None,) * p, average_users=(0,) * p,
                              eligible=empty.astype(np.int64) if rolling else None, **extra)
    lo_period = min(p.lo_period for p in found)
    hi_period = max(p.lo_period + len(p.size) - 1 for p in found)
    last_period = int(period_index(np.array([as_of_us]), period)[0])
    n_cohorts = hi_period - lo_period + 1
    if max_periods:
        n_periods = int(max_periods)
    elif rolling:  # the longest a partition's users span
        n_periods = max(p.counts.shape[1] for p in found)
    else:
        n_periods = last_period - lo_period + 1
    size = np.zeros(n_cohorts, dtype=np.int64)
    counts = np.zeros((n_cohorts, n_periods), dtype=np.int64)
    eligible = np.zeros((n_cohorts, n_periods), dtype=np.int64) if rolling else None
    for p in found:
        at = p.lo_period - lo_period
        rows, width = p.counts.shape
        size[at:at + rows] += p.size
        counts[at:at + rows, :width] += p.counts
        if eligible is not None and p.eligible is not None:
            eligible[at:at + rows, :width] += p.eligible
    if mode == "first_time":
        counts[:, 0] = size if eligible is None else eligible[:, 0]
    if eligible is not None:
        return _rolling_table(options, lo_period, size, counts, eligible, extra)

    absolute = lo_period + np.arange(n_cohorts)[:, None] + np.arange(n_periods)[None, :]
    observed = period_start(absolute, period) <= as_of_us
    complete = period_start(absolute + options.window, period) - 1 <= as_of_us
    keep_rows = size > 0
    counts, observed, complete = counts[keep_rows], observed[keep_rows], complete[keep_rows]
    size = size[keep_rows]
    starts = period_start(lo_period + np.flatnonzero(keep_rows), period)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(observed, counts / size[:, None], np.nan)
        num = np.where(complete, counts, 0).sum(axis=0)
        den = np.where(complete, size[:, None], 0).sum(axis=0)
        average = np.where(den > 0, num / np.maximum(den, 1), np.nan)
    labels = tuple(pd.to_datetime(starts, unit="us", utc=True).strftime("%Y-%m-%d"))
    return RetentionTable(
        cohort_by=cohort_by, period=period, mode=mode, return_on=return_on,
        as_of_us=int(as_of_us), cohorts=labels, cohort_starts_us=tuple(int(s) for s in starts),
        sizes=tuple(int(s) for s in size), counts=counts, shares=shares, complete=complete,
        average=tuple(finite_or_none(a) for a in average), average_users=tuple(int(d) for d in den),
        **extra)


def _rolling_table(options: RetentionOptions, lo_period: int, size: np.ndarray,
                   counts: np.ndarray, eligible: np.ndarray, extra: dict[str, Any],
                   ) -> RetentionTable:
    """The table of rolling periods: shares over each cell's eligible users."""
    keep = size > 0
    size, counts, eligible = size[keep], counts[keep], eligible[keep]
    starts = period_start(lo_period + np.flatnonzero(keep), options.period)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(eligible > 0, counts / np.maximum(eligible, 1), np.nan)
        num, den = counts.sum(axis=0), eligible.sum(axis=0)
        average = np.where(den > 0, num / np.maximum(den, 1), np.nan)
    labels = tuple(pd.to_datetime(starts, unit="us", utc=True).strftime("%Y-%m-%d"))
    return RetentionTable(
        cohort_by=options.cohort_by, period=options.period, mode=options.mode,
        return_on=options.return_on, as_of_us=int(options.as_of_us), cohorts=labels,
        cohort_starts_us=tuple(int(s) for s in starts), sizes=tuple(int(s) for s in size),
        counts=counts, shares=shares, complete=eligible == size[:, None],
        average=tuple(finite_or_none(a) for a in average),
        average_users=tuple(int(d) for d in den), eligible=eligible, **extra)


def purchase_log_events(customers: np.ndarray, time_us: np.ndarray,
                        amounts: np.ndarray | None = None) -> UserEvents:
    """A purchase log (customer, time, amount) as ``UserEvents`` with one event, "purchase"."""
    codes, ids = pd.factorize(pd.Series(np.asarray(customers)).astype(str), sort=True)
    t = np.asarray(time_us, dtype=np.int64)
    order = np.lexsort((t, codes))
    revenue = np.zeros(len(t)) if amounts is None else np.asarray(amounts, np.float64)[order]
    data = UserEvents(
        user_ids=np.asarray(ids, dtype=object), user=codes[order].astype(np.int32),
        time=t[order], event=np.zeros(len(t), dtype=np.int32), event_names=("purchase",),
        revenue=np.nan_to_num(revenue), cost=np.zeros(len(t)),
        signup=np.zeros(len(ids), dtype=np.int64),
        attributes=pd.DataFrame(index=pd.RangeIndex(len(ids))))
    data.signup[:] = data.first_event_time()
    return data


def repeat_purchase_retention(customers: np.ndarray, time_us: np.ndarray, *, as_of_us: int,
                              period: str = "month", mode: str = "recurring",
                              return_on: str = "on") -> RetentionTable:
    """Repeat-purchase cohorts (e.g. the CDNOW log): cohort = first-purchase month, a return =
    a purchase in period k (period 0 holds the first purchase, so it is 100%)."""
    data = purchase_log_events(customers, time_us)
    return retention(data, as_of_us=as_of_us, cohort_by="first_event", period=period,
                     mode=mode, return_on=return_on)
