"""Expected value of an investment from its sources, with a low/high range. Pure.

expected value = reach x adoption x value per user x lift x P(success) x horizon factor

* reach: size of the target segments (latest snapshot) or an assumption;
* value per user: the segment's LTV / predicted CLV / revenue per active user (per month,
  times the horizon), or an assumption;
* lift: the experiment's measured lift when a concluded experiment exists, else the
  hypothesis's expected lift, else an assumption;
* value mapping: how a relative change of the hypothesis's metric moves the value (an
  elasticity: 1 when the metric is value itself; measured from the segment's data or entered
  with an interval otherwise), so a proxy's lift is not taken as the value's lift;
* P(success): from the strongest evidence behind the lift.

The range is propagated by simulation (``simulate``): each uncertain input is drawn from a
two-piece normal whose median is its estimate and whose stated interval (``Figure.level``:
95% for measured figures, 80% for stated forecasts and entered mappings) holds exactly that
share of the draws; the value is the product draw by draw, and ``[low, high]`` is its 5th to
95th percentile (the 90% interval the optimizer's robust mode reads). The seed is fixed, so
the figures do not change between reads. The estimate stays the product of the estimates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

DRAWS = 20_000  # draws per valuation: the 5%/95% percentiles' Monte Carlo error is ~0.5% of sd
SEED = 0
VALUE_LEVEL = 0.90  # the stored [low, high]: the draws' 5th to 95th percentile
MEASURED_LEVEL = 0.95  # experiment and snapshot intervals
STATED_LEVEL = 0.80  # a forecast's or an entered mapping's interval, as people state them


def z_of(level: float) -> float:
    """The standard normal quantile bounding a central interval holding ``level``."""
    return NormalDist().inv_cdf(0.5 + level / 2)


@dataclass(frozen=True)
class Figure:
    """One input with its interval and where it came from."""

    estimate: float
    low: float
    high: float
    source: str  # e.g. "snapshot #12 of 'Power users' (LTV 90)", "assumption"
    stale: bool = False
    level: float = MEASURED_LEVEL  # the share of belief [low, high] holds

    @property
    def uncertain(self) -> bool:
        return self.low < self.estimate or self.high > self.estimate

    def draws(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` draws: a two-piece normal with median ``estimate`` whose ``[low, high]`` holds
        ``level`` of them (each side's spread from its own bound), or the estimate itself."""
        if not self.uncertain:
            return np.full(n, self.estimate, dtype=np.float64)
        z = rng.standard_normal(n)
        scale = z_of(self.level)
        below = (self.estimate - min(self.low, self.estimate)) / scale
        above = (max(self.high, self.estimate) - self.estimate) / scale
        return self.estimate + z * np.where(z < 0, below, above)

    @classmethod
    def exact(cls, value: float, source: str) -> Figure:
        return cls(value, value, value, source)

    @classmethod
    def around(cls, estimate: float, low: float | None, high: float | None, source: str,
               stale: bool = False, level: float = MEASURED_LEVEL) -> Figure:
        """An estimate with its interval; a bound not known (None) is the estimate itself."""
        return cls(estimate, estimate if low is None else low, estimate if high is None else high,
                   source, stale, level)


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
    probability: Figure, horizon_factor: float = 1.0, mapping: Figure | None = None,
    mapping_trace: Mapping[str, Any] | None = None, draws: int = DRAWS, seed: int = SEED,
) -> Valuation:
    """Risk-adjusted expected value with its propagated range and the trace of every input.
    ``mapping`` is the value model (the metric's elasticity of value); none = one to one."""
    mapping = mapping or Figure.exact(1.0, "the lift is on value itself: one to one")
    base = adoption * horizon_factor * probability.estimate
    expected = reach.estimate * value_per_user.estimate * lift.estimate * mapping.estimate * base
    sim = simulate(factors=(reach, value_per_user, lift, mapping), scale=base, draws=draws,
                   seed=seed)
    low, high = percentiles(sim, VALUE_LEVEL)
    sources = {
        "reach": _trace(reach),
        "adoption": {"estimate": adoption, "source": "investment assumption"},
        "value_per_user": _trace(value_per_user),
        "lift": _trace(lift),
        "mapping": {**_trace(mapping), **(mapping_trace or {})},
        "value_lift": _trace(value_lift(lift, mapping, draws=draws, seed=seed)),
        "probability_of_success": _trace(probability),
        "horizon_factor": horizon_factor,
        "formula": "reach x adoption x value per user x (lift x value mapping) x P(success) x "
                   "horizon",
        "interval": {"level": VALUE_LEVEL, "draws": draws, "seed": seed,
                     "method": "Monte Carlo: each uncertain input a two-piece normal (median "
                               "= estimate, its interval at its stated level), multiplied draw "
                               "by draw; 5th to 95th percentile"},
    }
    stale = any(f.stale for f in (reach, value_per_user, lift, probability, mapping))
    return Valuation(expected, min(low, expected), max(high, expected), sources, stale)


