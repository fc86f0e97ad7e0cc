"""The out-of-sample check: does a segment found on the calibration window hold its revenue
per user on the holdout window? Pure."""

from __future__ import annotations

import copy
import math
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from events.frame import US_PER_DAY, UserEvents

from .value import HELD_RATIO, Z95, _as_mask, _mean_signal, to_us


def window_revenue(data: UserEvents, start: int, end: int) -> np.ndarray:
    sel = (data.time >= start) & (data.time < end)
    return np.bincount(data.user[sel], weights=data.revenue[sel], minlength=data.n_users)


def _ratio_delta(cal: np.ndarray, hold: np.ndarray) -> tuple[float | None, float | None,
                                                             float | None]:
    """Paired ratio mean(hold)/mean(cal) with a delta-method 95% interval on its log."""
    n = len(cal)
    if n == 0 or cal.mean() <= 0:
        return None, None, None
    mc, mh = float(cal.mean()), float(hold.mean())
    ratio = mh / mc
    if mh <= 0 or n < 2:
        return ratio, None, None
    cov = np.cov(np.vstack([cal, hold]), ddof=1)
    var = (cov[1, 1] / mh**2 + cov[0, 0] / mc**2 - 2 * cov[0, 1] / (mh * mc)) / n
    se = math.sqrt(max(var, 0.0))
    return ratio, ratio * math.exp(-Z95 * se), ratio * math.exp(Z95 * se)


def holdout_check(
    calibration_mask: np.ndarray,
    data: UserEvents,
    split: int | datetime | pd.Timestamp | np.datetime64,
    end: int | datetime | pd.Timestamp | np.datetime64,
    *,
    start: int | datetime | pd.Timestamp | np.datetime64 | None = None,
    min_n: int = 30,
    seed: int = 0,
    n_boot: int = 1000,
    max_rel_width: float = 0.5,
    shared: dict[Any, Any] | None = None,
) -> dict[str, Any]:
    """Did the segment's value hold out of sample?

    Value = revenue per member per 30 days, in the calibration window ``[start, split)``
    (default ``start = split - (end - split)``, same length as the holdout) and the holdout
    window ``[split, end)``, for the members (the mask, defined on calibration data) and for all
    users who signed up before ``split``. ``held`` = the two intervals overlap AND the ratio
    holdout / calibration is within [0.5, 2].

    ``shared``: an empty dict that the caller passes to every call on the same ``data`` (one
    refresh); what does not depend on the mask (the per-user window revenues and the all-users
    group) is then computed once and reused. The results are the same as without it.
    """
    mask = _as_mask(calibration_mask, data.n_users)
    split_us, end_us = to_us(split), to_us(end)
    if end_us <= split_us:
        raise ValueError("end must be after split")
    start_us = split_us - (end_us - split_us) if start is None else to_us(start)
    if start_us >= split_us:
        raise ValueError("start must be before split")
    key = ("holdout", id(data), start_us, split_us, end_us, min_n, seed, n_boot, max_rel_width)
    reuse = shared.get(key) if shared is not None else None
    if reuse is not None:
        cal_rev, hold_rev = reuse
    else:
        cal_rev = window_revenue(data, start_us, split_us)
        hold_rev = window_revenue(data, split_us, end_us)
        if shared is not None:
            shared[key] = (cal_rev, hold_rev)
    return holdout_from_revenues(
        mask, cal_rev, hold_rev, data.signup, start_us, split_us, end_us, min_n=min_n,
        seed=seed, n_boot=n_boot, max_rel_width=max_rel_width, shared=shared)


