"""What a fanned-out refresh must know before its maps: the holdout split. Pure.

The refresh fans out in two passes over partials that do not grow with users
(``segments.analytics.partials``); the old per-user-rows map and reduce are gone.
"""

from __future__ import annotations

from .refresh import HOLDOUT_FRACTION


def refresh_split(as_of: int, start: int | None) -> int:
    """The holdout split of ``run_refresh``: ``start`` is the earliest event time (None: none)."""
    start = as_of if start is None else int(start)
    return int(as_of - (as_of - start) * HOLDOUT_FRACTION)
