"""Funnels as integer partials over user-hash partitions. Pure (no Django).

A funnel's per-user stage (``funnels.funnel_users``) needs only the user's own events, so each
partition can count its own users. What a partition returns, and the merge adds, per series
(everyone, each breakdown value, each breakdown segment):

* users per furthest step, and of those the ones still inside their window; users excluded;
* per step (and for the whole funnel) the time-to-convert state: the number of users, the
  exact sum of their durations (integer µs), the counts in the histogram bins and in the
  labelled bins, and the durations for the quantiles (below);
* for the main funnel, per entry week: users entered, converted and still in their window.

Everything above is a count or an integer sum, so the merge is exact and equals the single
process, except the **quantiles** (median, p25, p75, p90, median from step 1), which cannot be
merged from bins. The rule, chosen so the result never depends on how users are partitioned:

* While a statistic covers at most ``EXACT_MAX`` users in all (summed over the partitions),
  each partition sends its durations as distinct (value, count) pairs and the merge computes
  the quantiles exactly as the single process does (the same numbers, bit for bit).
* Above that, the merge uses a log-bucket sketch: a duration ``d`` µs (``d >= 1``) falls in
  bucket ``i = ceil(log_g(d))`` with ``g = (1 + a) / (1 - a)``, ``a = SKETCH_ALPHA`` = 0.5%,
  and stands for ``2 g^i / (g + 1)``, which is within ``a`` of every value of its bucket (0 has
  its own bucket). A quantile interpolates between two estimated order statistics as numpy's
  default rule does between the exact ones, so it is within 0.5% (relative) of the exact
  quantile. The sketch has one count per bucket up to the window (about 3,000 buckets for a
  90-day window), whatever the number of users. ``TimeToConvert.quantile_relative_error``
  says which: 0 for exact, 0.005 for the sketch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from events.threads import map_in_threads
from segments.analytics.intervals import finite_or_none

PARALLEL_MIN_USERS = 200_000  # from this many users a series' statistics use two threads
EXACT_MAX = 50_000  # users per statistic (all partitions) up to which quantiles are exact
SKETCH_ALPHA = 0.005
_GAMMA = (1 + SKETCH_ALPHA) / (1 - SKETCH_ALPHA)
_LOG_GAMMA = math.log(_GAMMA)
US_PER_S = 1_000_000
_SPLIT = 1_000_000  # durations summed as whole seconds and remainders: no int64 overflow


# ----------------------------------------------------------------------------- quantiles
def sketch_size(window_us: int) -> int:
    """Buckets of the sketch of durations up to ``window_us``."""
    return int(sketch_keys(np.array([max(int(window_us), 1)]))[0]) + 2


def sketch_keys(us: np.ndarray) -> np.ndarray:
    """Bucket per duration (µs): 0 for 0, else ``ceil(log_g(d)) + 1``."""
    us = np.asarray(us, dtype=np.int64)
    keys = np.zeros(len(us), dtype=np.int64)
    pos = us > 0
    keys[pos] = np.ceil(np.log(us[pos].astype(np.float64)) / _LOG_GAMMA).astype(np.int64) + 1
    return keys


def _bucket_value(key: int) -> float:
    return 0.0 if key == 0 else 2.0 * _GAMMA ** (key - 1) / (_GAMMA + 1)


@dataclass
class Quantiles:
    """Durations (µs) for quantiles: exact (``values``, raw when ``counts`` is None, else
    distinct with counts) or a ``sketch`` (counts per bucket)."""

    n: int
    values: np.ndarray | None = None
    counts: np.ndarray | None = None
    sketch: np.ndarray | None = None

    @classmethod
    def of(cls, us: np.ndarray, window_us: int, cap: int | None) -> Quantiles:
        """``cap`` None: keep the raw values (one process); else distinct pairs up to ``cap``
        values, a sketch above."""
        us = np.asarray(us, dtype=np.int64)
        if cap is None:
            return cls(len(us), values=us)
        if len(us) <= cap:
            v, c = np.unique(us, return_counts=True)
            return cls(len(us), values=v, counts=c.astype(np.int64))
        return cls(len(us), sketch=np.bincount(sketch_keys(us), minlength=sketch_size(window_us)))

    @property
    def exact(self) -> bool:
        return self.sketch is None

    def to_sketch(self, window_us: int) -> np.ndarray:
        if self.sketch is not None:
            return self.sketch
        size = sketch_size(window_us)
        if self.values is None or not len(self.values):
            return np.zeros(size, np.int64)
        weights = None if self.counts is None else self.counts.astype(np.float64)
        return np.bincount(sketch_keys(self.values), weights=weights,
                           minlength=size).astype(np.int64)

    def merge(self, other: Quantiles, window_us: int, cap: int) -> Quantiles:
        n = self.n + other.n
        if self.exact and other.exact and n <= cap:
            values = np.r_[self._values(), other._values()]
            counts = np.r_[self._counts(), other._counts()]
            v, inverse = np.unique(values, return_inverse=True)
            return Quantiles(n, values=v, counts=np.bincount(inverse, weights=counts,
                                                             minlength=len(v)).astype(np.int64))
        a, b = self.to_sketch(window_us), other.to_sketch(window_us)
        return Quantiles(n, sketch=a + b)

    def _values(self) -> np.ndarray:
        return np.zeros(0, np.int64) if self.values is None else self.values

    def _counts(self) -> np.ndarray:
        if self.values is None:
            return np.zeros(0, np.int64)
        return np.ones(len(self.values), np.int64) if self.counts is None else self.counts

    def array(self) -> np.ndarray:
        """The exact durations (µs), as many as ``n``."""
        v = self._values()
        return v if self.counts is None else np.repeat(v, self.counts)

    def _order_stats(self, ranks: np.ndarray) -> np.ndarray:
        cum = np.cumsum(self.sketch)
        keys = np.searchsorted(cum, ranks, side="right")
        return np.array([_bucket_value(int(k)) for k in keys])

    def percentiles_seconds(self, qs: Sequence[float]) -> list[float]:
        """numpy's default percentiles (linear between order statistics) of the durations in
        seconds; from the sketch, the same rule on the buckets' values."""
        if self.exact:
            return [float(x) for x in np.percentile(self.array() / US_PER_S, list(qs))]
        out = []
        for q in qs:
            h = (self.n - 1) * q / 100
            lo = math.floor(h)
            lo_v, hi_v = self._order_stats(np.array([lo, min(lo + 1, self.n - 1)]))
            out.append(float(lo_v + (h - lo) * (hi_v - lo_v)) / US_PER_S)
        return out

    def median_seconds(self) -> float:
        """The median in seconds (from µs: the median first, as the single process did)."""
        if self.exact:
            return float(np.median(self.array())) / US_PER_S
        return self.percentiles_seconds([50])[0]

    def median_of_seconds(self) -> float:
        """The median of the durations in seconds (seconds first)."""
        if self.exact:
            return float(np.median(self.array() / US_PER_S))
        return self.percentiles_seconds([50])[0]


