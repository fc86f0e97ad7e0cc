"""Value signals per segment, each with a 95% interval and a warning when it is not actionable.

Pure: numpy, pandas, scipy and statsmodels only; no Django. Everything is vectorized over
users and events (``np.bincount`` on the dense user codes of ``UserEvents``).

Definitions
-----------
* Events after ``as_of`` are ignored; times are µs since the epoch (UTC).
* **Last period**: events with ``as_of - period_days < time <= as_of``. A user is *active* when
  they have at least one event there; ``revenue_per_active_user`` is the mean revenue in that
  period over active users.
* **Historical LTV at H days**: a user's revenue from events with ``time < signup + H days``
  (revenue logged before the signup attribute, a data quirk, counts as lifetime revenue). It is
  averaged only over **matured** users, ``signup + H days <= as_of``, so every user in the mean
  had the full H days to spend.
* **Retention on day N** (D1/D7/D30): the user has a *return event* in ``[start + N days,
  start + N+1 days)``. ``start`` is the signup, or with a ``RetentionDefinition`` naming a
  start event, the user's first such event at or before ``as_of`` (users without one are never
  eligible). Return events: any event, or the definition's ``return_events`` (a dataset's
  default is its activity events: a monthly charge is not a return visit). A user is
  **eligible** only when that whole window is in the past, ``start + (N+1) days <= as_of``;
  the rate is retained / eligible.
* **Conversion**: the user has at least one outcome event (``outcome`` names one or more event
  names) by ``as_of``.
* **Cost to serve**: mean cost in the last period per active user (same basis as
  ``revenue_per_active_user``, so the two give a margin); only when the data has cost.
* **Lift vs baseline** (LTV90 and conversion): ratio segment / baseline. Interval by the delta
  method on the log ratio, treating segment and baseline as independent:
  ``se(log R)^2 = se_s^2 / s^2 + se_b^2 / b^2``. The segment is usually part of the baseline,
  which correlates them positively, so this interval is conservative (slightly too wide).

Intervals
---------
Proportions use Wilson (statsmodels' formula, inlined: ``intervals.wilson_interval``). Means of
skewed money values use a percentile bootstrap (vectorized, seeded): only the nonzero values are
resampled (the number of nonzero draws in a resample of n is Binomial(n, k/n)), which is exact
and fast on sparse revenue. When a sample has more than ``BOOTSTRAP_MAX_NONZERO`` nonzero values
the Student t interval is used instead: the sample is then far inside the range where the
central limit theorem holds and the bootstrap would be slow.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from events.event_kinds import RetentionDefinition
from events.frame import US_PER_DAY, UserEvents

from .intervals import finite_or_none, wilson_interval

Z95 = float(stats.norm.ppf(0.975))
HORIZONS = (30, 90, 365)
RETENTION_DAYS = (1, 7, 30)
TOP_EVENTS = 20
EVENT_PREFIX = "event:"
BOOTSTRAP_MAX_NONZERO = 5_000
BOOT_BATCH_DRAWS = 4_000_000
PARALLEL_MIN_EVENTS = 500_000  # user_features splits its work over two threads from here
HELD_RATIO = (0.5, 2.0)
METHODS = ("wilson", "t", "bootstrap", "delta", "count")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(value: int | float | datetime | pd.Timestamp | np.datetime64) -> int:
    """Microseconds since the epoch from an int, a tz-aware datetime/Timestamp or datetime64."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError("a time cannot be a bool")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return int(value)
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[us]").astype(np.int64))
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("times must be timezone-aware")
        return (value - EPOCH) // timedelta(microseconds=1)
    raise TypeError(f"cannot read a time from {type(value).__name__}")


