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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from events.frame import US_PER_DAY, UserEvents
from segments.analytics.intervals import finite_or_none

WEEK_US = 7 * US_PER_DAY


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
        return {
            "cohort_by": self.cohort_by, "period": self.period, "mode": self.mode,
            "return_on": self.return_on, "as_of_us": int(self.as_of_us),
            "periods": list(range(self.n_periods)),
            "rows": [{"cohort": c, "start_us": int(s), "size": int(n),
                      "counts": [int(v) if o else None for v, o in zip(cnt, obs, strict=True)],
                      "shares": [finite_or_none(v) for v in share],
                      "complete": [bool(v) for v in comp]}
                     for c, s, n, cnt, obs, share, comp in zip(
                         self.cohorts, self.cohort_starts_us, self.sizes, self.counts, observed,
                         self.shares, self.complete, strict=True)],
            "average": list(self.average), "average_users": list(self.average_users),
        }


def _codes(ue: UserEvents, names: Sequence[str] | None) -> np.ndarray | None:
    if names is None:
        return None
    lut = np.zeros(len(ue.event_names), dtype=bool)
    for name in names:
        code = ue.event_code(name)
        if code >= 0:
            lut[code] = True
    return lut


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
) -> RetentionTable:
    """Cohort x period retention matrix; see the module docstring for the semantics."""
    options = RetentionOptions(as_of_us=as_of_us, cohort_by=cohort_by, period=period,
                               mode=mode, return_on=return_on, max_periods=max_periods)
    part = retention_partial(ue, options, users=users, return_events=return_events,
                             cohort_event=cohort_event, cohorts_from_us=cohorts_from_us,
                             cohorts_to_us=cohorts_to_us)
    return retention_from_partials([part], options)


@dataclass(frozen=True)
class RetentionOptions:
    """How ``retention`` counts, which its partials and their sum must agree on."""

    as_of_us: int
    cohort_by: str = "signup"
    period: str = "week"
    mode: str = "recurring"
    return_on: str = "on"
    max_periods: int | None = None


@dataclass
class RetentionPartial:
    """Cohort sizes and retained counts of some users (one user-hash partition): cohort row i
    is the absolute period ``lo_period + i``; counts are (cohorts, periods). Sums of these
    over disjoint users are the counts of all of them."""

    lo_period: int
    size: np.ndarray
    counts: np.ndarray


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
    """The counts of ``retention`` for the users of ``ue`` (None: no user is in a cohort)."""
    as_of_us, cohort_by, period = options.as_of_us, options.cohort_by, options.period
    mode, return_on, max_periods = options.mode, options.return_on, options.max_periods
    if cohort_by not in {"signup", "first_event"}:
        raise ValueError("cohort_by must be 'signup' or 'first_event'")
    if mode not in {"recurring", "first_time"}:
        raise ValueError("mode must be 'recurring' or 'first_time'")
    if return_on not in {"on", "on_or_after"}:
        raise ValueError("return_on must be 'on' or 'on_or_after'")
    if period not in {"week", "month"}:
        raise ValueError("period must be 'week' or 'month'")
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


def retention_from_partials(parts: Sequence[RetentionPartial | None],
                            options: RetentionOptions) -> RetentionTable:
    """``retention`` from the partials of disjoint sets of users (integer sums: exact)."""
    as_of_us, cohort_by, period = options.as_of_us, options.cohort_by, options.period
    mode, return_on, max_periods = options.mode, options.return_on, options.max_periods
    found = [p for p in parts if p is not None]
    if not found:
        p = int(max_periods or 0)
        empty = np.zeros((0, p))
        return RetentionTable(cohort_by, period, mode, return_on, int(as_of_us), (), (), (),
                              empty.astype(np.int64), empty, empty.astype(bool),
                              average=(None,) * p, average_users=(0,) * p)
    lo_period = min(p.lo_period for p in found)
    hi_period = max(p.lo_period + len(p.size) - 1 for p in found)
    last_period = int(period_index(np.array([as_of_us]), period)[0])
    n_periods = int(max_periods) if max_periods else last_period - lo_period + 1
    n_cohorts = hi_period - lo_period + 1
    size = np.zeros(n_cohorts, dtype=np.int64)
    counts = np.zeros((n_cohorts, n_periods), dtype=np.int64)
    for p in found:
        at = p.lo_period - lo_period
        rows, width = p.counts.shape
        size[at:at + rows] += p.size
        counts[at:at + rows, :width] += p.counts
    if mode == "first_time":
        counts[:, 0] = size

    absolute = lo_period + np.arange(n_cohorts)[:, None] + np.arange(n_periods)[None, :]
    observed = period_start(absolute, period) <= as_of_us
    complete = period_start(absolute + 1, period) - 1 <= as_of_us
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
        average=tuple(finite_or_none(a) for a in average), average_users=tuple(int(d) for d in den))


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