# ----------------------------------------------------------------------------- time to convert
def total_us(us: np.ndarray) -> int:
    """The exact sum of durations (µs) as a Python int (no overflow)."""
    us = np.asarray(us, dtype=np.int64)
    return int((us // _SPLIT).sum()) * _SPLIT + int((us % _SPLIT).sum())


@dataclass
class TimePartial:
    """Time-to-convert state of one statistic: see the module docstring."""

    n: int
    total_us: int
    hist: np.ndarray  # counts in the histogram bins (edges from the window)
    bins: np.ndarray  # counts in funnels.TTC_BINS
    dt: Quantiles
    from_start: Quantiles

    @classmethod
    def of(cls, dt_us: np.ndarray, from_start_us: np.ndarray, window_us: int,
           cap: int | None) -> TimePartial:
        from .funnels import TTC_BINS, hist_edges

        secs = dt_us / US_PER_S
        edges = hist_edges(window_us)
        # np.histogram sorts its input for uneven bins; a search per value into the few edges
        # does not (the last bin is closed, as in np.histogram).
        counts = np.zeros(len(edges) - 1, dtype=np.int64)
        if len(secs):
            slot = np.searchsorted(np.asarray(edges), secs, side="right") - 1
            slot[secs == edges[-1]] = len(edges) - 2
            inside = (slot >= 0) & (slot < len(edges) - 1)
            counts = np.bincount(slot[inside], minlength=len(edges) - 1).astype(np.int64)
        labelled = np.searchsorted(np.array([b[1] for b in TTC_BINS[1:]]), secs, side="right")
        return cls(n=len(dt_us), total_us=total_us(dt_us), hist=counts,
                   bins=np.bincount(labelled, minlength=len(TTC_BINS)).astype(np.int64),
                   dt=Quantiles.of(dt_us, window_us, cap),
                   from_start=Quantiles.of(from_start_us, window_us, cap))

    def merge(self, other: TimePartial, window_us: int, cap: int) -> TimePartial:
        return TimePartial(self.n + other.n, self.total_us + other.total_us,
                           self.hist + other.hist, self.bins + other.bins,
                           self.dt.merge(other.dt, window_us, cap),
                           self.from_start.merge(other.from_start, window_us, cap))

    def finish(self, window_us: int) -> Any:
        from .funnels import TTC_BINS, TimeToConvert, hist_edges

        have = self.n > 0
        q = self.dt.percentiles_seconds([25, 75, 90]) if have else [None, None, None]
        return TimeToConvert(
            p25_seconds=finite_or_none(q[0]) if have else None,
            p75_seconds=finite_or_none(q[1]) if have else None,
            p90_seconds=finite_or_none(q[2]) if have else None,
            bins=tuple((b[0], int(c)) for b, c in zip(TTC_BINS, self.bins, strict=True)),
            n=int(self.n),
            median_seconds=finite_or_none(self.dt.median_of_seconds()) if have else None,
            mean_seconds=finite_or_none(self.total_us / (self.n * US_PER_S)) if have else None,
            median_from_start_seconds=finite_or_none(self.from_start.median_seconds())
            if have else None,
            histogram_edges_seconds=tuple(hist_edges(window_us)),
            histogram_counts=tuple(int(c) for c in self.hist),
            quantile_relative_error=0.0 if self.dt.exact and self.from_start.exact
            else SKETCH_ALPHA)

    # ----- flat arrays (a partition's part) ------------------------------------------------
    def to_arrays(self, out: dict[str, Any], key: str) -> None:
        out[f"{key}/n"] = np.array([self.n, self.total_us // _SPLIT, self.total_us % _SPLIT],
                                   np.int64)
        out[f"{key}/hist"] = self.hist
        out[f"{key}/bins"] = self.bins
        for name, q in (("dt", self.dt), ("fs", self.from_start)):
            if q.exact:
                out[f"{key}/{name}_v"] = q._values()
                out[f"{key}/{name}_c"] = q._counts()
            else:
                out[f"{key}/{name}_sk"] = q.sketch

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any], key: str) -> TimePartial:
        n, whole, rest = (int(x) for x in arrays[f"{key}/n"])

        def quantiles(name: str) -> Quantiles:
            if f"{key}/{name}_sk" in arrays:
                return Quantiles(n, sketch=np.asarray(arrays[f"{key}/{name}_sk"], np.int64))
            return Quantiles(n, values=np.asarray(arrays[f"{key}/{name}_v"], np.int64),
                             counts=np.asarray(arrays[f"{key}/{name}_c"], np.int64))
        return cls(n, whole * _SPLIT + rest, np.asarray(arrays[f"{key}/hist"], np.int64),
                   np.asarray(arrays[f"{key}/bins"], np.int64), quantiles("dt"),
                   quantiles("fs"))


# ----------------------------------------------------------------------------- one series
@dataclass
class SeriesPartial:
    """One funnel series' counts (see the module docstring)."""

    at_step: np.ndarray  # users whose furthest step is k (k = 0..K)
    at_window: np.ndarray  # of those, still inside their window
    excluded: int
    steps: list[TimePartial]  # step 2..K: from the previous step and from step 1
    whole: TimePartial  # step 1 to the last step, converted users

    @classmethod
    def of(cls, furthest: np.ndarray, in_window: np.ndarray, excluded: np.ndarray,
           step_times: np.ndarray, window_us: int, group: np.ndarray | None,
           cap: int | None) -> SeriesPartial:
        k_steps = step_times.shape[0]
        f = furthest if group is None else furthest[group]
        w = in_window if group is None else in_window[group]
        def step(k: int) -> TimePartial:  # k in 2..K; K + 1: step 1 to the last, converted
            if k > k_steps:
                done = furthest >= k_steps
                if group is not None:
                    done &= group
                whole = step_times[k_steps - 1, done] - step_times[0, done]
                return TimePartial.of(whole, whole, window_us, cap)
            rows = furthest >= k
            if group is not None:
                rows &= group
            dt = step_times[k - 1, rows] - step_times[k - 2, rows]
            return TimePartial.of(dt, step_times[k - 1, rows] - step_times[0, rows],
                                  window_us, cap)
        # Each statistic apart (numpy's selections and searches release the GIL): on two
        # threads when there are many users.
        times = map_in_threads(step, range(2, k_steps + 2),
                               workers=None if len(furthest) >= PARALLEL_MIN_USERS else 1)
        return cls(at_step=np.bincount(f, minlength=k_steps + 1).astype(np.int64),
                   at_window=np.bincount(f[w], minlength=k_steps + 1).astype(np.int64),
                   excluded=int(excluded.sum() if group is None else excluded[group].sum()),
                   steps=times[:-1], whole=times[-1])

    def merge(self, other: SeriesPartial, window_us: int, cap: int) -> SeriesPartial:
        return SeriesPartial(
            self.at_step + other.at_step, self.at_window + other.at_window,
            self.excluded + other.excluded,
            [a.merge(b, window_us, cap) for a, b in zip(self.steps, other.steps, strict=True)],
            self.whole.merge(other.whole, window_us, cap))

    def finish(self, label: str, labels: Sequence[str], alpha: float, window_us: int) -> Any:
        from .funnels import FunnelSeries, FunnelStep, Rate

        k_steps = len(labels)
        at_step, at_window = self.at_step, self.at_window
        reached = np.cumsum(at_step[::-1])[::-1]  # reached[k] = users with furthest >= k
        steps = []
        for k in range(1, k_steps + 1):
            last = k == k_steps
            steps.append(FunnelStep(
                index=k, label=labels[k - 1], users=int(reached[k]),
                conversion_from_previous=Rate.of(int(reached[k]), int(reached[k - 1] if k > 1
                                                                     else reached[1]), alpha),
                conversion_from_start=Rate.of(int(reached[k]), int(reached[1]), alpha),
                dropped=0 if last else int(at_step[k] - at_window[k]),
                in_window=0 if last else int(at_window[k]),
                time_to_convert=None if k == 1 else self.steps[k - 2].finish(window_us)))
        return FunnelSeries(label=label, entered=int(reached[1]), excluded=self.excluded,
                            in_window=int(at_window.sum()), steps=tuple(steps),
                            time_to_convert=self.whole.finish(window_us))

    def to_arrays(self, out: dict[str, Any], key: str) -> None:
        out[f"{key}/at_step"] = self.at_step
        out[f"{key}/at_window"] = self.at_window
        out[f"{key}/excluded"] = np.array([self.excluded], np.int64)
        for i, step in enumerate(self.steps):
            step.to_arrays(out, f"{key}/t{i + 2}")
        self.whole.to_arrays(out, f"{key}/whole")

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any], key: str, k_steps: int) -> SeriesPartial:
        return cls(np.asarray(arrays[f"{key}/at_step"], np.int64),
                   np.asarray(arrays[f"{key}/at_window"], np.int64),
                   int(arrays[f"{key}/excluded"][0]),
                   [TimePartial.from_arrays(arrays, f"{key}/t{k}")
                    for k in range(2, k_steps + 1)],
                   TimePartial.from_arrays(arrays, f"{key}/whole"))