@dataclass(frozen=True)
class Signal:
    """One value estimate with its 95% interval, sample size, method, unit and warning."""

    name: str
    estimate: float | None
    low: float | None
    high: float | None
    n: int
    method: str
    unit: str
    warning: str | None = None

    @property
    def rel_half_width(self) -> float | None:
        """Half the interval width relative to |estimate|; None when undefined."""
        if self.estimate is None or self.low is None or self.high is None or self.estimate == 0:
            return None
        return (self.high - self.low) / 2 / abs(self.estimate)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; non-finite numbers become None."""
        return {
            "name": self.name,
            "estimate": finite_or_none(self.estimate),
            "low": finite_or_none(self.low),
            "high": finite_or_none(self.high),
            "n": int(self.n),
            "method": self.method,
            "unit": self.unit,
            "warning": self.warning,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Signal:
        """Rebuild a signal from ``to_dict`` output."""
        return cls(
            name=str(payload["name"]),
            estimate=finite_or_none(payload.get("estimate")),
            low=finite_or_none(payload.get("low")),
            high=finite_or_none(payload.get("high")),
            n=int(payload.get("n", 0)),
            method=str(payload.get("method", "")),
            unit=str(payload.get("unit", "")),
            warning=payload.get("warning"),
        )


def as_signal(value: Signal | Mapping[str, Any]) -> Signal:
    """A ``Signal`` from a Signal or its dict form."""
    return value if isinstance(value, Signal) else Signal.from_dict(value)


def _make(
    name: str,
    estimate: float | None,
    low: float | None,
    high: float | None,
    n: int,
    method: str,
    unit: str,
    *,
    min_n: int,
    max_rel_width: float,
    reason: str | None = None,
) -> Signal:
    """Build a signal and attach the small-sample / too-wide / not-computable warnings."""
    estimate, low, high = finite_or_none(estimate), finite_or_none(low), finite_or_none(high)
    warnings: list[str] = []
    if estimate is None:
        warnings.append(reason or "not computable")
        low = high = None
    else:
        if reason:
            warnings.append(reason)
        if n < min_n:
            warnings.append(f"small sample: n={n} (< {min_n})")
        rel = Signal(name, estimate, low, high, n, method, unit).rel_half_width
        if rel is not None and rel > max_rel_width:
            warnings.append(f"interval too wide to act on: ±{rel * 100:.0f}%")
    return Signal(name, estimate, low, high, int(n), method, unit,
                  "; ".join(warnings) if warnings else None)


def _rng(seed: int, name: str) -> np.random.Generator:
    """A generator per (seed, signal name), so adding a signal never shifts another's draws."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def bootstrap_means(x: np.ndarray, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """Means of ``n_boot`` resamples of ``x``, drawing only its nonzero values (exact)."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n == 0:
        return np.full(n_boot, np.nan)
    nonzero = x[x != 0]
    k = len(nonzero)
    if k == 0:
        return np.zeros(n_boot)
    counts = rng.binomial(n, k / n, size=n_boot)
    cum = np.cumsum(counts)
    sums = np.empty(n_boot)
    first = 0
    while first < n_boot:  # batches keep the index matrix under BOOT_BATCH_DRAWS draws
        base = int(cum[first - 1]) if first else 0
        last = max(first + 1, int(np.searchsorted(cum, base + BOOT_BATCH_DRAWS, side="right")))
        batch = counts[first:last]
        idx = rng.integers(0, k, size=int(batch.sum()))
        rep = np.repeat(np.arange(last - first), batch)
        sums[first:last] = np.bincount(rep, weights=nonzero[idx], minlength=last - first)
        first = last
    return sums / n


