"""Interval helpers shared by the behaviour and value analytics. Pure (numpy and scipy only).

Two Wilson score intervals live here on purpose, each keeping the exact floats of its callers:

* ``wilson``: vectorized, any ``alpha`` (funnel, path and discovery rates); the interval is
  pinned to 0 when ``k == 0`` and to 1 when ``k == n``.
* ``wilson_interval``: one proportion at 95%, statsmodels' ``proportion_confint(...,
  method="wilson")`` step by step (the value signals).
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np
from scipy import stats


def finite_or_none(value: Any) -> float | None:
    """A plain float, or None for None, NaN and ±inf."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def z_value(alpha: float) -> float:
    """The two-sided normal quantile for ``alpha`` (1.96 for 0.05)."""
    return NormalDist().inv_cdf(1 - alpha / 2)


def wilson(k: np.ndarray | int, n: np.ndarray | int, alpha: float = 0.05
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wilson score interval (estimate, low, high); NaN where n == 0. Vectorized."""
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    z = z_value(alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = np.where(k <= 0, 0.0, np.clip(centre - half, 0, 1))
    high = np.where(k >= n, 1.0, np.clip(centre + half, 0, 1))
    return p, np.where(n > 0, low, np.nan), np.where(n > 0, high, np.nan)


_WILSON_Z = stats.norm.isf(0.025)  # what proportion_confint(alpha=0.05) uses


def wilson_interval(successes: int, trials: int) -> tuple[float, float]:
    """``proportion_confint(successes, trials, alpha=0.05, method="wilson")`` of statsmodels:
    its formula step by step (so the same floats), without its per-call overhead."""
    q = successes / trials
    crit = _WILSON_Z
    crit2 = crit**2
    denom = 1 + crit2 / trials
    center = (q + crit2 / (2 * trials)) / denom
    dist = crit * np.sqrt(q * (1.0 - q) / trials + crit2 / (4.0 * trials**2))
    dist /= denom
    return float(np.clip(center - dist, 0, 1)), float(np.clip(center + dist, 0, 1))