def simulate(*, factors: Sequence[Figure], scale: float = 1.0, draws: int = DRAWS,
             seed: int = SEED, given: Mapping[int, np.ndarray] | None = None) -> np.ndarray:
    """The product of independent draws of ``factors`` times ``scale``: ``draws`` values.
    ``given`` replaces factor ``i``'s draws (e.g. a hypothesis's lift shared by several
    investments, for value of information). Factor ``i`` draws from its own stream
    (``seed``, ``i``), so adding a factor does not move the others' draws."""
    out = np.full(draws, float(scale), dtype=np.float64)
    for i, factor in enumerate(factors):
        if given is not None and i in given:
            values = np.asarray(given[i], dtype=np.float64)
            if values.shape != (draws,):
                raise ValueError(f"given[{i}] must hold {draws} draws, not {values.shape}")
        else:
            values = factor.draws(np.random.default_rng([seed, i]), draws)
        out *= values
    return out


def percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` interval of ``values`` (linear interpolation)."""
    lo, hi = np.quantile(values, [0.5 - level / 2, 0.5 + level / 2])
    return float(lo), float(hi)


def value_lift(lift: Figure, mapping: Figure, *, draws: int = DRAWS, seed: int = SEED) -> Figure:
    """The relative change of value: the metric's lift times the mapping, with its 90%
    interval propagated by simulation (the same draws ``value_investment`` makes)."""
    sim = simulate(factors=(Figure.exact(1.0, ""), Figure.exact(1.0, ""), lift, mapping),
                   draws=draws, seed=seed)
    low, high = percentiles(sim, VALUE_LEVEL)
    estimate = lift.estimate * mapping.estimate
    return Figure(estimate, min(low, estimate), max(high, estimate),
                  "lift x value mapping (simulated)", lift.stale or mapping.stale, VALUE_LEVEL)


def figure_from_trace(trace: Mapping[str, Any]) -> Figure:
    """A stored trace (``Valuation.sources[key]``) back as a Figure."""
    estimate = float(trace.get("estimate") or 0.0)
    low = trace.get("low")
    high = trace.get("high")
    return Figure(estimate, estimate if low is None else float(low),
                  estimate if high is None else float(high), str(trace.get("source", "")),
                  bool(trace.get("stale", False)), float(trace.get("level", MEASURED_LEVEL)))


def value_draws(sources: Mapping[str, Any], *, draws: int = DRAWS, seed: int = SEED,
                lift_draws: np.ndarray | None = None,
                mapping_draws: np.ndarray | None = None) -> np.ndarray:
    """Draws of an investment's risk-adjusted value from its stored ``value_sources`` (what
    ``value_investment`` traced): reach x adoption x value per user x lift x mapping x
    P(success) x horizon, each uncertain input from its two-piece normal. ``lift_draws`` /
    ``mapping_draws`` (``draws`` values each) replace those inputs' draws, so investments
    resting on one hypothesis can share its lift. With the same ``draws`` and ``seed`` the
    5th/95th percentiles are the stored ``value_low``/``value_high`` (before domain capping)."""
    reach = figure_from_trace(sources.get("reach") or {})
    per_user = figure_from_trace(sources.get("value_per_user") or {})
    lift = figure_from_trace(sources.get("lift") or {})
    mapping = figure_from_trace(sources.get("mapping") or {"estimate": 1.0})
    adoption = float((sources.get("adoption") or {}).get("estimate") or 0.0)
    probability = float((sources.get("probability_of_success") or {}).get("estimate") or 0.0)
    horizon = float(sources.get("horizon_factor") or 1.0)
    given = {}
    if lift_draws is not None:
        given[2] = lift_draws
    if mapping_draws is not None:
        given[3] = mapping_draws
    return simulate(factors=(reach, per_user, lift, mapping),
                    scale=adoption * probability * horizon, draws=draws, seed=seed, given=given)


def _trace(figure: Figure) -> dict[str, Any]:
    return {"estimate": figure.estimate, "low": figure.low, "high": figure.high,
            "level": figure.level, "source": figure.source, "stale": figure.stale}


def rice(reach: float, impact: float, confidence: float, effort: float) -> float:
    """RICE score: reach x impact x confidence / effort (effort in person-quarters)."""
    return reach * impact * confidence / effort if effort > 0 else 0.0


def ice(impact: float, confidence: float, ease: float) -> float:
    """ICE score: impact x confidence x ease."""
    return impact * confidence * ease