def mean_interval(
    x: np.ndarray, rng: np.random.Generator | None, n_boot: int = 1000
) -> tuple[float | None, float | None, float | None, str]:
    """(mean, low, high, method): percentile bootstrap, or t when the sample is very large."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n == 0:
        return None, None, None, "bootstrap"
    estimate = float(x.mean())
    if np.count_nonzero(x) <= BOOTSTRAP_MAX_NONZERO:
        means = bootstrap_means(x, rng, n_boot)
        low, high = np.quantile(means, [0.025, 0.975])
        return estimate, float(low), float(high), "bootstrap"
    half = float(t_quantile_975(n - 1) * x.std(ddof=1) / math.sqrt(n))
    return estimate, estimate - half, estimate + half, "t"


def _mean_se(x: np.ndarray) -> float | None:
    return float(np.std(x, ddof=1) / math.sqrt(len(x))) if len(x) > 1 else None


def _interval_se(signal: Signal) -> float | None:
    """Standard error implied by a 95% interval (half-width / 1.96)."""
    if signal.low is None or signal.high is None:
        return None
    return (signal.high - signal.low) / (2 * Z95)


# ----------------------------------------------------------------------------- features


def _event_codes(data: UserEvents, outcome: str | Sequence[str] | None) -> np.ndarray:
    if outcome is None:
        return np.zeros(0, dtype=np.int64)
    names = [outcome] if isinstance(outcome, str) else list(outcome)
    codes = [data.event_code(name) for name in names]
    return np.array([c for c in codes if c >= 0], dtype=np.int64)


def user_features(
    data: UserEvents,
    as_of: int | datetime | pd.Timestamp | np.datetime64 | None = None,
    *,
    period_days: int = 30,
    outcome: str | Sequence[str] | None = None,
    horizons: Sequence[int] = HORIZONS,
    retention_days: Sequence[int] = RETENTION_DAYS,
    top_events: int = TOP_EVENTS,
    retention: RetentionDefinition | None = None,
) -> pd.DataFrame:
    """Per-user behaviour and value table (index = user code), computed once per refresh.

    Columns: n_events, active_days (distinct UTC days), first_seen, last_seen, signup,
    recency_days, tenure_days, revenue_total, revenue_period, active_period, cost_total,
    cost_period, ltv_H / matured_H per horizon, retained_dN / eligible_dN per retention day,
    converted, and ``event:<name>`` counts for the ``top_events`` most frequent event names.
    ``attrs`` records as_of, period_days, outcome, has_cost, horizons, retention days and the
    retention definition (``retention``: start and return events; None: signup, any event).
    """
    n = data.n_users
    default = data.time_max() or 0
    as_of_us = default if as_of is None else to_us(as_of)
    signup = data.signup.astype(np.int64)
    whole = default <= as_of_us
    if whole:
        # Nothing after as_of (the usual refresh): use the arrays as they are, no copies.
        time, event, revenue, cost = data.time, data.event, data.revenue, data.cost
        user = data.user  # int32: the sums below index with it, none multiplies it
        starts = data.starts
    else:
        keep = data.time <= as_of_us
        user = data.user[keep].astype(np.int64)
        time = data.time[keep]
        event = data.event[keep]
        revenue = data.revenue[keep]
        cost = data.cost[keep]
        starts = np.searchsorted(user, np.arange(n + 1), side="left")

    n_events = np.diff(starts)  # events are grouped by user
    any_event = len(user) > 0
    codes = _event_codes(data, outcome)

    def money(values: np.ndarray, idx: np.ndarray | None = None,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(user, amount, time) of the events with a nonzero amount. Sums over them equal sums
        over all events bit for bit: adding 0.0 never changes a float sum started at 0.0."""
        if idx is None:
            idx = np.flatnonzero(values != 0)
        return user[idx], values[idx], time[idx]

    def total(users: np.ndarray, amounts: np.ndarray, any_event: bool) -> np.ndarray:
        """Per-user sum; like ``np.bincount`` over all the selected events, which returns
        integer zeros when no event is selected at all."""
        if not any_event:
            return np.zeros(n, dtype=np.intp)
        return np.bincount(users, weights=amounts, minlength=n).astype(np.float64, copy=False)

    def by_signup() -> dict[str, Any]:
        """LTV and retention columns."""
        columns: dict[str, Any] = {}
        if since_task is not None:
            since = since_task.result()
        else:
            since = data.since_signup() if whole else time - signup[user]
        min_since = int(since.min()) if len(since) else 0
        for h in horizons:
            within = pay_since < h * US_PER_DAY
            columns[f"ltv_{h}"] = total(pay_user[within], pay_amount[within],
                                        any_event and min_since < h * US_PER_DAY)
            columns[f"matured_{h}"] = signup <= as_of_us - h * US_PER_DAY
        if len(retention_days):
            # One pass picks the events inside any retention window; each day then scans those.
            lo, hi = min(retention_days) * US_PER_DAY, (max(retention_days) + 1) * US_PER_DAY
            near = np.flatnonzero((since >= lo) & (since < hi))
            near_user, near_since = user[near], since[near]
            del near
        if defined:
            columns.update(defined_retention())
            return columns
        for d in retention_days:
            window = (near_since >= d * US_PER_DAY) & (near_since < (d + 1) * US_PER_DAY)
            columns[f"retained_d{d}"] = np.bincount(near_user[window], minlength=n) > 0
            columns[f"eligible_d{d}"] = signup <= as_of_us - (d + 1) * US_PER_DAY
        del since
        return columns

    defined = retention is not None and (retention.start_event is not None
                                         or retention.return_events is not None)

    def defined_retention() -> dict[str, Any]:
        """Retention columns from the definition's start and return events."""
        assert retention is not None
        out: dict[str, Any] = {}
        anchor = start_times(data, user, time, event, retention.start_event, signup)
        started = anchor != np.iinfo(np.int64).max
        pick = np.flatnonzero(return_lut(data, retention.return_events)[event])
        ret_user = user[pick]
        ret_since = time[pick] - anchor[ret_user]  # never-started users: far negative
        for d in retention_days:
            window = (ret_since >= d * US_PER_DAY) & (ret_since < (d + 1) * US_PER_DAY)
            out[f"retained_d{d}"] = np.bincount(ret_user[window], minlength=n) > 0
            out[f"eligible_d{d}"] = started & (anchor <= as_of_us - (d + 1) * US_PER_DAY)
        return out

    def by_name() -> dict[str, Any]:
        """Conversion and top-event columns (from the dataset's index of events by name)."""
        columns: dict[str, Any] = {}
        if whole:  # the dataset's index of events by name: only the outcome events are read
            converted = np.bincount(user[data.events_named(codes)], minlength=n) > 0
        else:
            wanted = np.zeros(len(data.event_names), dtype=bool)
            wanted[codes] = True
            converted = np.bincount(user[wanted[event]], minlength=n) > 0
        columns["converted"] = converted
        columns.update(_top_event_counts(data, user, event, n, top_events, whole))
        return columns

    # Independent parts; numpy releases the GIL in these loops, so on a large dataset the time
    # since signup and the name counts run on another core meanwhile (same results either way).
    pool = ThreadPoolExecutor(max_workers=1) if len(user) >= PARALLEL_MIN_EVENTS else None
    since_task = pool.submit(data.since_signup) if pool is not None and whole else None
    second = pool.submit(by_name) if pool is not None else None
    try:
        pay_user, pay_amount, pay_time = money(revenue,
                                               data.revenue_events() if whole else None)
        cost_user, cost_amount, cost_time = money(cost, data.cost_events() if whole else None)
        pay_since = pay_time - signup[pay_user]
        has = n_events > 0
        # A day starts at each user's first event and wherever the UTC day changes; the days
        # started per user are a sum over the user's slice of events.
        day = time // US_PER_DAY
        new_day = np.empty(len(user), dtype=np.int8)
        if len(user):
            np.not_equal(day[1:], day[:-1], out=new_day[1:], casting="unsafe")
            new_day[starts[:-1][has]] = 1
        del day
        active_days = np.zeros(n, dtype=np.int64)
        if has.any():
            active_days[has] = np.add.reduceat(new_day, starts[:-1][has], dtype=np.int64)
        del new_day
        first = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        last = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        first[has] = time[starts[:-1][has]]
        last[has] = time[starts[1:][has] - 1]

        def as_datetime(values: np.ndarray, valid: np.ndarray) -> pd.DatetimeIndex:
            stamps = values.astype("datetime64[us]")
            stamps[~valid] = np.datetime64("NaT", "us")
            return pd.DatetimeIndex(stamps).tz_localize("UTC")

        period_start = as_of_us - period_days * US_PER_DAY
        pay_period = pay_time > period_start
        cost_period = cost_time > period_start
        # Active in the period = the last event (times are sorted within a user) is in it.
        active_period = has & (last > period_start)
        any_in_period = bool(active_period.any())
        columns: dict[str, Any] = {
            "n_events": n_events,
            "active_days": active_days,
            "first_seen": as_datetime(first, has),
            "last_seen": as_datetime(last, has),
            "signup": as_datetime(signup, signup != np.iinfo(np.int64).max),
            "recency_days": np.where(has, (as_of_us - last) / US_PER_DAY, np.nan),
            "tenure_days": (as_of_us - signup) / US_PER_DAY,
            "revenue_total": total(pay_user, pay_amount, any_event),
            "revenue_period": total(pay_user[pay_period], pay_amount[pay_period], any_in_period),
            "active_period": active_period,
            "cost_total": total(cost_user, cost_amount, any_event),
            "cost_period": total(cost_user[cost_period], cost_amount[cost_period],
                                 any_in_period),
        }
        columns.update(by_signup())
        columns.update(second.result() if second is not None else by_name())
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    # The arrays are all new, so the frame can own them as they are (no consolidating copy).
    frame = pd.DataFrame(columns, index=pd.RangeIndex(n, name="user"), copy=False)
    frame.attrs.update(
        as_of=as_of_us,
        period_days=int(period_days),
        outcome=None if outcome is None else ([outcome] if isinstance(outcome, str)
                                              else list(outcome)),
        outcome_found=bool(len(codes)),
        has_cost=bool(data.has_cost),
        horizons=[int(h) for h in horizons],
        retention_days=[int(d) for d in retention_days],
        retention=None if retention is None else retention.to_dict(),
    )
    return frame


