"""Retention of a segment's members: the day-N curve, per-user flags and the cohort table. Pure."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from events.frame import US_PER_DAY, UserEvents

from .value import _as_mask, to_us


def _cohort_start(signup: np.ndarray, cohort: str) -> np.ndarray:
    """Start (µs) of the UTC calendar week (Monday) or month containing each signup."""
    if cohort == "week":
        days = np.floor_divide(signup, US_PER_DAY)
        monday = days - (days + 3) % 7  # 1970-01-01 was a Thursday (weekday 3)
        return monday * US_PER_DAY
    if cohort == "month":
        months = signup.astype("datetime64[us]").astype("datetime64[M]")
        return months.astype("datetime64[us]").astype(np.int64)
    raise ValueError("cohort must be 'week' or 'month'")


def retention_curve(
    mask: np.ndarray,
    data: UserEvents,
    as_of: int | datetime | pd.Timestamp | np.datetime64,
    cohort: str = "week",
    max_periods: int = 12,
    mode: str = "on",
    returns: np.ndarray | None = None,
) -> pd.DataFrame:
    """Cohort retention table: one row per signup cohort plus a size-weighted average row.

    Columns: ``cohort`` (start date, or "average"), ``size`` and one column per period
    0..max_periods-1 with the share retained. Periods are per user: period p is
    ``[signup + p*L, signup + (p+1)*L)`` with L = 7 days (week cohorts) or 30 days (month).
    ``mode="on"``: an event in period p; ``"on_or_after"``: an event in period p or later. A
    user counts in period p only once that window has closed (``signup + (p+1)*L <= as_of``);
    cells with no such user are NaN. The average row pools cohorts, i.e. weights each cohort
    by its users counted in that period. ``returns``: per event code, whether it counts as a
    return (``value.return_lut``; None: every event).
    """
    if mode not in {"on", "on_or_after"}:
        raise ValueError("mode must be 'on' or 'on_or_after'")
    as_of_us = to_us(as_of)
    mask = _as_mask(mask, data.n_users)
    signup = data.signup.astype(np.int64)
    members = np.flatnonzero(mask & (signup <= as_of_us))
    retained = retention_flags(members, data, as_of_us, cohort, max_periods, mode, returns)
    return retention_table(signup[members], retained, as_of_us, cohort, max_periods, mode)


def retention_flags(members: np.ndarray, data: UserEvents, as_of_us: int, cohort: str = "week",
                    max_periods: int = 12, mode: str = "on", returns: np.ndarray | None = None,
                    ) -> np.ndarray:
    """(len(members), max_periods) booleans: whether each user (codes, ascending) was retained
    in each period (see ``retention_curve``; ``returns``: the event codes that count). Per
    user: the same for any set of members."""
    length = (7 if cohort == "week" else 30) * US_PER_DAY
    signup = data.signup.astype(np.int64)
    periods = np.arange(max_periods)
    m = len(members)
    # The members' events, in event order: their slices starts[u]:starts[u+1] one after the
    # other (members ascending), so only those events are touched, not the whole dataset.
    lo = data.starts[members]
    counts = data.starts[members + 1] - lo
    owner = np.repeat(np.arange(m), counts)
    events = np.arange(len(owner)) + np.repeat(lo - (np.cumsum(counts) - counts), counts)
    keep = data.time[events] <= as_of_us
    if returns is not None:
        keep &= np.asarray(returns, dtype=bool)[data.event[events]]
    pos = owner[keep]
    events = events[keep]
    period = np.floor_divide(data.time[events] - signup[data.user[events]], length)
    if mode == "on":
        sel = (period >= 0) & (period < max_periods)
        flags = np.zeros(m * max_periods, dtype=bool)
        flags[pos[sel] * max_periods + period[sel]] = True
        return flags.reshape(m, max_periods)
    last = np.full(m, -1, dtype=np.int64)
    if len(pos):
        ends = np.flatnonzero(np.r_[pos[1:] != pos[:-1], True])
        last[pos[ends]] = period[ends]  # events are time-sorted within a user
    return last[:, None] >= periods[None, :]


def retention_table(member_signup: np.ndarray, retained: np.ndarray, as_of_us: int,
                    cohort: str = "week", max_periods: int = 12, mode: str = "on",
                    ) -> pd.DataFrame:
    """The cohort table of ``retention_curve`` from the members' signups and retention flags
    (``retention_flags``), members in user order."""
    length = (7 if cohort == "week" else 30) * US_PER_DAY
    periods = np.arange(max_periods)
    member_signup = np.asarray(member_signup, dtype=np.int64)
    m = len(member_signup)
    starts_us = _cohort_start(member_signup, cohort)
    eligible = member_signup[:, None] <= as_of_us - (periods[None, :] + 1) * length

    cohorts, code = np.unique(starts_us, return_inverse=True)
    c = len(cohorts)
    flat = (code[:, None] * max_periods + periods[None, :]).ravel()
    hits = np.bincount(flat, weights=(retained & eligible).ravel(), minlength=c * max_periods)
    base = np.bincount(flat, weights=eligible.ravel(), minlength=c * max_periods)
    hits, base = hits.reshape(c, max_periods), base.reshape(c, max_periods)
    return retention_table_from_counts(cohorts, np.bincount(code, minlength=c), hits, base, m,
                                       cohort, max_periods, mode)


def retention_counts(member_signup: np.ndarray, retained: np.ndarray, as_of_us: int,
                     cohort: str = "week", max_periods: int = 12,
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The integer partial of ``retention_table``: (cohort starts ascending, users per cohort,
    retained-and-eligible and eligible users per cohort and period). Partials of disjoint
    member sets add up (``retention_table_from_counts`` turns the sum into the table)."""
    length = (7 if cohort == "week" else 30) * US_PER_DAY
    periods = np.arange(max_periods)
    member_signup = np.asarray(member_signup, dtype=np.int64)
    eligible = member_signup[:, None] <= as_of_us - (periods[None, :] + 1) * length
    cohorts, code = np.unique(_cohort_start(member_signup, cohort), return_inverse=True)
    c = len(cohorts)
    flat = (code[:, None] * max_periods + periods[None, :]).ravel()
    hits = np.bincount(flat, weights=(retained & eligible).ravel(), minlength=c * max_periods)
    base = np.bincount(flat, weights=eligible.ravel(), minlength=c * max_periods)
    return (cohorts, np.bincount(code, minlength=c).astype(np.int64),
            hits.reshape(c, max_periods).astype(np.int64),
            base.reshape(c, max_periods).astype(np.int64))