# ----------------------------------------------------------------------------- the funnel
@dataclass
class FunnelPartial:
    """A partition's funnel: the main series, its breakdown values' series (by label), the
    breakdown segments' series (in the order given) and the entry weeks' counts."""

    overall: SeriesPartial
    groups: dict[str, SeriesPartial] = field(default_factory=dict)
    segments: list[SeriesPartial] = field(default_factory=list)
    weeks: dict[int, np.ndarray] = field(default_factory=dict)  # Monday (day) -> [n, conv, wait]

    def merge(self, other: FunnelPartial, window_us: int, cap: int) -> FunnelPartial:
        groups = dict(self.groups)
        for label, series in other.groups.items():
            groups[label] = groups[label].merge(series, window_us, cap) if label in groups \
                else series
        weeks = dict(self.weeks)
        for day, counts in other.weeks.items():
            weeks[day] = weeks[day] + counts if day in weeks else counts
        return FunnelPartial(
            self.overall.merge(other.overall, window_us, cap), groups,
            [a.merge(b, window_us, cap) for a, b in zip(self.segments, other.segments,
                                                          strict=True)], weeks)

    def to_arrays(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        self.overall.to_arrays(out, "all")
        labels = sorted(self.groups)
        out["group_labels"] = np.array(labels, dtype=str)
        for i, label in enumerate(labels):
            self.groups[label].to_arrays(out, f"g{i}")
        out["segments"] = np.array([len(self.segments)], np.int64)
        for i, series in enumerate(self.segments):
            series.to_arrays(out, f"s{i}")
        days = sorted(self.weeks)
        out["week_day"] = np.array(days, np.int64)
        out["week_counts"] = np.array([self.weeks[d] for d in days], np.int64).reshape(-1, 3)
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any], k_steps: int) -> FunnelPartial:
        labels = [str(x) for x in np.asarray(arrays["group_labels"]).tolist()]
        return cls(
            SeriesPartial.from_arrays(arrays, "all", k_steps),
            {label: SeriesPartial.from_arrays(arrays, f"g{i}", k_steps)
             for i, label in enumerate(labels)},
            [SeriesPartial.from_arrays(arrays, f"s{i}", k_steps)
             for i in range(int(arrays["segments"][0]))],
            {int(d): np.asarray(c, np.int64) for d, c in zip(
                np.asarray(arrays["week_day"]).tolist(), np.asarray(arrays["week_counts"]),
                strict=True)})


