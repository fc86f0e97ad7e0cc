"""Quasi-experiments: difference-in-differences (cluster-robust errors, a pre-trend check)
and interrupted time series. Pure."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from .stats import INSUFFICIENT, OK, _check_alpha, _f, jsonable


# ----- quasi-experiments ------------------------------------------------------------------------
@dataclass(frozen=True)
class DidResult:
    """Difference-in-differences estimate with cluster-robust SE and a pre-trend check."""

    estimate: float | None
    se: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    n_obs: int
    n_clusters: int
    pre_trend_p: float | None
    pre_trend_estimate: float | None
    series: list[dict[str, Any]]
    status: str
    reason: str
    alpha: float = 0.05

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


def _binary_column(panel: pd.DataFrame, col: str) -> np.ndarray:
    values = panel[col]
    if values.isna().any():
        raise ValueError(f"column {col!r} contains NaN")
    arr = values.astype(float).to_numpy()
    if not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError(f"column {col!r} must be 0/1")
    return arr


def _cluster_fit(y: np.ndarray, X: np.ndarray, groups: np.ndarray) -> Any:
    import statsmodels.api as sm

    # t with G - 1 df (use_t) rather than the normal: honest with few clusters
    return sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)


def diff_in_diff(panel: pd.DataFrame, *, unit: str = "unit", period: str = "period",
                 treated: str = "treated", post: str = "post", outcome: str = "y",
                 cluster: str | None = None, alpha: float = 0.05) -> DidResult:
    """DiD: OLS y ~ treated + post + treated:post with SEs clustered by ``cluster`` (or unit).

    Pre-trend: on pre-period rows, OLS y ~ treated * period_index (clustered the same way);
    the interaction is the differential linear trend (None with fewer than 2 pre periods).
    """
    if not isinstance(panel, pd.DataFrame):
        raise ValueError("panel must be a pandas DataFrame")
    alpha = _check_alpha(alpha)
    group_col = cluster or unit
    for arg, col in (("unit", unit), ("period", period), ("treated", treated), ("post", post),
                     ("outcome", outcome), ("cluster", group_col)):
        if col not in panel.columns:
            raise ValueError(f"{arg} column {col!r} not in panel")
    y = pd.to_numeric(panel[outcome], errors="coerce").to_numpy(dtype=float)
    if np.isnan(y).any():
        raise ValueError(f"outcome column {outcome!r} contains NaN or non-numbers")
    if panel[period].isna().any():
        raise ValueError(f"period column {period!r} contains NaN")
    if panel[group_col].isna().any():
        raise ValueError(f"cluster column {group_col!r} contains NaN")
    d = _binary_column(panel, treated)
    p = _binary_column(panel, post)
    groups = pd.factorize(panel[group_col])[0]
    n_obs, n_clusters = len(panel), int(np.unique(groups).size)

    series: list[dict[str, Any]] = []
    if n_obs:
        means = (pd.DataFrame({"period": panel[period].to_numpy(), "d": d, "y": y})
                 .groupby(["period", "d"])["y"].mean().unstack("d"))
        for label, row in means.sort_index().iterrows():
            series.append({"period": jsonable(label),
                           "treated_mean": _f(row.get(1.0)), "control_mean": _f(row.get(0.0))})

    def insufficient(reason: str) -> DidResult:
        return DidResult(None, None, None, None, n_obs, n_clusters, None, None, series,
                         INSUFFICIENT, reason, alpha)

    cells = [((d == a) & (p == b)).any() for a in (0, 1) for b in (0, 1)]
    if not all(cells):
        return insufficient("need treated and control rows both before and after")
    if n_clusters < 2:
        return insufficient("need at least 2 clusters")
    X = np.column_stack([np.ones(n_obs), d, p, d * p])
    fit = _cluster_fit(y, X, groups)
    se = float(fit.bse[3])
    if not (math.isfinite(se) and se > 0):
        return insufficient("zero residual variance")
    lo, hi = fit.conf_int(alpha=alpha)[3]

    pre_p = pre_est = None
    pre = p == 0
    order = {v: i for i, v in enumerate(sorted(pd.unique(panel[period])))}
    t_index = panel[period].map(order).to_numpy(dtype=float)
    pre_groups = groups[pre]
    if (np.unique(t_index[pre]).size >= 2 and np.unique(pre_groups).size >= 2
            and np.unique(d[pre]).size == 2):
        tp, dp = t_index[pre], d[pre]
        Xp = np.column_stack([np.ones(tp.size), dp, tp, dp * tp])
        pre_fit = _cluster_fit(y[pre], Xp, pd.factorize(pre_groups)[0])
        if math.isfinite(float(pre_fit.bse[3])) and pre_fit.bse[3] > 0:
            pre_est, pre_p = float(pre_fit.params[3]), float(pre_fit.pvalues[3])
    return DidResult(estimate=float(fit.params[3]), se=se, ci=(float(lo), float(hi)),
                     p_value=float(fit.pvalues[3]), n_obs=n_obs, n_clusters=n_clusters,
                     pre_trend_p=pre_p, pre_trend_estimate=pre_est, series=series, status=OK,
                     reason="", alpha=alpha)


@dataclass(frozen=True)
class ItsResult:
    """Interrupted time series: level and slope change at the interruption (HAC SEs)."""

    level_change: float | None
    level_ci: tuple[float, float] | None
    slope_change: float | None
    slope_ci: tuple[float, float] | None
    p_level: float | None
    p_slope: float | None
    n_obs: int
    status: str
    reason: str
    pre_slope: float | None = None
    maxlags: int | None = None
    alpha: float = 0.05

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


def interrupted_time_series(series: pd.Series, change_at: Any, alpha: float = 0.05,
                            maxlags: int | None = None) -> ItsResult:
    """Segmented OLS y ~ t + post + t_since with Newey-West (HAC) standard errors.

    ``series`` is taken in its given order. ``change_at`` is the first post period: an index
    label when it is one, else an integer position (``len(series)`` means no post period).
    ``maxlags`` defaults to floor(4 (n / 100)^(2/9)), at least 1.
    """
    import statsmodels.api as sm

    if not isinstance(series, pd.Series):
        raise ValueError("series must be a pandas Series")
    alpha = _check_alpha(alpha)
    y = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    if np.isnan(y).any():
        raise ValueError("series contains NaN or non-numbers")
    n = int(y.size)
    if change_at in series.index:
        k = series.index.get_loc(change_at)
        if not isinstance(k, int):
            raise ValueError(f"change_at {change_at!r} is not a unique label of series")
    elif isinstance(change_at, (int, np.integer)) and not isinstance(change_at, bool):
        k = int(change_at)
        if not 0 <= k <= n:
            raise ValueError(f"change_at position {k} outside 0..{n}")
    else:
        raise ValueError(f"change_at {change_at!r} is neither a label nor a position")

    def insufficient(reason: str) -> ItsResult:
        return ItsResult(None, None, None, None, None, None, n, INSUFFICIENT, reason,
                         alpha=alpha)

    if k < 2:
        return insufficient("need at least 2 periods before the change")
    if n - k < 2:
        return insufficient("need at least 2 periods after the change")
    if n < 6:
        return insufficient("need at least 6 periods (4 parameters plus 2 residual df)")
    t = np.arange(n, dtype=float)
    post = (t >= k).astype(float)
    since = (t - k) * post
    X = np.column_stack([np.ones(n), t, post, since])
    lags = maxlags if maxlags is not None else max(1, int(4 * (n / 100) ** (2 / 9)))
    fit = sm.OLS(y, X).fit(cov_type="HAC", cov_kwds={"maxlags": lags}, use_t=True)
    bse = fit.bse
    if not (np.isfinite(bse[2:]).all() and (bse[2:] > 0).all()):
        return insufficient("zero residual variance")
    ci = fit.conf_int(alpha=alpha)
    return ItsResult(level_change=float(fit.params[2]), level_ci=(float(ci[2][0]), float(ci[2][1])),
                     slope_change=float(fit.params[3]),
                     slope_ci=(float(ci[3][0]), float(ci[3][1])),
                     p_level=float(fit.pvalues[2]), p_slope=float(fit.pvalues[3]), n_obs=n,
                     status=OK, reason="", pre_slope=float(fit.params[1]), maxlags=lags,
                     alpha=alpha)
