"""Expected value of an investment from its sources, with a low/high range. Pure.

expected value = reach x adoption x value per user x lift x P(success) x horizon factor

* reach: size of the target segments (latest snapshot) or an assumption;
* value per user: the segment's LTV / predicted CLV / revenue per active user (per month,
  times the horizon), or an assumption;
* lift: the experiment's measured lift when a concluded experiment exists, else the
  hypothesis's expected lift, else an assumption;
* P(success): from the strongest evidence behind the lift.

The range multiplies the interval bounds (low with low, high with high): a deliberately
wide, conservative band rather than a propagated standard error, since the inputs' errors
are neither independent nor normal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Figure:
    """One input with its interval and where it came from."""

    estimate: float
    low: float
    high: float
    source: str  # e.g. "snapshot #12 of 'Power users' (LTV 90)", "assumption"
    stale: bool = False

    @classmethod
    def exact(cls, value: float, source: str) -> Figure:
        return cls(value, value, value, source)

    @classmethod
    def around(cls, estimate: float, low: float | None, high: float | None, source: str,
               stale: bool = False) -> Figure:
        """An estimate with its interval; a bound not known (None) is the estimate itself."""
        return cls(estimate, estimate if low is None else low, estimate if high is None else high,
                   source, stale)


@dataclass(frozen=True)
class Valuation:
    expected_value: float
    low: float
    high: float
    sources: dict[str, Any] = field(default_factory=dict)
    stale: bool = False


def combine_segments(parts: Sequence[tuple[Figure, Figure]]) -> tuple[Figure, Figure]:
    """Several target segments: total reach and the reach-weighted value per user."""
    if len(parts) == 1:
        return parts[0]
    total = sum(r.estimate for r, _ in parts)
    if total <= 0:
        return Figure.exact(0.0, "no users"), Figure.exact(0.0, "no users")
    weights = [r.estimate / total for r, _ in parts]
    value = Figure(
        estimate=sum(w * v.estimate for w, (_, v) in zip(weights, parts, strict=True)),
        low=sum(w * v.low for w, (_, v) in zip(weights, parts, strict=True)),
        high=sum(w * v.high for w, (_, v) in zip(weights, parts, strict=True)),
        source="reach-weighted: " + "; ".join(v.source for _, v in parts),
        stale=any(v.stale for _, v in parts),
    )
    reach = Figure(total, sum(r.low for r, _ in parts), sum(r.high for r, _ in parts),
                   "sum: " + "; ".join(r.source for r, _ in parts),
                   stale=any(r.stale for r, _ in parts))
    return reach, value


def value_investment(
    *, reach: Figure, adoption: float, value_per_user: Figure, lift: Figure,
    probability: Figure, horizon_factor: float = 1.0,
) -> Valuation:
    """Risk-adjusted expected value with its range and the trace of every input."""
    base = adoption * horizon_factor * probability.estimate
    expected = reach.estimate * value_per_user.estimate * lift.estimate * base
    low = reach.low * value_per_user.low * max(lift.low, 0.0) * base
    high = reach.high * value_per_user.high * lift.high * base
    if low > high:
        low, high = high, low
    sources = {
        "reach": _trace(reach),
        "adoption": {"estimate": adoption, "source": "investment assumption"},
        "value_per_user": _trace(value_per_user),
        "lift": _trace(lift),
        "probability_of_success": _trace(probability),
        "horizon_factor": horizon_factor,
        "formula": "reach x adoption x value per user x lift x P(success) x horizon",
    }
    stale = any(f.stale for f in (reach, value_per_user, lift, probability))
    return Valuation(expected, min(low, expected), max(high, expected), sources, stale)


def _trace(figure: Figure) -> dict[str, Any]:
    return {"estimate": figure.estimate, "low": figure.low, "high": figure.high,
            "source": figure.source, "stale": figure.stale}


def rice(reach: float, impact: float, confidence: float, effort: float) -> float:
    """RICE score: reach x impact x confidence / effort (effort in person-quarters)."""
    return reach * impact * confidence / effort if effort > 0 else 0.0


def ice(impact: float, confidence: float, ease: float) -> float:
    """ICE score: impact x confidence x ease."""
    return impact * confidence * ease