def week_counts(furthest: np.ndarray, in_window: np.ndarray, step_times: np.ndarray,
                users: np.ndarray | None = None) -> dict[int, np.ndarray]:
    """Per entry week (its Monday, days since 1970-01-01): [entered, converted, still in
    window] (``funnel_time``'s rule)."""
    from .funnel_time import week_start_day

    k_steps = step_times.shape[0]
    entered = np.asarray(furthest) >= 1
    if users is not None:
        entered &= np.asarray(users, dtype=bool)
    if not entered.any():
        return {}
    week = week_start_day(step_times[0, entered])
    converted = np.asarray(furthest)[entered] >= k_steps
    waiting = np.asarray(in_window, dtype=bool)[entered] & ~converted
    weeks, inverse = np.unique(week, return_inverse=True)
    n = np.bincount(inverse, minlength=len(weeks))
    conv = np.bincount(inverse, weights=converted, minlength=len(weeks)).astype(np.int64)
    wait = np.bincount(inverse, weights=waiting, minlength=len(weeks)).astype(np.int64)
    return {int(d): np.array([n[i], conv[i], wait[i]], np.int64)
            for i, d in enumerate(weeks.tolist())}


def breakdown_groups(values: np.ndarray, entered: np.ndarray,
                     users: np.ndarray | None) -> list[tuple[str, np.ndarray]]:
    """(label, mask) per breakdown value with any entered user in scope, labels sorted."""
    import pandas as pd

    raw = pd.Series(np.asarray(values, dtype=object))
    labels = raw.where(pd.notna(raw), "(none)").astype(str)
    codes, uniques = pd.factorize(labels, sort=True)
    out = []
    for c, label in enumerate(uniques):
        group = (codes == c) & entered
        if users is not None:
            group &= users
        if group.any():
            out.append((str(label), group))
    return out


