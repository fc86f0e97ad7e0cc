"""The Bayesian read of an A/B comparison, as GrowthBook's engine (gbstats 0.8.0,
``EffectBayesianABTest``) defines it. Pure: numbers in, a frozen dataclass out.

The model is normal-normal on the effect (relative ``(m_t - m_c) / m_c`` or absolute
``m_t - m_c``): the data give the frequentist estimate and its variance (delta method for the
relative effect, the same as ``experiments.stats``), the prior is a normal on the relative
effect (rescaled by the control mean for the absolute effect: mean x |m_c|, variance x m_c^2).
An improper (flat) prior leaves the estimate as it is; a proper one shrinks it by precision
weighting. From the posterior N(mu, sigma^2):

* ``chance_to_win`` = P(effect > 0) (P(effect < 0) for an inverse metric, lower is better);
* ``ci``: the central 1 - alpha credible interval;
* ``risk`` = [risk of keeping control, risk of shipping the treatment]: the expected loss
  E[max(effect, 0)] and E[max(-effect, 0)] (swapped for an inverse metric), in the effect's
  units (``risk_type``). Closed forms: mu Phi(mu/s) + s phi(mu/s) and s phi(mu/s) - mu Phi(-mu/s).

When the data cannot support a read gbstats returns an uninformative result (chance 0.5, zero
expectation, interval [0, 0], risk [0, 0]) with a code; so does this module, with the same codes
(``NO_UNITS_IN_VARIATION``, ``ZERO_NEGATIVE_VARIANCE``, ``ZERO_NEGATIVE_BASELINE_VARIATION``).
Where gbstats 0.8.0 raises (``ZeroDivisionError`` for the absolute effect when the control mean
is 0: the rescaled prior variance is 0) this module returns the uninformative result with the
code ``ZERO_CONTROL_MEAN_PRIOR`` instead of failing.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from scipy.stats import norm

NO_UNITS = "NO_UNITS_IN_VARIATION"
ZERO_VARIANCE = "ZERO_NEGATIVE_VARIANCE"
ZERO_BASELINE = "ZERO_NEGATIVE_BASELINE_VARIATION"
ZERO_CONTROL_PRIOR = "ZERO_CONTROL_MEAN_PRIOR"

MESSAGES = {
    NO_UNITS: "an arm has no users",
    ZERO_VARIANCE: "an arm's metric has zero variance (every user the same)",
    ZERO_BASELINE: "the control mean is 0: a relative effect is undefined",
    ZERO_CONTROL_PRIOR: "the control mean is 0: the prior on the relative effect gives no "
                        "prior on the absolute effect",
}


class PriorInvalid(ValueError):
    """A prior that cannot be used; ``field`` names the bad part."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Prior:
    """A normal prior on the relative effect; ``proper=False`` is GrowthBook's flat default."""

    mean: float = 0.0
    variance: float = 0.09  # sd 0.3
    proper: bool = False

    def __post_init__(self) -> None:
        for name in ("mean", "variance"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value):
                raise PriorInvalid(f"prior_{name}", "must be a finite number")
        if not self.variance > 0:
            raise PriorInvalid("prior_variance", f"must be greater than 0, got {self.variance:g}")

    def describe(self) -> str:
        if not self.proper:
            return "flat (improper) prior: the posterior is the data's normal approximation"
        return (f"normal prior on the relative effect, mean {self.mean:+g}, variance "
                f"{self.variance:g} (sd {math.sqrt(self.variance):g})")


@dataclass(frozen=True)
class Moments:
    """What the read needs of one arm: units, the metric's mean and per-unit variance."""

    n: int
    mean: float
    variance: float

    @classmethod
    def of_mean(cls, n: int, total: float, sum_sq: float) -> Moments:
        """A per-user metric from n, sum and sum of squares (sample variance, n - 1)."""
        mean = total / n if n else 0.0
        variance = (sum_sq - total * total / n) / (n - 1) if n > 1 else 0.0
        return cls(int(n), mean, variance)

    @classmethod
    def of_proportion(cls, n: int, conversions: float) -> Moments:
        """A conversion rate: variance p (1 - p), as gbstats."""
        p = conversions / n if n else 0.0
        return cls(int(n), p, p * (1 - p))

    @classmethod
    def of_ratio(cls, n: int, sum_x: float, sum_x_sq: float, sum_y: float, sum_y_sq: float,
                 sum_xy: float) -> Moments:
        """A ratio of sums x / y with its per-unit delta-method variance."""
        mean = sum_x / sum_y if sum_y else 0.0
        if n <= 1 or sum_y == 0:
            return cls(int(n), mean, 0.0)
        mx, my = sum_x / n, sum_y / n
        vx = (sum_x_sq - sum_x * sum_x / n) / (n - 1)
        vy = (sum_y_sq - sum_y * sum_y / n) / (n - 1)
        cov = (sum_xy - sum_x * sum_y / n) / (n - 1)
        return cls(int(n), mean, vx / my ** 2 - 2 * cov * mx / my ** 3 + mx ** 2 * vy / my ** 4)


