"""An A/B test over time: exposures by arm and the cumulative effect with its interval. Pure.

At each cut-off (the end of a UTC day since the first assignment; the end of every 7th day
when the test ran longer than ``MAX_DAILY_POINTS`` days) the data is what stood then: the users
assigned before the cut-off, and of their events only those before it. The effect at a cut-off
is the analysis's own test (``experiments.data``: proportions, Welch, CUPED, sequential or the
ratio delta method) applied to that data, so the last point equals the final result whenever the
cut-off lies after the last event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from events.frame import US_PER_DAY, UserEvents
from experiments import stats
from experiments.data import (
    Assignment,
    MetricSpec,
    RandomizedSettings,
    _effect,
    metric_values,
)

MAX_DAILY_POINTS = 60  # longer tests are read weekly


def cutoffs(first_us: int, last_us: int) -> tuple[list[int], str]:
    """Ends of the days (or weeks) from the day of ``first_us`` through the one holding
    ``last_us``: µs times, and "day" or "week"."""
    day0 = (first_us // US_PER_DAY) * US_PER_DAY
    days = int((last_us - day0) // US_PER_DAY) + 1
    step, unit = (1, "day") if days <= MAX_DAILY_POINTS else (7, "week")
    ends = [day0 + k * US_PER_DAY for k in range(step, days + 1, step)]
    if not ends or ends[-1] < day0 + days * US_PER_DAY:
        ends.append(day0 + days * US_PER_DAY)
    return ends, unit


def _day_label(end_us: int) -> str:
    """The date of the last day before ``end_us`` (ISO): the data runs through that day."""
    return str(np.datetime64(end_us - 1, "us").astype("datetime64[D]"))


def exposures(assignment: Assignment, ends: Sequence[int]) -> dict[str, list[int]]:
    """Users assigned to each arm before each cut-off (cumulative)."""
    out: dict[str, list[int]] = {}
    for k, arm in enumerate(assignment.arms):
        times = np.sort(assignment.time[assignment.arm == k])
        out[arm] = np.searchsorted(times, np.asarray(ends, dtype=np.int64),
                                   side="left").astype(int).tolist()
    return out


def effect_at(ue: UserEvents, assignment: Assignment, metric: MetricSpec,
              settings: RandomizedSettings, end_us: int, arm: int) -> tuple[stats.Effect, int, int]:
    """Arm ``arm`` against control on the data before ``end_us``: (effect, n control, n arm)."""
    keep = assignment.time < end_us
    users, arms, times = assignment.user[keep], assignment.arm[keep], assignment.time[keep]
    control, treat = arms == 0, arms == arm
    if metric.kind == "ratio":
        num = metric_values(ue, users, times, metric.numerator,  # type: ignore[arg-type]
                            until_us=end_us)
        den = metric_values(ue, users, times, metric.denominator,  # type: ignore[arg-type]
                            until_us=end_us)
        effect = stats.ratio_effect(stats.RatioArmStats.from_values(num[control], den[control]),
                                    stats.RatioArmStats.from_values(num[treat], den[treat]),
                                    alpha=settings.alpha)
    else:
        y = metric_values(ue, users, times, metric, until_us=end_us)
        pre = (metric_values(ue, users, times, metric, pre_days=settings.cuped_pre_days)
               if settings.cuped_pre_days > 0 else None)
        effect = _effect(y[control], y[treat], metric, settings,
                         pre[control] if pre is not None else None,
                         pre[treat] if pre is not None else None)
    return effect, int(control.sum()), int(treat.sum())


def timeline(ue: UserEvents, assignment: Assignment, metric: MetricSpec,
             settings: RandomizedSettings) -> dict[str, Any]:
    """Exposures by arm and the primary metric's cumulative effect per treatment arm, at each
    cut-off from the first assignment to the last event."""
    if len(assignment.user) == 0 or ue.n_events == 0:
        return {"unit": "day", "dates": [], "exposures": {}, "effects": {}}
    last = max(int(ue.time.max()), int(assignment.time.max()))
    ends, unit = cutoffs(int(assignment.time.min()), last)
    effects: dict[str, list[dict[str, Any]]] = {}
    for k in range(1, len(assignment.arms)):
        points = []
        for end in ends:
            effect, n_control, n_arm = effect_at(ue, assignment, metric, settings, end, k)
            e = effect.to_dict()
            points.append({"date": _day_label(end), "n_control": n_control, "n_arm": n_arm,
                           "status": e.get("status"), "reason": e.get("reason"),
                           "absolute": e.get("absolute"), "absolute_ci": e.get("absolute_ci"),
                           "relative": e.get("relative"), "relative_ci": e.get("relative_ci"),
                           "p_value": e.get("p_value")})
        effects[assignment.arms[k]] = points
    return stats.jsonable({
        "unit": unit, "metric": metric.name, "method": "data truncated at each cut-off: "
        "users assigned before it and their events before it",
        "dates": [_day_label(e) for e in ends], "ends_us": ends,
        "exposures": exposures(assignment, ends), "effects": effects,
        "control": assignment.arms[0], "alpha": settings.alpha})