def return_lut(data: UserEvents, names: Sequence[str] | None) -> np.ndarray:
    """Per event code, whether it counts as a return (None: every event)."""
    lut = np.zeros(len(data.event_names), dtype=bool)
    if names is None:
        lut[:] = True
        return lut
    for name in names:
        code = data.event_code(name)
        if code >= 0:
            lut[code] = True
    return lut


def start_times(data: UserEvents, user: np.ndarray, time: np.ndarray, event: np.ndarray,
                start_event: str | None, signup: np.ndarray) -> np.ndarray:
    """Per user, when the retention clock starts (µs): the signup, or the first
    ``start_event`` among the given events (sorted by user, then time); int64 max when the
    user has none."""
    if start_event is None:
        return np.asarray(signup, dtype=np.int64)
    anchor = np.full(data.n_users, np.iinfo(np.int64).max, dtype=np.int64)
    code = data.event_code(start_event)
    if code < 0:
        return anchor
    pos = np.flatnonzero(event == code)
    who = user[pos]
    first = np.r_[True, who[1:] != who[:-1]] if len(pos) else np.zeros(0, bool)
    anchor[who[first]] = time[pos[first]]
    return anchor


def retention_unit(features: pd.DataFrame | Mapping[str, Any] | None, day: int) -> str:
    """The unit of a day-N retention signal, saying what counts as a return (``features``:
    the feature table, or its ``attrs["retention"]``)."""
    definition = features.attrs.get("retention") if isinstance(features, pd.DataFrame) \
        else features
    label = definition["label"] if definition else "any event"
    start = definition["start_event"] if definition else "signup"
    after = "" if start == "signup" else f" after {start}"
    return f"share active on day {day}{after} ({label})"