def funnel_partial(ue: Any, steps: Sequence[Any], options: Any, *,
                   users: np.ndarray | None = None, breakdown: np.ndarray | None = None,
                   segment_masks: Sequence[np.ndarray] = (),
                   cap: int = EXACT_MAX) -> FunnelPartial:
    """One partition's funnel partial (``options``: ``funnels.FunnelOptions``)."""
    from .funnels import US_PER_DAY, funnel_users

    window_us = int(round(options.window_days * US_PER_DAY))
    fu = funnel_users(ue, steps, options, users=users)
    scope = None if users is None else np.asarray(users, dtype=bool)
    part = FunnelPartial(
        SeriesPartial.of(fu.furthest, fu.in_window, fu.excluded, fu.step_times, window_us,
                         None, cap),
        weeks=week_counts(fu.furthest, fu.in_window, fu.step_times, scope))
    if breakdown is not None:
        entered = (fu.furthest > 0) | fu.excluded
        for label, group in breakdown_groups(breakdown, entered, scope):
            part.groups[label] = SeriesPartial.of(fu.furthest, fu.in_window, fu.excluded,
                                                  fu.step_times, window_us, group, cap)
    for mask in segment_masks:
        scoped = mask if scope is None else (np.asarray(mask, bool) & scope)
        su = funnel_users(ue, steps, options, users=scoped)
        part.segments.append(SeriesPartial.of(su.furthest, su.in_window, su.excluded,
                                              su.step_times, window_us, None, cap))
    return part


