"""Statistics for experiments: effects, SRM, multiplicity, power, DiD and ITS. Pure.

Conventions (checked against committed reference vectors, see scripts/reference_vectors/):

* Means: Welch t. ``absolute = mean_t - mean_c``, ``se = sqrt(v_c/n_c + v_t/n_t)`` with sample
  variances (ddof=1), Welch-Satterthwaite df, CI from the t quantile.
* Relative lift follows GrowthBook gbstats 0.8.0 ``TwoSidedTTest``: ``(mean_t - mean_c) /
  mean_c`` with delta-method variance ``v_t / (mean_c^2 n_t) + v_c mean_t^2 / (mean_c^4 n_c)``;
  its CI and p-value use the *absolute* Welch df. Its p-value is ``extra["relative_p_value"]``;
  ``Effect.p_value`` is always the p-value of the absolute effect.
* Proportions use ``p(1 - p)`` as the per-unit variance (gbstats and spotify-confidence): the
  absolute effect, CI and p-value are the z test of spotify-confidence ``ZTest``; the relative
  effect is gbstats' (t with the Welch df). gbstats' t-based absolute CI is in ``extra``.
* Sequential: the always-valid mixture-SPRT interval of gbstats ``SequentialTwoSidedTTest``
  (Waudby-Smith et al. 2023, eq. 9 and 155).

Every effect function returns ``status="insufficient_data"`` with a reason and no numbers when the
data cannot support an estimate (n <= 1, zero variance in both arms) instead of raising; bad
input (negative n, NaN, alpha outside (0, 1)) raises ``ValueError`` naming the argument.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

OK = "ok"
INSUFFICIENT = "insufficient_data"


# ----- validation and JSON helpers --------------------------------------------------------------
def _check_alpha(alpha: float, name: str = "alpha") -> float:
    alpha = _check_finite(alpha, name)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {alpha}")
    return alpha


def _check_finite(value: Any, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


def _check_count(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer count, got {value!r}")
    out = _check_finite(value, name)
    if out != int(out):
        raise ValueError(f"{name} must be an integer count, got {value!r}")
    if out < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return int(out)


def _check_array(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains infinite values")
    return arr


def jsonable(value: Any) -> Any:
    """Tuples to lists, NaN/inf to None, numpy scalars to Python scalars (recursively)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _f(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _f(value: float | None) -> float | None:
    """A plain float, or None for None/NaN/inf."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# ----- summary statistics -----------------------------------------------------------------------
@dataclass(frozen=True)
class ArmStats:
    """Sufficient statistics of a per-user metric in one arm."""

    n: int
    sum: float
    sum_sq: float

    def __post_init__(self) -> None:
        _check_count(self.n, "ArmStats.n")
        _check_finite(self.sum, "ArmStats.sum")
        _check_finite(self.sum_sq, "ArmStats.sum_sq")

    @property
    def mean(self) -> float | None:
        return self.sum / self.n if self.n > 0 else None

    @property
    def variance(self) -> float | None:
        """Sample variance (ddof=1); None when n <= 1.

        Sums of squares lose the variance of near-constant data to round-off: a centred sum
        below 1e-12 of the raw one is taken as exactly zero variance.
        """
        if self.n <= 1:
            return None
        centred = self.sum_sq - self.sum * self.sum / self.n
        if centred <= 1e-12 * abs(self.sum_sq):
            return 0.0
        return centred / (self.n - 1)

    @classmethod
    def from_values(cls, values: Any) -> ArmStats:
        """Summarise raw per-user values."""
        arr = _check_array(values, "values")
        return cls(n=int(arr.size), sum=float(arr.sum()), sum_sq=float(np.dot(arr, arr)))


@dataclass(frozen=True)
class RatioArmStats:
    """Sufficient statistics of a ratio metric (numerator x, denominator y per user)."""

    n: int
    sum_x: float
    sum_x_sq: float
    sum_y: float
    sum_y_sq: float
    sum_xy: float

    def __post_init__(self) -> None:
        _check_count(self.n, "RatioArmStats.n")
        for name in ("sum_x", "sum_x_sq", "sum_y", "sum_y_sq", "sum_xy"):
            _check_finite(getattr(self, name), f"RatioArmStats.{name}")

    @classmethod
    def from_values(cls, x: Any, y: Any) -> RatioArmStats:
        """Summarise raw per-user numerators ``x`` and denominators ``y``."""
        xa, ya = _check_array(x, "x"), _check_array(y, "y")
        if xa.size != ya.size:
            raise ValueError(f"x and y must have the same length ({xa.size} != {ya.size})")
        return cls(n=int(xa.size), sum_x=float(xa.sum()), sum_x_sq=float(np.dot(xa, xa)),
                   sum_y=float(ya.sum()), sum_y_sq=float(np.dot(ya, ya)),
                   sum_xy=float(np.dot(xa, ya)))

    @property
    def mean(self) -> float | None:
        """The ratio of sums (None when the denominator sums to zero)."""
        return self.sum_x / self.sum_y if self.sum_y != 0 else None

    @property
    def variance(self) -> float | None:
        """Per-unit delta-method variance of the ratio (gbstats ``RatioStatistic``)."""
        if self.n <= 1 or self.sum_y == 0:
            return None
        n = self.n
        mx, my = self.sum_x / n, self.sum_y / n
        vx = (self.sum_x_sq - self.sum_x ** 2 / n) / (n - 1)
        vy = (self.sum_y_sq - self.sum_y ** 2 / n) / (n - 1)
        cov = (self.sum_xy - self.sum_x * self.sum_y / n) / (n - 1)
        var = vx / my ** 2 - 2 * cov * mx / my ** 3 + mx ** 2 * vy / my ** 4
        return max(var, 0.0)


# ----- effects ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Effect:
    """Treatment-vs-control effect with absolute and relative intervals."""

    status: str
    reason: str
    control_mean: float | None
    treatment_mean: float | None
    absolute: float | None
    absolute_ci: tuple[float, float] | None
    absolute_se: float | None
    relative: float | None
    relative_ci: tuple[float, float] | None
    relative_se: float | None
    p_value: float | None
    df: float | None
    alpha: float
    method: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (tuples as lists, NaN as None)."""
        return jsonable(asdict(self))


def _insufficient(method: str, alpha: float, reason: str, control_mean: float | None = None,
                  treatment_mean: float | None = None,
                  extra: dict[str, Any] | None = None) -> Effect:
    return Effect(status=INSUFFICIENT, reason=reason, control_mean=_f(control_mean),
                  treatment_mean=_f(treatment_mean), absolute=None, absolute_ci=None,
                  absolute_se=None, relative=None, relative_ci=None, relative_se=None,
                  p_value=None, df=None, alpha=alpha, method=method, extra=extra or {})


def _welch_df(vc: float, nc: int, vt: float, nt: int) -> float:
    a, b = vc / nc, vt / nt
    # shares of the variance rather than (a + b)^2 / (a^2/.. + b^2/..): no underflow to 0/0
    a, b = a / (a + b), b / (a + b)
    return 1.0 / (a * a / (nc - 1) + b * b / (nt - 1))


def _t_inference(estimate: float, se: float, df: float | None, alpha: float
                 ) -> tuple[tuple[float, float], float]:
    """Two-sided CI and p-value; df None means the normal distribution."""
    dist = sps.norm if df is None else sps.t(df)
    q = float(dist.ppf(1 - alpha / 2))
    # survival function rather than 1 - cdf: keeps tiny p-values instead of rounding to 0
    p = float(2 * dist.sf(abs(estimate) / se))
    return (estimate - q * se, estimate + q * se), min(p, 1.0)


def _relative(mc: float, mt: float, vc: float, nc: int, vt: float, nt: int
              ) -> tuple[float, float] | str:
    """gbstats' relative lift and its delta-method se, or why there is none."""
    if mc == 0:
        return "control mean is zero"
    try:
        rel = (mt - mc) / mc
        var = vt / (mc * mc * nt) + vc * mt * mt / (mc ** 4 * nc)
    except (ZeroDivisionError, OverflowError):
        rel = var = math.inf
    if not (math.isfinite(rel) and math.isfinite(var)):
        return "control mean too close to zero"
    if var <= 0:
        # the delta-method variance vanishes when the treatment mean and variance are both 0
        return "zero variance of the relative effect"
    return rel, math.sqrt(var)


def _two_sample(*, mc: float, vc: float, nc: int, mt: float, vt: float, nt: int, alpha: float,
                method: str, absolute_df: str = "welch", rel_base: tuple[float, float] | None = None,
                extra: dict[str, Any] | None = None, means: tuple[float, float] | None = None
                ) -> Effect:
    """Shared Welch/delta-method machinery; the arms are already checked (n >= 2, var >= 0)."""
    extra = dict(extra or {})
    shown = means if means is not None else (mc, mt)
    if vc <= 0 and vt <= 0:
        return _insufficient(method, alpha, "zero variance in both arms", shown[0], shown[1],
                             extra)
    absolute = mt - mc
    se = math.sqrt(vc / nc + vt / nt)
    df = _welch_df(vc, nc, vt, nt)
    abs_df = None if absolute_df == "normal" else df
    abs_ci, p = _t_inference(absolute, se, abs_df, alpha)
    if absolute_df == "normal":
        t_ci, t_p = _t_inference(absolute, se, df, alpha)
        extra.update(absolute_ci_t=t_ci, p_value_t=t_p)
    # gbstats divides by the unadjusted control mean (matters for CUPED only)
    base_c, base_t = rel_base if rel_base is not None else (mc, mt)
    rel = _relative(base_c, base_t, vc, nc, vt, nt)
    relative = relative_ci = relative_se = None
    if isinstance(rel, str):
        extra.update(relative_status=INSUFFICIENT, relative_reason=rel)
    else:
        relative = (absolute / base_c) if rel_base is not None else rel[0]
        relative_se = rel[1]
        relative_ci, rel_p = _t_inference(relative, relative_se, df, alpha)
        extra["relative_p_value"] = rel_p
    extra["welch_df"] = df
    return Effect(status=OK, reason="", control_mean=_f(shown[0]), treatment_mean=_f(shown[1]),
                  absolute=absolute, absolute_ci=abs_ci, absolute_se=se, relative=relative,
                  relative_ci=relative_ci, relative_se=relative_se, p_value=p, df=abs_df,
                  alpha=alpha, method=method, extra=extra)


def _small_n(nc: int, nt: int) -> str | None:
    if nc <= 1:
        return "n <= 1 in control"
    if nt <= 1:
        return "n <= 1 in treatment"
    return None


def _check_arms(control: Any, treatment: Any, cls: type) -> None:
    for arm, name in ((control, "control"), (treatment, "treatment")):
        if not isinstance(arm, cls):
            raise ValueError(f"{name} must be a {cls.__name__}, got {type(arm).__name__}")


def _arms_effect(control: ArmStats | RatioArmStats, treatment: ArmStats | RatioArmStats,
                 alpha: float, cls: type, method: str) -> Effect:
    """The two-sample test on two arms' sufficient statistics (``cls``): INSUFFICIENT when an
    arm has n <= 1 or no mean (a ratio whose denominator sums to zero)."""
    _check_arms(control, treatment, cls)
    alpha = _check_alpha(alpha)
    reason = _small_n(control.n, treatment.n)
    for arm, name in ((control, "control"), (treatment, "treatment")):
        if reason is None and arm.mean is None:
            reason = f"denominator sums to zero in {name}"
    if reason:
        return _insufficient(method, alpha, reason, control.mean, treatment.mean)
    return _two_sample(mc=control.mean, vc=control.variance, nc=control.n, mt=treatment.mean,
                       vt=treatment.variance, nt=treatment.n, alpha=alpha, method=method)


def mean_effect(control: ArmStats, treatment: ArmStats, alpha: float = 0.05) -> Effect:
    """Welch t test of the difference in means, with gbstats' delta-method relative lift."""
    return _arms_effect(control, treatment, alpha, ArmStats, "welch")


def proportion_effect(control_conversions: int, control_n: int, treatment_conversions: int,
                      treatment_n: int, alpha: float = 0.05) -> Effect:
    """Difference in conversion rates: z test (absolute) and gbstats' relative lift."""
    xc = _check_count(control_conversions, "control_conversions")
    nc = _check_count(control_n, "control_n")
    xt = _check_count(treatment_conversions, "treatment_conversions")
    nt = _check_count(treatment_n, "treatment_n")
    if xc > nc:
        raise ValueError(f"control_conversions ({xc}) must not exceed control_n ({nc})")
    if xt > nt:
        raise ValueError(f"treatment_conversions ({xt}) must not exceed treatment_n ({nt})")
    alpha = _check_alpha(alpha)
    pc = xc / nc if nc else None
    pt = xt / nt if nt else None
    reason = _small_n(nc, nt)
    if reason:
        return _insufficient("proportion", alpha, reason, pc, pt)
    return _two_sample(mc=pc, vc=pc * (1 - pc), nc=nc, mt=pt, vt=pt * (1 - pt), nt=nt,
                       alpha=alpha, method="proportion", absolute_df="normal")


def ratio_effect(control: RatioArmStats, treatment: RatioArmStats, alpha: float = 0.05) -> Effect:
    """Difference in a ratio metric (sum x / sum y) with delta-method variances."""
    return _arms_effect(control, treatment, alpha, RatioArmStats, "ratio_delta")


def cuped_effect(control_y: Any, control_x: Any, treatment_y: Any, treatment_x: Any,
                 alpha: float = 0.05, theta_method: str = "within") -> Effect:
    """CUPED: Welch test on ``y - theta (x - mean_x)`` with one theta shared by both arms.

    ``theta_method="within"`` (default) pools the within-arm covariance and variance, so theta
    is the covariate slope of OLS ``y ~ treated + x`` and the estimate equals that regression's
    treatment coefficient exactly. ``"total"`` is gbstats' ``compute_theta`` (covariance over
    both arms ignoring assignment); the two differ only by the chance imbalance in x.
    ``extra``: theta, variance_ratio (Var(adjusted effect) / Var(unadjusted effect), about
    1 - rho^2), variance_reduction (1 - variance_ratio, about rho^2), the unadjusted effect.
    The relative lift divides by the unadjusted control mean, as gbstats does.
    """
    yc, xc = _check_array(control_y, "control_y"), _check_array(control_x, "control_x")
    yt, xt = _check_array(treatment_y, "treatment_y"), _check_array(treatment_x, "treatment_x")
    if yc.size != xc.size:
        raise ValueError(f"control_y and control_x differ in length ({yc.size} != {xc.size})")
    if yt.size != xt.size:
        raise ValueError(
            f"treatment_y and treatment_x differ in length ({yt.size} != {xt.size})")
    if theta_method not in ("within", "total"):
        raise ValueError(f"theta_method must be 'within' or 'total', got {theta_method!r}")
    alpha = _check_alpha(alpha)
    nc, nt = int(yc.size), int(yt.size)
    mean_c = float(yc.mean()) if nc else None
    mean_t = float(yt.mean()) if nt else None
    reason = _small_n(nc, nt)
    if reason:
        return _insufficient("cuped", alpha, reason, mean_c, mean_t)

    if theta_method == "within":
        dxc, dxt = xc - xc.mean(), xt - xt.mean()
        sxx = float(dxc @ dxc + dxt @ dxt)
        sxy = float(dxc @ (yc - yc.mean()) + dxt @ (yt - yt.mean()))
    else:
        x_all, y_all = np.concatenate([xc, xt]), np.concatenate([yc, yt])
        dx = x_all - x_all.mean()
        sxx, sxy = float(dx @ dx), float(dx @ (y_all - y_all.mean()))
    notes = []
    if sxx > 0:
        theta = sxy / sxx
    else:
        theta = 0.0
        notes.append("the covariate is constant: no adjustment")
    x_bar = float(np.concatenate([xc, xt]).mean())
    adj_c, adj_t = yc - theta * (xc - x_bar), yt - theta * (xt - x_bar)
    vc_adj, vt_adj = float(adj_c.var(ddof=1)), float(adj_t.var(ddof=1))
    vc, vt = float(yc.var(ddof=1)), float(yt.var(ddof=1))
    var_unadj = vc / nc + vt / nt
    var_adj = vc_adj / nc + vt_adj / nt
    ratio = var_adj / var_unadj if var_unadj > 0 else None
    extra: dict[str, Any] = {
        "theta": theta, "theta_method": theta_method,
        "adjusted_control_mean": float(adj_c.mean()),
        "adjusted_treatment_mean": float(adj_t.mean()),
        "unadjusted_absolute": mean_t - mean_c,
        "unadjusted_absolute_se": math.sqrt(var_unadj),
        "variance_ratio": ratio,
        "variance_reduction": None if ratio is None else 1.0 - ratio,
    }
    if notes:
        extra["notes"] = notes
    return _two_sample(mc=float(adj_c.mean()), vc=vc_adj, nc=nc, mt=float(adj_t.mean()),
                       vt=vt_adj, nt=nt, alpha=alpha, method="cuped", rel_base=(mean_c, mean_t),
                       extra=extra, means=(mean_c, mean_t))


def _sequential(estimate: float, variance: float, n_total: int, alpha: float, tuning_n: float
                ) -> tuple[tuple[float, float], float]:
    """gbstats SequentialTwoSidedTTest: always-valid CI (eq. 9) and p-value (eq. 155)."""
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning_n
    tr2p1 = n_total * rho2 + 1
    s2 = variance * n_total
    width = math.sqrt(s2) * math.sqrt(
        2 * tr2p1 * math.log(math.sqrt(tr2p1) / alpha) / (n_total * n_total * rho2))
    st2 = estimate * estimate * n_total / variance
    # the e-value in logs: exp() overflows for large effects where p is simply ~0
    log_e = rho2 * st2 / (2 * tr2p1) - 0.5 * math.log(tr2p1)
    p = 1.0 if log_e <= 0 else math.exp(-log_e)
    return (estimate - width, estimate + width), p


def sequential_effect(control: ArmStats, treatment: ArmStats, alpha: float = 0.05,
                      tuning_n: float = 5000.0) -> Effect:
    """Always-valid (mixture SPRT) interval and p-value, as gbstats' sequential test."""
    _check_arms(control, treatment, ArmStats)
    alpha = _check_alpha(alpha)
    tuning_n = _check_finite(tuning_n, "tuning_n")
    if tuning_n <= 0:
        raise ValueError(f"tuning_n must be > 0, got {tuning_n}")
    base = mean_effect(control, treatment, alpha)
    if base.status != OK:
        return Effect(**{**asdict(base), "method": "sequential"})
    n_total = control.n + treatment.n
    abs_ci, p = _sequential(base.absolute, base.absolute_se ** 2, n_total, alpha, tuning_n)
    extra = {"tuning_n": tuning_n, "fixed_horizon_p_value": base.p_value,
             "fixed_horizon_absolute_ci": base.absolute_ci,
             **{k: v for k, v in base.extra.items() if k.startswith("relative_")}}
    relative_ci = None
    if base.relative is not None:
        relative_ci, rel_p = _sequential(base.relative, base.relative_se ** 2, n_total, alpha,
                                         tuning_n)
        extra["relative_p_value"] = rel_p
    return Effect(status=OK, reason="", control_mean=base.control_mean,
                  treatment_mean=base.treatment_mean, absolute=base.absolute,
                  absolute_ci=abs_ci, absolute_se=base.absolute_se, relative=base.relative,
                  relative_ci=relative_ci, relative_se=base.relative_se, p_value=p, df=None,
                  alpha=alpha, method="sequential", extra=extra)


# ----- sample ratio mismatch and multiplicity ---------------------------------------------------
@dataclass(frozen=True)
class SrmResult:
    """Chi-square goodness of fit of the observed arm counts to the planned weights."""

    observed: list[int]
    expected: list[float]
    chi2: float
    p_value: float
    flagged: bool
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


def srm_check(counts: Sequence[int], weights: Sequence[float], threshold: float = 0.001
              ) -> SrmResult:
    """Sample ratio mismatch: Pearson chi-square, flagged when p < threshold.

    Same statistic and df (arms - 1) as gbstats ``check_srm`` and spotify-confidence. An arm
    with weight 0 is left out of the test when empty; any user in it is a mismatch (p = 0).
    """
    observed = [_check_count(c, f"counts[{i}]") for i, c in enumerate(counts)]
    w = [_check_finite(v, f"weights[{i}]") for i, v in enumerate(weights)]
    if len(observed) != len(w):
        raise ValueError(f"counts and weights differ in length ({len(observed)} != {len(w)})")
    if len(observed) < 2:
        raise ValueError("counts must have at least 2 arms")
    if any(v < 0 for v in w):
        raise ValueError("weights must be >= 0")
    total_w = sum(w)
    if total_w <= 0:
        raise ValueError("weights must sum to a positive number")
    threshold = _check_alpha(threshold, "threshold")
    total = sum(observed)
    expected = [v / total_w * total for v in w]
    if total == 0:
        return SrmResult(observed, expected, 0.0, 1.0, False, "no users")
    if any(e == 0 and o > 0 for o, e in zip(observed, expected, strict=True)):
        return SrmResult(observed, expected, math.inf, 0.0, True,
                         "users in an arm with weight 0")
    used = [(o, e) for o, e in zip(observed, expected, strict=True) if e > 0]
    chi2 = float(sum((o - e) ** 2 / e for o, e in used))
    p = float(sps.chi2.sf(chi2, len(used) - 1))
    return SrmResult(observed, expected, chi2, p, p < threshold)


def adjust_pvalues(p_values: Sequence[float | None], method: str) -> list[float | None]:
    """Holm or Benjamini-Hochberg adjusted p-values; None entries pass through uncounted."""
    from statsmodels.stats.multitest import multipletests

    methods = {"holm": "holm", "bh": "fdr_bh", "none": None}
    if method not in methods:
        raise ValueError(f"method must be one of holm, bh, none; got {method!r}")
    present = []
    for i, p in enumerate(p_values):
        if p is None:
            continue
        p = _check_finite(p, f"p_values[{i}]")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p_values[{i}] must be in [0, 1], got {p}")
        present.append((i, p))
    out: list[float | None] = [None if p is None else float(p) for p in p_values]
    if not present or methods[method] is None:
        return out
    adjusted = multipletests([p for _, p in present], method=methods[method])[1]
    for (i, _), q in zip(present, adjusted, strict=True):
        out[i] = float(q)
    return out


# ----- power ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PowerResult:
    """Sample size for a design: per arm, total and calendar days."""

    n_per_arm: int  # control arm (every arm when the allocation is equal)
    total_n: int
    days: float | None
    effective_mde: float  # relative MDE detectable with the rounded sizes (<= the one asked)
    notes: list[str]
    arm_n: list[int] = field(default_factory=list)  # per arm, control first
    mde_absolute: float = 0.0
    design_effect: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


def sample_size(*, baseline_mean: float, baseline_sd: float | None = None, mde_relative: float,
                alpha: float = 0.05, power: float = 0.8, arms: int = 2,
                allocation: Sequence[float] | None = None, binary: bool = False,
                cuped_r2: float = 0.0, cluster_size: float = 1.0, icc: float = 0.0,
                daily_traffic: float | None = None) -> PowerResult:
    """Users needed per arm to detect a relative lift (two-sided, each arm vs control).

    Binary metrics: ``NormalIndPower`` with Cohen's h; continuous: ``TTestIndPower`` with
    Cohen's d = baseline_mean * mde / sd. CUPED divides the variance by (1 - r2), i.e. the
    effect size by sqrt(1 - r2); clustering multiplies n by 1 + (cluster_size - 1) icc.
    """
    from statsmodels.stats.power import NormalIndPower, TTestIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    baseline_mean = _check_finite(baseline_mean, "baseline_mean")
    mde = _check_finite(mde_relative, "mde_relative")
    if mde <= 0:
        raise ValueError(f"mde_relative must be > 0, got {mde}")
    alpha = _check_alpha(alpha)
    power = _check_alpha(power, "power")
    if power <= alpha:
        raise ValueError(f"power ({power}) must exceed alpha ({alpha})")
    arms = _check_count(arms, "arms")
    if arms < 2:
        raise ValueError(f"arms must be >= 2, got {arms}")
    if allocation is None:
        alloc = [1.0] * arms
    else:
        alloc = [_check_finite(a, f"allocation[{i}]") for i, a in enumerate(allocation)]
        if len(alloc) != arms:
            raise ValueError(f"allocation has {len(alloc)} entries for {arms} arms")
        if any(a <= 0 for a in alloc):
            raise ValueError("allocation entries must be > 0")
    r2 = _check_finite(cuped_r2, "cuped_r2")
    if not 0.0 <= r2 < 1.0:
        raise ValueError(f"cuped_r2 must be in [0, 1), got {r2}")
    cluster_size = _check_finite(cluster_size, "cluster_size")
    if cluster_size < 1:
        raise ValueError(f"cluster_size must be >= 1, got {cluster_size}")
    icc = _check_finite(icc, "icc")
    if not 0.0 <= icc <= 1.0:
        raise ValueError(f"icc must be in [0, 1], got {icc}")
    if daily_traffic is not None:
        daily_traffic = _check_finite(daily_traffic, "daily_traffic")
        if daily_traffic <= 0:
            raise ValueError(f"daily_traffic must be > 0, got {daily_traffic}")

    notes: list[str] = []
    shrink = math.sqrt(1.0 - r2)  # effect size grows by 1/shrink under CUPED
    if binary:
        if not 0.0 < baseline_mean < 1.0:
            raise ValueError(f"baseline_mean must be in (0, 1) for a binary metric, "
                             f"got {baseline_mean}")
        target = baseline_mean * (1 + mde)
        if target >= 1.0:
            raise ValueError(f"baseline_mean * (1 + mde_relative) = {target:.4g} must be < 1 "
                             "for a binary metric")
        effect_size = abs(float(proportion_effectsize(target, baseline_mean))) / shrink
        solver: Any = NormalIndPower()
        notes.append("binary metric: normal approximation with Cohen's h (arcsine)")
    else:
        if baseline_sd is None:
            raise ValueError("baseline_sd is required for a continuous metric")
        sd = _check_finite(baseline_sd, "baseline_sd")
        if sd <= 0:
            raise ValueError(f"baseline_sd must be > 0, got {sd}")
        if baseline_mean == 0:
            raise ValueError("baseline_mean must be non-zero for a relative mde")
        effect_size = abs(baseline_mean) * mde / sd / shrink
        solver = TTestIndPower()
        notes.append("continuous metric: two-sample t power (equal variances) with Cohen's d")

    ratios = [a / alloc[0] for a in alloc[1:]]
    n_control = max(
        float(solver.solve_power(effect_size=effect_size, nobs1=None, alpha=alpha, power=power,
                                 ratio=r, alternative="two-sided"))
        for r in ratios)
    deff = 1.0 + (cluster_size - 1.0) * icc
    if not math.isfinite(n_control * deff * max(ratios)):
        raise ValueError("the design needs more users than can be counted: raise the mde or "
                         "lower the cluster size or ICC")
    arm_n = [math.ceil(n_control * deff - 1e-9)]
    arm_n += [math.ceil(n_control * r * deff - 1e-9) for r in ratios]

    # the relative lift the rounded design detects, from the weakest comparison
    worst = min(ratios)
    n_eff = arm_n[0] / deff
    es = float(solver.solve_power(effect_size=None, nobs1=n_eff, alpha=alpha, power=power,
                                  ratio=worst, alternative="two-sided")) * shrink
    if binary:
        p2 = math.sin(math.asin(math.sqrt(baseline_mean)) + es / 2) ** 2
        effective = p2 / baseline_mean - 1
    else:
        effective = es * sd / abs(baseline_mean)

    if r2 > 0:
        notes.append(f"CUPED with r2={r2:g} multiplies the variance by {1 - r2:.3g}")
    if deff != 1.0:
        notes.append(f"clusters of {cluster_size:g} with ICC {icc:g}: design effect "
                     f"{deff:.3g}")
    if arms > 2:
        notes.append(f"{arms - 1} treatment arms each compared with control at alpha={alpha:g}; "
                     "no multiplicity correction is built into this size")
    if len(set(alloc)) > 1:
        notes.append("unequal allocation: n_per_arm is the control arm; see arm_n")
    total = int(sum(arm_n))
    days = total / daily_traffic if daily_traffic else None
    if days is not None:
        notes.append(f"{total} users at {daily_traffic:g} eligible users/day")
    return PowerResult(n_per_arm=arm_n[0], total_n=total, days=days, effective_mde=effective,
                       notes=notes, arm_n=arm_n, mde_absolute=abs(baseline_mean) * mde,
                       design_effect=deff)