def _top_event_counts(data: UserEvents, user: np.ndarray, event: np.ndarray, n: int,
                      top_events: int, whole: bool) -> dict[str, np.ndarray]:
    """``event:<name>`` per-user counts of the ``top_events`` most frequent names, most
    frequent first (ties: by code). ``whole``: ``user``/``event`` are the dataset's own."""
    columns: dict[str, np.ndarray] = {}
    if not top_events or not len(event):
        return columns
    if whole:
        # The dataset's index of events by name: one count per user and name, name by name.
        positions, bounds = data.events_by_name()
        totals = np.diff(bounds)
        top = np.argsort(-totals, kind="stable")[:top_events]
        top = top[totals[top] > 0]
        for c in top:
            columns[f"{EVENT_PREFIX}{data.event_names[c]}"] = np.bincount(
                data.user[positions[bounds[c]:bounds[c + 1]]], minlength=n).astype(
                    np.int64, copy=False)
        return columns
    names = len(data.event_names)
    totals = np.bincount(event, minlength=names)
    top = np.argsort(-totals, kind="stable")[:top_events]
    top = top[totals[top] > 0]
    position = np.full(names, -1, dtype=np.int64)
    position[top] = np.arange(len(top))
    pos = position[event]
    if names <= top_events:  # every name that occurs is in the top: nothing to drop
        key = user * len(top) + pos
    else:
        sel = pos >= 0
        key = user[sel] * len(top) + pos[sel]
        del sel
    del pos
    counts = np.bincount(key, minlength=n * len(top)).reshape(n, len(top))
    del key
    counts = counts.astype(np.int64, copy=False)
    for j, c in enumerate(top):
        columns[f"{EVENT_PREFIX}{data.event_names[c]}"] = counts[:, j]
    return columns


# ----------------------------------------------------------------------------- signals


def _as_mask(mask: np.ndarray, n: int) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise TypeError("mask must be a boolean array")
    if mask.shape != (n,):
        raise ValueError(f"mask has shape {mask.shape}, expected ({n},)")
    return mask


def t_quantile_975(df: int) -> float:
    """``stats.t.ppf(0.975, df)`` without the distribution machinery (the same function,
    ``special.stdtrit``, so the same value)."""
    return float(special.stdtrit(df, 0.975))