def funnel_from_partials(parts: Iterable[Mapping[str, Any]], steps: Sequence[Any],
                         options: Any, segment_names: Sequence[str] = (), *,
                         alpha: float = 0.05, cap: int = EXACT_MAX) -> dict[str, Any]:
    """The funnel's result (as ``funnels.funnel(...).to_dict()`` with one series per
    breakdown segment appended, as ``behaviour_services.compute``) from the partitions'
    ``FunnelPartial.to_arrays`` parts, folded one at a time."""
    from .funnel_time import weeks_from_counts
    from .funnels import DEFINITION, US_PER_DAY, FunnelResult, step_spec

    labels = [step_spec(s).display for s in steps]
    k_steps = len(labels)
    window_us = int(round(options.window_days * US_PER_DAY))
    acc: FunnelPartial | None = None
    for arrays in parts:
        part = FunnelPartial.from_arrays(arrays, k_steps)
        acc = part if acc is None else acc.merge(part, window_us, cap)
    if acc is None:
        raise ValueError("no partitions to merge")
    empty = np.zeros(0, np.int16)
    result = FunnelResult(
        over_time=weeks_from_counts(acc.weeks, alpha), steps=tuple(labels), mode=options.mode,
        window_days=float(options.window_days), exclusions=tuple(options.exclusions),
        as_of_us=int(options.as_of_us), alpha=alpha,
        overall=acc.overall.finish("all", labels, alpha, window_us),
        breakdown=tuple(acc.groups[g].finish(g, labels, alpha, window_us)
                        for g in sorted(acc.groups)),
        definition=DEFINITION[options.mode], furthest=empty, in_window_users=empty.astype(bool),
        excluded_users=empty.astype(bool)).to_dict()
    for name, series in zip(segment_names, acc.segments, strict=True):
        result["breakdown"].append({**series.finish("all", labels, alpha, window_us).to_dict(),
                                    "label": f"segment: {name}"})
    return result