def retention_table_from_counts(cohorts: np.ndarray, sizes: np.ndarray, hits: np.ndarray,
                                base: np.ndarray, members: int, cohort: str = "week",
                                max_periods: int = 12, mode: str = "on") -> pd.DataFrame:
    """``retention_table`` from its counts (cohorts ascending; see ``retention_counts``)."""
    length = (7 if cohort == "week" else 30) * US_PER_DAY
    periods = np.arange(max_periods)
    c = len(cohorts)
    hits = np.asarray(hits, dtype=np.float64).reshape(c, max_periods)
    base = np.asarray(base, dtype=np.float64).reshape(c, max_periods)
    m = int(members)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(base > 0, hits / base, np.nan)
        pooled = np.where(base.sum(0) > 0, hits.sum(0) / base.sum(0), np.nan)
    labels = pd.to_datetime(cohorts, unit="us", utc=True).strftime("%Y-%m-%d").tolist()
    table = pd.DataFrame(np.vstack([share, pooled[None, :]]) if c else pooled[None, :],
                         columns=list(periods))
    table.insert(0, "size", np.r_[np.asarray(sizes, dtype=np.int64), m].astype(np.int64))
    table.insert(0, "cohort", [*labels, "average"])
    table.attrs.update(cohort=cohort, mode=mode, period_days=length // US_PER_DAY)
    return table
