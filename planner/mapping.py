"""Value models, measured: how a hypothesis's metric relates to value across users. Pure.

A relative lift ``L`` on a metric whose mean is ``x̄`` raises it by ``L·x̄``; with a linear
relation ``value = a + b·metric`` across users the mean value rises by ``b·L·x̄``, a relative
change of ``L · b·x̄/ȳ``. So the mapping is the elasticity at the means, ``e = b·x̄/ȳ``, and
the value's lift is the metric's lift times ``e``.

``b`` is the least-squares slope with a heteroskedasticity-robust (HC1) standard error, fitted
on a calibration split of the users and checked on the holdout split (the two slopes must agree
within their errors). The relation is observational: users who onboard may differ in other ways
from users who do not, so ``e`` is what the data shows, not a proof that moving the metric
moves value by as much.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from events.errors import FieldError

from .valuation import MEASURED_LEVEL, z_of

MIN_USERS = 30  # per split
AGREE_Z = 1.959963984540054  # holdout and calibration slopes agree within 95% (two-sided)


class MappingInvalid(FieldError):
    """Data from which no mapping can be measured; ``field`` says which input."""


@dataclass(frozen=True)
class SlopeFit:
    """Least squares ``value = a + b·metric`` with an HC1 standard error on ``b``."""

    n: int
    slope: float
    se: float
    low: float
    high: float
    intercept: float
    mean_x: float
    mean_y: float
    r2: float


@dataclass(frozen=True)
class MeasuredMapping:
    """The elasticity of value to the metric with its interval, and the out-of-sample check."""

    elasticity: float
    low: float
    high: float
    level: float
    calibration: SlopeFit
    holdout: SlopeFit
    holdout_elasticity: float
    holdout_z: float  # (holdout slope - calibration slope) / combined standard error
    holdout_agrees: bool
    holdout_share: float
    seed: int
    observational: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def slope_fit(x: np.ndarray, y: np.ndarray, level: float = MEASURED_LEVEL) -> SlopeFit:
    """OLS of ``y`` on ``x`` (with an intercept); HC1 robust standard error of the slope."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = len(x)
    if n < 3:
        raise MappingInvalid("users", f"{n} users: at least 3 are needed for a slope")
    mx, my = float(x.mean()), float(y.mean())
    dx = x - mx
    sxx = float(dx @ dx)
    if sxx <= 0:
        raise MappingInvalid("metric", "the metric takes one value for every user: no relation "
                                       "to value can be measured")
    slope = float(dx @ (y - my)) / sxx
    intercept = my - slope * mx
    resid = y - intercept - slope * x
    var = n / (n - 2) * float((dx * dx) @ (resid * resid)) / (sxx * sxx)
    se = math.sqrt(max(var, 0.0))
    z = z_of(level)
    dy = y - my
    syy = float(dy @ dy)
    r2 = 1 - float(resid @ resid) / syy if syy > 0 else 0.0
    return SlopeFit(n, slope, se, slope - z * se, slope + z * se, intercept, mx, my, r2)


def measure_mapping(x: np.ndarray, y: np.ndarray, *, holdout_share: float = 0.5, seed: int = 0,
                    level: float = MEASURED_LEVEL) -> MeasuredMapping:
    """The elasticity of ``y`` (value per user) to ``x`` (the metric per user), fitted on a
    random calibration split (seeded) and checked on the rest."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise MappingInvalid("metric", "one metric value and one value per user")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise MappingInvalid("metric", "the metric and the value must be finite numbers")
    rng = np.random.default_rng(seed)
    hold = rng.random(len(x)) < holdout_share
    n_cal, n_hold = int((~hold).sum()), int(hold.sum())
    if min(n_cal, n_hold) < MIN_USERS:
        raise MappingInvalid("segment", f"{len(x)} users with a full window: at least "
                                        f"{2 * MIN_USERS} are needed (a calibration and a holdout "
                                        "split)")
    cal = slope_fit(x[~hold], y[~hold], level)
    out = slope_fit(x[hold], y[hold], level)
    if cal.mean_y == 0:
        raise MappingInvalid("value_days", "the segment's mean value is 0: no relative change "
                                           "of value can be measured")
    factor = cal.mean_x / cal.mean_y
    low, high = sorted((cal.low * factor, cal.high * factor))
    combined = math.hypot(cal.se, out.se)
    z = (out.slope - cal.slope) / combined if combined > 0 else 0.0
    holdout_e = out.slope * out.mean_x / out.mean_y if out.mean_y != 0 else float("nan")
    return MeasuredMapping(
        elasticity=cal.slope * factor, low=low, high=high, level=level, calibration=cal,
        holdout=out, holdout_elasticity=holdout_e, holdout_z=z,
        holdout_agrees=abs(z) <= AGREE_Z, holdout_share=holdout_share, seed=seed)
