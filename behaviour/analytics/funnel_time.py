"""Funnel conversion over time: by the week of each user's entry. Pure (no Django).

* **Entry week**: the Monday-to-Sunday week (UTC) holding the step-1 time of the user's
  counted attempt (the attempt ``funnels`` reads the user's steps from). Users who never
  entered, or whose attempts were all excluded, are not counted.
* **Converted**: the user reached the last step. **Still in window**: not converted and their
  latest step-1 event is within the window of the data's end (``funnels``' rule): they may
  still convert, so they are counted apart and left out of the rate's denominator.
* **Rate** = converted / (entered - still in window), with its Wilson interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from behaviour.analytics.funnels import Rate
from events.frame import US_PER_DAY

# 1970-01-01 (day 0) was a Thursday: Monday is 3 days before.
_THURSDAY = 3


def week_start_day(time_us: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of the Monday (UTC) starting each time's week."""
    days = np.floor_divide(np.asarray(time_us, dtype=np.int64), US_PER_DAY)
    return days - (days + _THURSDAY) % 7


@dataclass(frozen=True)
class EntryWeek:
    week: str  # the Monday, ISO date
    entered: int
    converted: int
    in_window: int  # not converted yet, window still open at the data's end
    not_converted: int  # window closed without reaching the last step
    rate: Rate  # converted / (entered - in_window)

    def to_dict(self) -> dict[str, Any]:
        return {"week": self.week, "entered": self.entered, "converted": self.converted,
                "in_window": self.in_window, "not_converted": self.not_converted,
                "rate": self.rate.to_dict()}


def conversion_by_week(furthest: np.ndarray, in_window: np.ndarray, step_times: np.ndarray,
                       *, users: np.ndarray | None = None,
                       alpha: float = 0.05) -> tuple[EntryWeek, ...]:
    """One row per entry week with any entrant, oldest first (see the module docstring)."""
    from behaviour.analytics.funnel_partials import week_counts

    return weeks_from_counts(week_counts(furthest, in_window, step_times, users), alpha)


def weeks_from_counts(weeks: dict[int, np.ndarray], alpha: float = 0.05
                      ) -> tuple[EntryWeek, ...]:
    """The rows from [entered, converted, still in window] per Monday (days since 1970-01-01),
    as partitions count them (``funnel_partials.week_counts``) and the merge adds them."""
    out = []
    for day in sorted(weeks):
        n, conv, wait = (int(x) for x in weeks[day])
        label = str(np.datetime64(day, "D"))
        out.append(EntryWeek(week=label, entered=n, converted=conv, in_window=wait,
                             not_converted=n - conv - wait, rate=Rate.of(conv, n - wait, alpha)))
    return tuple(out)