def holdout_from_revenues(
    mask: np.ndarray,
    calwindow_revenue: np.ndarray,
    holdwindow_revenue: np.ndarray,
    signup: np.ndarray,
    start_us: int,
    split_us: int,
    end_us: int,
    *,
    min_n: int = 30,
    seed: int = 0,
    n_boot: int = 1000,
    max_rel_width: float = 0.5,
    shared: dict[Any, Any] | None = None,
) -> dict[str, Any]:
    """``holdout_check`` from per-user revenues in the calibration ``[start, split)`` and
    holdout ``[split, end)`` windows (sums in event order) and per-user signups."""
    mask = _as_mask(mask, len(signup))
    key = ("holdout_base", id(calwindow_revenue), id(holdwindow_revenue), start_us, split_us,
           end_us, min_n, seed, n_boot, max_rel_width)
    reuse = shared.get(key) if shared is not None else None
    if reuse is not None:
        cal_rev, hold_rev, base = reuse
    else:
        cal_scale = 30 * US_PER_DAY / (split_us - start_us)
        hold_scale = 30 * US_PER_DAY / (end_us - split_us)
        cal_rev = calwindow_revenue * cal_scale
        hold_rev = holdwindow_revenue * hold_scale
    unit = "revenue per user per 30 days"
    kw = {"seed": seed, "n_boot": n_boot, "min_n": min_n, "max_rel_width": max_rel_width}

    def group(rows: np.ndarray, who: str) -> dict[str, Any]:
        cal = _mean_signal(f"{who}_calibration", cal_rev[rows], unit, empty="no users", **kw)
        hold = _mean_signal(f"{who}_holdout", hold_rev[rows], unit, empty="no users", **kw)
        ratio, low, high = _ratio_delta(cal_rev[rows], hold_rev[rows])
        overlap = False
        if None not in (cal.low, cal.high, hold.low, hold.high):
            overlap = cal.low <= hold.high and hold.low <= cal.high
        return {"n": int(rows.sum()), "calibration": cal.to_dict(), "holdout": hold.to_dict(),
                "ratio": ratio, "ratio_low": low, "ratio_high": high, "overlap": bool(overlap)}

    seg = group(mask, "segment")
    if reuse is None:
        base = group(np.asarray(signup).astype(np.int64) < split_us, "all_users")
        if shared is not None:
            shared[key] = (cal_rev, hold_rev, base)
    return holdout_verdict(seg, copy.deepcopy(base), start_us, split_us, end_us, unit,
                           min_n=min_n)  # callers own their result


def holdout_verdict(seg: dict[str, Any], base: dict[str, Any], start_us: int, split_us: int,
                    end_us: int, unit: str, *, min_n: int = 30) -> dict[str, Any]:
    """The holdout result from the segment's and all users' groups (``n``, ``calibration``,
    ``holdout``, ``ratio``, ``ratio_low``, ``ratio_high``, ``overlap``)."""
    ratio = seg["ratio"]
    held = bool(seg["overlap"] and ratio is not None and HELD_RATIO[0] <= ratio <= HELD_RATIO[1])
    cal_v, hold_v = seg["calibration"]["estimate"], seg["holdout"]["estimate"]
    warning = f"small sample: n={seg['n']} (< {min_n})" if seg["n"] < min_n else None
    if seg["n"] == 0:
        sentence = "Not held: the segment has no members."
    elif ratio is None:
        sentence = (f"Not held: the {seg['n']} members had no revenue in the calibration "
                    "period, so there was no value to hold.")
    else:
        verdict = "Held" if held else "Not held"
        overlap = "intervals overlap" if seg["overlap"] else "intervals do not overlap"
        sentence = (f"{verdict}: the {seg['n']} members earned {cal_v:.2f} per member per 30 "
                    f"days in the calibration period and {hold_v:.2f} in the holdout "
                    f"({ratio:.2f}x; {overlap}).")
        if base["ratio"] is not None:
            sentence += f" All users over the same windows: {base['ratio']:.2f}x."
    if warning:
        sentence += f" Caution: {warning}."
    relative = (ratio / base["ratio"] if ratio is not None and base["ratio"] else None)
    return {
        "calibration_window": [start_us, split_us],
        "holdout_window": [split_us, end_us],
        "unit": unit,
        "segment": seg,
        "all_users": base,
        "ratio": ratio,
        "ratio_vs_all_users": relative,
        "held": held,
        "warning": warning,
        "sentence": sentence,
    }