def _wilson(
    name: str, successes: int, trials: int, unit: str, *, min_n: int, max_rel_width: float,
    empty: str,
) -> Signal:
    if trials == 0:
        return _make(name, None, None, None, 0, "wilson", unit, min_n=min_n,
                     max_rel_width=max_rel_width, reason=empty)
    low, high = wilson_interval(successes, trials)
    return _make(name, successes / trials, low, high, trials, "wilson", unit, min_n=min_n,
                 max_rel_width=max_rel_width)


def _mean_signal(
    name: str, x: np.ndarray, unit: str, *, seed: int, n_boot: int, min_n: int,
    max_rel_width: float, empty: str,
) -> Signal:
    # The generator only matters to a bootstrap; a large sample gets its t interval.
    boot = len(x) and np.count_nonzero(x) <= BOOTSTRAP_MAX_NONZERO
    estimate, low, high, method = mean_interval(x, _rng(seed, name) if boot else None, n_boot)
    return _make(name, estimate, low, high, len(x), method, unit, min_n=min_n,
                 max_rel_width=max_rel_width, reason=None if len(x) else empty)


def _lift(
    name: str, seg: tuple[float | None, float | None, int], base: tuple[float | None,
                                                                         float | None],
    unit: str, *, min_n: int, max_rel_width: float, unknown: str | None = None,
) -> Signal:
    """Ratio segment / baseline with a delta-method interval on the log ratio (independent)."""
    (s, se_s, n), (b, se_b) = seg, base
    kw = {"min_n": min_n, "max_rel_width": max_rel_width}
    if s is None:
        return _make(name, None, None, None, n, "delta", unit,
                     reason=unknown or "segment value unknown", **kw)
    if b is None or b == 0:
        return _make(name, None, None, None, n, "delta", unit,
                     reason="baseline value is zero or unknown", **kw)
    ratio = s / b
    if s <= 0 or b < 0 or se_s is None or se_b is None:
        return _make(name, ratio, None, None, n, "delta", unit,
                     reason="no interval: the ratio's log is undefined or a variance is unknown",
                     **kw)
    se_log = math.sqrt((se_s / s) ** 2 + (se_b / b) ** 2)
    return _make(name, ratio, ratio * math.exp(-Z95 * se_log), ratio * math.exp(Z95 * se_log),
                 n, "delta", unit, **kw)


def _baseline_part(
    baseline: Mapping[str, Any] | None, key: str, features: pd.DataFrame, analytic: Any
) -> tuple[float | None, float | None]:
    """(estimate, se) of the baseline for one signal: from the given dict or all users."""
    if baseline is None:
        return analytic(np.ones(len(features), dtype=bool))
    if key not in baseline:
        return None, None
    signal = as_signal(baseline[key])
    return signal.estimate, _interval_se(signal)