@dataclass(frozen=True)
class BayesRead:
    """Posterior of the effect and the decision figures derived from it."""

    chance_to_win: float
    expected: float  # posterior mean of the effect
    ci: tuple[float, float]
    stddev: float  # posterior sd
    risk: tuple[float, float]  # (keep control, ship treatment)
    risk_type: str  # "relative" | "absolute"
    alpha: float
    inverse: bool
    prior: Prior
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ci"], out["risk"] = list(self.ci), list(self.risk)
        out["message"] = MESSAGES.get(self.error or "", "")
        return out


def _uninformative(relative: bool, alpha: float, inverse: bool, prior: Prior, code: str
                   ) -> BayesRead:
    return BayesRead(0.5, 0.0, (0.0, 0.0), 0.0, (0.0, 0.0),
                     "relative" if relative else "absolute", alpha, inverse, prior, code)


def posterior(estimate: float, variance: float, prior_mean: float, prior_variance: float,
              proper: bool) -> tuple[float, float]:
    """Normal-normal update: (posterior mean, posterior sd); a flat prior keeps the data's."""
    if not proper:
        return estimate, math.sqrt(variance)
    precision = 1.0 / variance + 1.0 / prior_variance
    mean = (estimate / variance + prior_mean / prior_variance) / precision
    return mean, math.sqrt(1.0 / precision)


def risks(mu: float, sigma: float) -> tuple[float, float]:
    """Expected loss of keeping control E[max(X, 0)] and of shipping E[max(-X, 0)], X~N."""
    z = mu / sigma
    pdf = float(norm.pdf(z))
    return (mu * float(norm.cdf(z)) + sigma * pdf, sigma * pdf - mu * float(norm.sf(z)))


def bayes_read(control: Moments, treatment: Moments, *, relative: bool = True,
               prior: Prior | None = None, alpha: float = 0.05, inverse: bool = False
               ) -> BayesRead:
    """gbstats ``EffectBayesianABTest`` with ``prior_type="relative"`` (its only use in
    GrowthBook): the posterior of the relative or absolute effect of treatment over control."""
    prior = prior or Prior()
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    for arm in (control, treatment):
        if arm.n < 0 or not math.isfinite(arm.mean) or not math.isfinite(arm.variance):
            raise ValueError("arm moments must be finite with n >= 0")
    if relative and control.mean == 0:
        return _uninformative(relative, alpha, inverse, prior, ZERO_BASELINE)
    if control.n == 0 or treatment.n == 0:
        return _uninformative(relative, alpha, inverse, prior, NO_UNITS)
    if control.variance <= 0 or treatment.variance <= 0:
        return _uninformative(relative, alpha, inverse, prior, ZERO_VARIANCE)
    mc, mt = control.mean, treatment.mean
    if relative:
        estimate = (mt - mc) / mc
        variance = (treatment.variance / (mc * mc * treatment.n)
                    + control.variance * mt * mt / (mc ** 4 * control.n))
        prior_mean, prior_var = prior.mean, prior.variance
    else:
        if mc == 0:
            return _uninformative(relative, alpha, inverse, prior, ZERO_CONTROL_PRIOR)
        estimate = mt - mc
        variance = treatment.variance / treatment.n + control.variance / control.n
        prior_mean, prior_var = prior.mean * abs(mc), prior.variance * mc * mc
    return read_from_estimate(estimate, variance, prior_mean=prior_mean,
                              prior_variance=prior_var, prior=prior, relative=relative,
                              alpha=alpha, inverse=inverse)


def read_from_estimate(estimate: float, variance: float, *, prior_mean: float,
                       prior_variance: float, prior: Prior, relative: bool, alpha: float = 0.05,
                       inverse: bool = False) -> BayesRead:
    """The read from an effect estimate and its sampling variance, the prior on its scale."""
    mu, sigma = posterior(estimate, variance, prior_mean, prior_variance, prior.proper)
    p_win = float(norm.sf(0.0, mu, sigma))
    if inverse:
        p_win = 1.0 - p_win
    low, high = (float(v) for v in norm.ppf([alpha / 2, 1 - alpha / 2], mu, sigma))
    keep, ship = risks(mu, sigma)
    if inverse:
        keep, ship = ship, keep
    return BayesRead(p_win, mu, (low, high), sigma, (keep, ship),
                     "relative" if relative else "absolute", alpha, inverse, prior)


def scaled_prior(prior: Prior, control_mean: float, relative: bool) -> tuple[float, float]:
    """The relative-effect prior on the scale of the effect read (absolute: x |m_c|, x m_c^2)."""
    if relative:
        return prior.mean, prior.variance
    return prior.mean * abs(control_mean), prior.variance * control_mean * control_mean
