"""A rule's size estimated on a fixed random sample of users, with a Wilson interval. Pure.

The sample is drawn once per dataset version (seeded), so the same rule gives the same
estimate every time and editing a rule moves the figure only because the rule changed. A
dataset no larger than the sample is evaluated whole: the count is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from events.frame import UserEvents

SAMPLE_USERS = 20_000
SAMPLE_SEED = 20_251_205
Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


@dataclass(frozen=True)
class SizeEstimate:
    """Estimated members of a rule: ``estimate`` in [``low``, ``high``] (95%, Wilson, scaled
    to the population); ``exact`` when every user was evaluated."""

    matched: int  # members in the sample
    sample: int  # users evaluated
    population: int  # users of the dataset version
    estimate: float
    low: float
    high: float
    exact: bool

    def as_dict(self) -> dict[str, Any]:
        return {"matched": self.matched, "sample": self.sample, "population": self.population,
                "estimate": self.estimate, "low": self.low, "high": self.high,
                "exact": self.exact, "level": 0.95, "method": "exact count" if self.exact
                else "Wilson score interval on a seeded random sample, scaled to the population"}


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n (0..1)."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def size_estimate(*, matched: int, sample: int, population: int) -> SizeEstimate:
    """Scale a sample count to the population (exact when the sample is the population)."""
    if sample >= population:
        return SizeEstimate(matched, sample, population, float(matched), float(matched),
                            float(matched), True)
    low, high = wilson(matched, sample)
    return SizeEstimate(matched, sample, population, matched / sample * population,
                        low * population, high * population, False)


def sample_codes(n_users: int, size: int = SAMPLE_USERS, seed: int = SAMPLE_SEED) -> np.ndarray:
    """Sorted user codes of a seeded sample without replacement (all users when fewer)."""
    if n_users <= size:
        return np.arange(n_users, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_users, size=size, replace=False)).astype(np.int64)


def subset_users(data: UserEvents, codes: np.ndarray) -> UserEvents:
    """The frame restricted to the users ``codes`` (sorted), renumbered 0..len-1."""
    codes = np.asarray(codes, dtype=np.int64)
    lo, hi = data.starts[codes], data.starts[codes + 1]
    counts = hi - lo
    total = int(counts.sum())
    # Positions of each kept user's contiguous event slice, in order.
    offsets = np.repeat(lo - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    idx = np.arange(total, dtype=np.int64) + offsets

    def subset_properties() -> Any:  # on first use, as the full frame reads them
        props = data.properties
        if isinstance(props, pa.Array | pa.ChunkedArray):
            return props.take(pa.array(idx))
        return None if props is None else np.asarray(props)[idx]
    return UserEvents(
        user_ids=data.user_ids[codes], user=np.repeat(np.arange(len(codes), dtype=np.int32),
                                                      counts),
        time=data.time[idx], event=data.event[idx], event_names=data.event_names,
        revenue=data.revenue[idx], cost=data.cost[idx], signup=data.signup[codes],
        attributes=data.attributes.iloc[codes].reset_index(drop=True),
        properties_loader=subset_properties, has_cost=data.has_cost)