def segment_signals(
    mask: np.ndarray,
    features: pd.DataFrame,
    *,
    baseline: Mapping[str, Any] | None = None,
    period_days: int = 30,
    min_n: int = 30,
    max_rel_width: float = 0.5,
    seed: int = 0,
    n_boot: int = 1000,
) -> dict[str, Signal]:
    """Every value signal of one segment (boolean mask over ``features`` rows).

    Signals and their ``n``: size (members; count, no interval), share (of all rows; n = all
    rows; Wilson), revenue_per_active_user (members active in the last period; bootstrap),
    ltv_H (matured members; bootstrap), retention_dN (eligible members; Wilson), conversion
    (members; Wilson), cost_to_serve (active members; only when the data has cost),
    lift_vs_baseline_ltv_90 and lift_vs_baseline_conversion (delta method, see module doc).

    ``baseline`` is ``segment_signals`` output for all users (Signals or their dicts); lift uses
    its estimates and the standard errors implied by its intervals. Without it the baseline is
    all rows of ``features`` with analytic standard errors.
    """
    mask = _as_mask(mask, len(features))
    stored = features.attrs.get("period_days")
    if stored is not None and int(stored) != int(period_days):
        raise ValueError(f"features were computed with period_days={stored}, not {period_days}")
    kw = {"min_n": min_n, "max_rel_width": max_rel_width}
    boot = {"seed": seed, "n_boot": n_boot, **kw}
    # Every statistic below reads only the members' rows, taken once in row order: the same
    # values in the same order as masking each whole column, at the segment's size.
    members = np.flatnonzero(mask)
    size = len(members)
    total = len(features)

    def rows(column: str, dtype: Any = None) -> np.ndarray:
        values = features[column].to_numpy(dtype=dtype)
        return values if size == total else values[members]  # everyone: the column itself

    out: dict[str, Signal] = {}
    out["size"] = _make("size", float(size), None, None, size, "count", "users",
                        reason=None, **kw)
    out["share"] = _wilson("share", size, total, "share of all users", empty="no users", **kw)

    active = rows("active_period", bool)
    out["revenue_per_active_user"] = _mean_signal(
        "revenue_per_active_user", rows("revenue_period")[active],
        f"revenue per active user per {period_days} days",
        empty=f"no user active in the last {period_days} days", **boot)

    horizons = features.attrs.get("horizons") or [
        int(c.split("_")[1]) for c in features.columns if c.startswith("matured_")]
    ltv_rows: dict[int, np.ndarray] = {}
    for h in horizons:
        ltv_rows[h] = rows(f"ltv_{h}")[rows(f"matured_{h}", bool)]
        out[f"ltv_{h}"] = _mean_signal(
            f"ltv_{h}", ltv_rows[h],
            f"revenue per user in the first {h} days",
            empty=f"no user has {h} days of history", **boot)

    days = features.attrs.get("retention_days") or [
        int(c[len("eligible_d"):]) for c in features.columns if c.startswith("eligible_d")]
    for d in days:
        eligible = rows(f"eligible_d{d}", bool)
        retained = int(np.count_nonzero(eligible & rows(f"retained_d{d}", bool)))
        out[f"retention_d{d}"] = _wilson(
            f"retention_d{d}", retained, int(eligible.sum()), retention_unit(features, d),
            empty=f"no user is old enough for day-{d} retention (needs {d + 1} days)", **kw)

    converted = features["converted"].to_numpy(dtype=bool)
    converted_rows = converted[members]
    outcome = features.attrs.get("outcome")
    if outcome is None and "outcome" in features.attrs:
        out["conversion"] = _make("conversion", None, None, None, size, "wilson",
                                  "share converted", reason="no outcome event chosen", **kw)
    else:
        out["conversion"] = _wilson("conversion", int(np.count_nonzero(converted_rows)), size,
                                    "share converted", empty="no users in the segment", **kw)
        if outcome and not features.attrs.get("outcome_found", True):
            names = ", ".join(outcome)
            out["conversion"] = _make(
                "conversion", out["conversion"].estimate, out["conversion"].low,
                out["conversion"].high, size, "wilson", "share converted",
                reason=f"outcome event never occurs in the data: {names}", **kw)

    if features.attrs.get("has_cost", False):
        out["cost_to_serve"] = _mean_signal(
            "cost_to_serve", rows("cost_period")[active],
            f"cost per active user per {period_days} days",
            empty=f"no user active in the last {period_days} days", **boot)

    if 90 in horizons:
        ltv = features["ltv_90"].to_numpy()
        matured90 = features["matured_90"].to_numpy(dtype=bool)

        def ltv_stats(rows: np.ndarray) -> tuple[float | None, float | None]:
            x = ltv[rows & matured90]
            return (float(x.mean()) if len(x) else None), _mean_se(x)

        seg_x = ltv_rows[90]
        out["lift_vs_baseline_ltv_90"] = _lift(
            "lift_vs_baseline_ltv_90",
            (out["ltv_90"].estimate, _mean_se(seg_x), len(seg_x)),
            _baseline_part(baseline, "ltv_90", features, ltv_stats),
            "ratio of LTV90 to all users", **kw)

    known = out["conversion"].estimate is not None

    def conv_p(chosen: np.ndarray) -> tuple[float | None, float | None]:
        m = len(chosen)
        if m == 0 or not known:
            return None, None
        p = float(chosen.mean())
        return p, math.sqrt(p * (1 - p) / m)

    def conv_stats(rows: np.ndarray) -> tuple[float | None, float | None]:
        return conv_p(converted[rows])

    p, se = conv_p(converted_rows)
    out["lift_vs_baseline_conversion"] = _lift(
        "lift_vs_baseline_conversion", (p, se, size),
        _baseline_part(baseline, "conversion", features, conv_stats),
        "ratio of conversion to all users",
        unknown=None if known else out["conversion"].warning, **kw)
    return out


def signals_to_dict(signals: Mapping[str, Signal]) -> dict[str, dict[str, Any]]:
    """``{name: signal.to_dict()}`` for JSON storage."""
    return {name: signal.to_dict() for name, signal in signals.items()}
