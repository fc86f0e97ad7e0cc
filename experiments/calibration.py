"""Forecast calibration: how the effects a team expects compare with what its tests measure.
Pure (no Django): forecasts in, figures out.

For every concluded hypothesis with a stated interval:

* **predicted against realized**: the expected relative lift against the measured one;
* **interval coverage**: the share of realized effects inside the stated interval, read as an
  80% interval (a calibrated team lands about 80% inside), with a Wilson 95% interval;
* **ratio**: realized over predicted as a ratio of means (sum realized / sum predicted; robust
  to forecasts near zero, where per-hypothesis ratios explode), with a seeded percentile
  bootstrap 95% interval over hypotheses. 0.5 = the effects came out at half the forecast;
* **Brier score** for "will it validate": the forecast probability is the stated belief that
  the effect is positive, ``P(effect > 0)`` under a two-piece normal with median the expected
  lift whose stated interval holds 80% (the spread of the side facing zero), and the outcome
  is 1 when the hypothesis was validated, 0 otherwise (invalidated or inconclusive). 0 is
  perfect; always saying 50% scores 0.25.

A forecast without an interval (no bounds, or low = high) cannot be scored: it is excluded and
counted. An inconclusive test measures no lift: it counts for the Brier score only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

STATED_LEVEL = 0.80
Z95 = 1.959963984540054
BOOTSTRAP = 2000
MIN_FOR_SHRINK = 5  # concluded forecasts with a measured lift before shrinking applies


@dataclass(frozen=True)
class Forecast:
    """One concluded hypothesis: what was expected, what was measured, how it ended."""

    key: int
    label: str
    author: str
    evidence: str  # the evidence level when the forecast was made
    predicted: float
    low: float | None
    high: float | None
    validated: bool
    realized: float | None = None
    realized_low: float | None = None
    realized_high: float | None = None

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None and self.high > self.low


def forecast_probability(predicted: float, low: float, high: float,
                         level: float = STATED_LEVEL) -> float:
    """The forecast's ``P(effect > 0)``: a two-piece normal, median ``predicted``, whose
    ``[low, high]`` holds ``level``; the side facing zero sets the spread."""
    z = NormalDist().inv_cdf(0.5 + level / 2)
    if predicted == 0:
        return 0.5
    spread = (predicted - low) / z if predicted > 0 else (high - predicted) / z
    if spread <= 0:
        return 1.0 if predicted > 0 else 0.0
    return NormalDist().cdf(predicted / spread)


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion k / n."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class GroupCalibration:
    """The figures of one group of forecasts (everyone, one author, one evidence level)."""

    name: str
    forecasts: int  # scored (with an interval)
    measured: int  # of those, with a measured lift
    inside: int
    coverage: float | None
    coverage_low: float | None
    coverage_high: float | None
    ratio: float | None
    ratio_low: float | None
    ratio_high: float | None
    brier: float | None
    validated: int
    mean_probability: float | None
    points: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Calibration:
    overall: GroupCalibration
    by_author: list[GroupCalibration]
    by_evidence: list[GroupCalibration]
    excluded: int  # concluded forecasts without an interval
    excluded_labels: list[str]
    level: float = STATED_LEVEL
    bootstrap: int = BOOTSTRAP
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"overall": self.overall.to_dict(),
                "by_author": [g.to_dict() for g in self.by_author],
                "by_evidence": [g.to_dict() for g in self.by_evidence],
                "excluded": self.excluded, "excluded_labels": self.excluded_labels,
                "level": self.level, "bootstrap": self.bootstrap, "seed": self.seed}


def ratio_of_means(realized: np.ndarray, predicted: np.ndarray, *, seed: int = 0,
                   resamples: int = BOOTSTRAP) -> tuple[float | None, float | None, float | None]:
    """sum(realized) / sum(predicted) and its percentile bootstrap 95% interval (resampling
    forecasts; resamples whose predicted sum is 0 are left out)."""
    total = float(predicted.sum())
    if len(predicted) == 0 or total == 0:
        return None, None, None
    ratio = float(realized.sum()) / total
    if len(predicted) < 2:
        return ratio, None, None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(predicted), size=(resamples, len(predicted)))
    num = realized[idx].sum(axis=1)
    den = predicted[idx].sum(axis=1)
    ok = den != 0
    reps = num[ok] / den[ok]
    low, high = np.quantile(reps, [0.025, 0.975])
    return ratio, float(low), float(high)


def group(name: str, forecasts: Sequence[Forecast], *, level: float = STATED_LEVEL,
          seed: int = 0, resamples: int = BOOTSTRAP) -> GroupCalibration:
    """Coverage, ratio and Brier score of ``forecasts`` (those with an interval)."""
    scored = [f for f in forecasts if f.has_interval]
    measured = [f for f in scored if f.realized is not None]
    inside = sum(1 for f in measured if f.low <= f.realized <= f.high)  # type: ignore[operator]
    coverage = inside / len(measured) if measured else None
    cov_low, cov_high = wilson(inside, len(measured)) if measured else (None, None)
    ratio, r_low, r_high = ratio_of_means(
        np.array([f.realized for f in measured], dtype=np.float64),
        np.array([f.predicted for f in measured], dtype=np.float64), seed=seed,
        resamples=resamples)
    probs = [forecast_probability(f.predicted, f.low, f.high, level)  # type: ignore[arg-type]
             for f in scored]
    brier = (sum((p - float(f.validated)) ** 2 for p, f in zip(probs, scored, strict=True))
             / len(scored)) if scored else None
    points = [{"key": f.key, "label": f.label, "author": f.author, "evidence": f.evidence,
               "predicted": f.predicted, "low": f.low, "high": f.high, "realized": f.realized,
               "realized_low": f.realized_low, "realized_high": f.realized_high,
               "validated": f.validated, "probability": p,
               "inside": (f.realized is not None and f.low <= f.realized <= f.high)}  # type: ignore[operator]
              for p, f in zip(probs, scored, strict=True)]
    return GroupCalibration(
        name=name, forecasts=len(scored), measured=len(measured), inside=inside,
        coverage=coverage, coverage_low=cov_low, coverage_high=cov_high, ratio=ratio,
        ratio_low=r_low, ratio_high=r_high, brier=brier,
        validated=sum(1 for f in scored if f.validated),
        mean_probability=(sum(probs) / len(probs)) if probs else None, points=points)


def calibrate(forecasts: Sequence[Forecast], *, level: float = STATED_LEVEL, seed: int = 0,
              resamples: int = BOOTSTRAP) -> Calibration:
    """Calibration of all ``forecasts``, by author and by evidence level."""
    opts = {"level": level, "seed": seed, "resamples": resamples}
    excluded = [f for f in forecasts if not f.has_interval]
    authors = sorted({f.author for f in forecasts})
    levels = sorted({f.evidence for f in forecasts})
    return Calibration(
        overall=group("everyone", forecasts, **opts),  # type: ignore[arg-type]
        by_author=[group(a, [f for f in forecasts if f.author == a], **opts)  # type: ignore[arg-type]
                   for a in authors],
        by_evidence=[group(e, [f for f in forecasts if f.evidence == e], **opts)  # type: ignore[arg-type]
                     for e in levels],
        excluded=len(excluded), excluded_labels=[f.label for f in excluded],
        level=level, bootstrap=resamples, seed=seed)


def shrink_factor(result: Calibration) -> float | None:
    """The factor new forecasts are multiplied by when the workspace shrinks them: the
    measured ratio, when at least ``MIN_FOR_SHRINK`` forecasts were measured, held in [0, 1]
    (forecasts are shrunk, never inflated)."""
    overall = result.overall
    if overall.ratio is None or overall.measured < MIN_FOR_SHRINK:
        return None
    return min(max(overall.ratio, 0.0), 1.0)
