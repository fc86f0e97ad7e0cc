"""Predictive customer lifetime value: BG/NBD purchase counts and Gamma-Gamma spend.

Pure numerical module (numpy, scipy, pandas; no Django). Models and formulas:

* BG/NBD: Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative to
  the Pareto/NBD Model", Marketing Science 24(2). Likelihood (eq. 6), conditional expectation
  (eq. 10); P(alive) from Fader, Hardie & Lee (2008), "Computing P(alive) Using the BG/NBD Model".
* Gamma-Gamma: Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer
  Base Analysis", JMR 42(4), and Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value".

Inputs are per-customer arrays: ``frequency`` x (number of repeat purchase occasions),
``recency`` t_x (time of the last purchase minus the first) and ``T`` (end of the calibration
period minus the first purchase), all times in the same unit ("periods", e.g. weeks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

__all__ = [
    "BGNBDParams",
    "GammaGammaParams",
    "bgnbd_log_likelihood",
    "bgnbd_log_likelihood_gradient",
    "expected_average_value",
    "expected_purchases",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "gamma_gamma_log_likelihood",
    "gamma_gamma_log_likelihood_gradient",
    "predict_clv",
    "probability_alive",
    "rfm_summary",
]


@dataclass(frozen=True)
class BGNBDParams:
    """Fitted BG/NBD parameters: purchase rate ~ Gamma(r, alpha), dropout p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")
    converged: bool = True


@dataclass(frozen=True)
class GammaGammaParams:
    """Fitted Gamma-Gamma parameters: spend ~ Gamma(p, nu), nu ~ Gamma(q, v) (v is a rate)."""

    p: float
    q: float
    v: float
    log_likelihood: float = float("nan")
    converged: bool = True
    n_customers: int = 0


# --------------------------------------------------------------------------------------------
# RFM summary
# --------------------------------------------------------------------------------------------


def rfm_summary(
    user: np.ndarray,
    time_days: np.ndarray,
    amount: np.ndarray,
    calibration_end: float,
    period: float = 7.0,
    observation_start: float | None = None,
) -> pd.DataFrame:
    """Per-customer frequency, recency, T (in periods) and mean repeat-occasion value."""
    user = np.asarray(user)
    days = np.floor(np.asarray(time_days, dtype=float))
    amount = np.asarray(amount, dtype=float)
    if not (user.shape == days.shape == amount.shape) or user.ndim != 1:
        raise ValueError("user, time_days and amount must be 1-D arrays of the same length")
    if period <= 0:
        raise ValueError("period must be positive")
    keep = np.isfinite(days) & (days <= calibration_end)
    user, days, amount = user[keep], days[keep], np.nan_to_num(amount[keep])
    columns = ["frequency", "recency", "T", "monetary_value"]
    if user.size == 0:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="customer"), dtype=float)

    ids, code = np.unique(user, return_inverse=True)
    # One purchase occasion per (customer, calendar day); amounts on the same day are summed.
    order = np.lexsort((days, code))
    code, days, amount = code[order], days[order], amount[order]
    new_occasion = np.ones(code.size, dtype=bool)
    new_occasion[1:] = (code[1:] != code[:-1]) | (days[1:] != days[:-1])
    occ_start = np.flatnonzero(new_occasion)
    occ_code, occ_day = code[occ_start], days[occ_start]
    occ_amount = np.add.reduceat(amount, occ_start)

    # Occasions are sorted by customer then day: the first of each customer is its first purchase.
    first_occ = np.ones(occ_code.size, dtype=bool)
    first_occ[1:] = occ_code[1:] != occ_code[:-1]
    cust_start = np.flatnonzero(first_occ)
    cust_end = np.append(cust_start[1:], occ_code.size) - 1
    n_occasions = cust_end - cust_start + 1
    first_day, last_day = occ_day[cust_start], occ_day[cust_end]

    frequency = (n_occasions - 1).astype(float)
    repeat_total = np.bincount(
        occ_code[~first_occ], weights=occ_amount[~first_occ], minlength=ids.size
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(frequency > 0, repeat_total / np.maximum(frequency, 1.0), 0.0)

    frame = pd.DataFrame(
        {
            "frequency": frequency,
            "recency": (last_day - first_day) / period,
            "T": (calibration_end - first_day) / period,
            "monetary_value": monetary,
        },
        index=pd.Index(ids, name="customer"),
    )
    if observation_start is not None:
        # Cohort filter: customers acquired before the window are left-censored and dropped.
        frame = frame[first_day >= observation_start]
    return frame


# --------------------------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------------------------


def _as_arrays(*arrays: np.ndarray | float) -> tuple[np.ndarray, ...]:
    """Broadcast inputs to float arrays of a common shape."""
    return tuple(np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in arrays)))


def bgnbd_log_likelihood(
    r: float, alpha: float, a: float, b: float,
    frequency: np.ndarray, recency: np.ndarray, T: np.ndarray,
) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood (Fader, Hardie & Lee 2005, eq. 6)."""
    x, t_x, T = _as_arrays(frequency, recency, T)
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    beta_ab = special.betaln(a, b)
    alive = special.betaln(a, b + x) - beta_ab - (r + x) * np.log(alpha + T)
    # Second term only for x > 0 (b + x - 1 may be negative otherwise): evaluate at x >= 1.
    x1 = np.maximum(x, 1.0)
    dropped = special.betaln(a + 1.0, b + x1 - 1.0) - beta_ab - (r + x) * np.log(alpha + t_x)
    dropped = np.where(x > 0, dropped, -np.inf)
    return common + np.logaddexp(alive, dropped)


def _fit(neg_ll, x0: np.ndarray, neg_ll_grad=None) -> optimize.OptimizeResult:
    """Minimise a negative log-likelihood over log-parameters (L-BFGS-B, Nelder-Mead polish).

    ``neg_ll_grad(theta) -> (value, gradient)``, when given, is L-BFGS-B's objective: one
    evaluation per step instead of one per parameter plus one for a finite-difference gradient.
    """
    objective, jac = (neg_ll_grad, True) if neg_ll_grad is not None else (neg_ll, None)
    result = optimize.minimize(objective, x0, jac=jac, method="L-BFGS-B",
                               bounds=[(-20.0, 20.0)] * x0.size,
                               options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9})
    if not result.success:
        polished = optimize.minimize(neg_ll, result.x, method="Nelder-Mead",
                                     options={"maxiter": 20000, "xatol": 1e-9, "fatol": 1e-12})
        if polished.fun <= result.fun:
            result = polished
    return result


def bgnbd_log_likelihood_gradient(
    r: float, alpha: float, a: float, b: float,
    frequency: np.ndarray, recency: np.ndarray, T: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer BG/NBD log-likelihood and its derivatives by (r, alpha, a, b), shape (4, n).

    With A the "alive" and D the "dropped" term of eq. 6 and w_A, w_D their shares of
    exp(A) + exp(D): d/dtheta = d common/dtheta + w_A dA/dtheta + w_D dD/dtheta, with
    d betaln(u, v)/du = psi(u) - psi(u + v).
    """
    x, t_x, T = _as_arrays(frequency, recency, T)
    psi = special.digamma
    log_alpha_T, log_alpha_tx = np.log(alpha + T), np.log(alpha + t_x)
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    beta_ab = special.betaln(a, b)
    alive = special.betaln(a, b + x) - beta_ab - (r + x) * log_alpha_T
    x1 = np.maximum(x, 1.0)
    dropped = special.betaln(a + 1.0, b + x1 - 1.0) - beta_ab - (r + x) * log_alpha_tx
    dropped = np.where(x > 0, dropped, -np.inf)
    total = np.logaddexp(alive, dropped)
    w_alive = np.exp(alive - total)
    w_dropped = np.where(x > 0, np.exp(dropped - total), 0.0)
    psi_abx, psi_ab = psi(a + b + x), psi(a + b)
    d_r = psi(r + x) - psi(r) + np.log(alpha) - w_alive * log_alpha_T - w_dropped * log_alpha_tx
    d_alpha = (r / alpha - w_alive * (r + x) / (alpha + T)
               - w_dropped * (r + x) / (alpha + t_x))
    d_beta_a, d_beta_b = psi(a) - psi_ab, psi(b) - psi_ab
    d_a = (w_alive * (psi(a) - psi_abx - d_beta_a)
           + w_dropped * (psi(a + 1.0) - psi_abx - d_beta_a))
    d_b = (w_alive * (psi(b + x) - psi_abx - d_beta_b)
           + w_dropped * (psi(b + x1 - 1.0) - psi_abx - d_beta_b))
    return common + total, np.stack([d_r, d_alpha, d_a, d_b])


def unique_rows(columns: Sequence[np.ndarray], counts: np.ndarray | None = None,
                 ) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct rows of the columns and how many rows each stands for (sorted): the sufficient
    statistics of the BG/NBD and Gamma-Gamma likelihoods. Both the single-process refresh and
    the fan-out fit from them, so both give the optimizer the same input and the same fit."""
    if not len(columns[0]):
        return [np.asarray(c)[:0] for c in columns], np.zeros(0, np.int64)
    table = np.column_stack([np.asarray(c, dtype=np.float64) for c in columns])
    rows, inverse = np.unique(table, axis=0, return_inverse=True)
    weight = np.ones(len(table), np.int64) if counts is None else np.asarray(counts, np.int64)
    n = np.bincount(inverse.ravel(), weights=weight, minlength=len(rows)).astype(np.int64)
    return [rows[:, j] for j in range(rows.shape[1])], n


def fit_bgnbd(
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    initial: tuple[float, float, float, float] | None = None,
    weights: np.ndarray | None = None,
) -> BGNBDParams:
    """Fit BG/NBD (r, alpha, a, b) by maximum likelihood on log-parameters.

    ``weights``: how many customers share each (frequency, recency, T) row; the likelihood
    needs only the distinct triples and their counts (a fan-out merges those)."""
    x, t_x, T = _as_arrays(frequency, recency, T)
    if x.size == 0:
        raise ValueError("no customers to fit")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T + 1e-9) or np.any((x == 0) & (t_x > 0)):
        raise ValueError("need frequency >= 0 and 0 <= recency <= T (recency 0 when frequency 0)")
    w = None if weights is None else np.asarray(weights, dtype=float)
    n = x.size if w is None else float(w.sum())

    def total(values: np.ndarray) -> Any:
        return values.sum(axis=-1) if w is None else (values * w).sum(axis=-1)

    def neg_ll(theta: np.ndarray) -> float:
        r, alpha, a, b = np.exp(theta)
        value = -total(bgnbd_log_likelihood(r, alpha, a, b, x, t_x, T)) / n
        return float(value) if np.isfinite(value) else 1e300

    def neg_ll_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.exp(theta)
        with np.errstate(all="ignore"):
            ll, grad = bgnbd_log_likelihood_gradient(*params, x, t_x, T)
            value = -total(ll) / n
            # By log-parameter: d/d(log p) = p d/dp.
            gradient = -total(grad) / n * params
        if not (np.isfinite(value) and np.isfinite(gradient).all()):
            return 1e300, np.zeros_like(theta)
        return float(value), gradient

    mean_T = float(np.mean(T)) if w is None else float(total(T) / n)
    start = initial or (1.0, max(mean_T, 1e-3), 1.0, 1.0)
    result = _fit(neg_ll, np.log(np.asarray(start, dtype=float)), neg_ll_grad)
    r, alpha, a, b = (float(v) for v in np.exp(result.x))
    return BGNBDParams(r, alpha, a, b, log_likelihood=-float(result.fun) * n,
                       converged=bool(result.success))


def probability_alive(
    params: BGNBDParams, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """P(customer still alive at T | x, t_x, T); exactly 1 when x = 0 (FHL 2008 note)."""
    x, t_x, T = _as_arrays(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    # Odds of "dropped out" to "alive": a / (b+x-1) * ((alpha+T) / (alpha+t_x))^(r+x).
    x1 = np.maximum(x, 1.0)
    log_odds = (np.log(a) - np.log(b + x1 - 1.0)
                + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)))
    return np.where(x > 0, special.expit(-log_odds), 1.0)


_A_NEAR_ONE = 1e-4


def expected_purchases(
    params: BGNBDParams, t: float | np.ndarray,
    frequency: np.ndarray, recency: np.ndarray, T: np.ndarray,
) -> np.ndarray:
    """E[purchases in (T, T + t] | x, t_x, T] (Fader, Hardie & Lee 2005, eq. 10)."""
    t, x, t_x, T = _as_arrays(t, frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1.0) < _A_NEAR_ONE / 2:
        # Removable singularity at a = 1: average the two sides (error O(h^2), h = 1e-4).
        lower = expected_purchases(replace(params, a=1.0 - _A_NEAR_ONE), t, x, t_x, T)
        upper = expected_purchases(replace(params, a=1.0 + _A_NEAR_ONE), t, x, t_x, T)
        return (lower + upper) / 2.0
    z = t / (alpha + T + t)
    # Euler's transformation of 2F1(r+x, b+x; a+b+x-1; z) multiplied by (1-z)^(r+x):
    #   (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), which stays bounded as z -> 1.
    c = a + b + x - 1.0
    tail = np.exp((a - 1.0) * np.log1p(-z)) * special.hyp2f1(c - x - r, a - 1.0, c, z)
    numerator = c / (a - 1.0) * (1.0 - tail)
    # The denominator of eq. 10 is 1 / P(alive).
    return np.where(t > 0, numerator * probability_alive(params, x, t_x, T), 0.0)


# --------------------------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------------------------


def gamma_gamma_log_likelihood(
    p: float, q: float, v: float, frequency: np.ndarray, monetary_value: np.ndarray
) -> np.ndarray:
    """Per-customer Gamma-Gamma log-likelihood of the mean spend (Fader & Hardie 2013, eq. 3)."""
    x, m = _as_arrays(frequency, monetary_value)
    px = p * x
    return (special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q)
            + q * np.log(v) + (px - 1.0) * np.log(m) + px * np.log(x)
            - (px + q) * np.log(v + x * m))


def gamma_gamma_log_likelihood_gradient(
    p: float, q: float, v: float, frequency: np.ndarray, monetary_value: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer Gamma-Gamma log-likelihood and its derivatives by (p, q, v), shape (3, n)."""
    x, m = _as_arrays(frequency, monetary_value)
    px = p * x
    log_m, log_x, log_vxm = np.log(m), np.log(x), np.log(v + x * m)
    psi_pxq = special.digamma(px + q)
    ll = (special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q)
          + q * np.log(v) + (px - 1.0) * log_m + px * log_x - (px + q) * log_vxm)
    d_p = x * (psi_pxq - special.digamma(px) + log_m + log_x - log_vxm)
    d_q = psi_pxq - special.digamma(q) + np.log(v) - log_vxm
    d_v = q / v - (px + q) / (v + x * m)
    return ll, np.stack([d_p, d_q, d_v])


def fit_gamma_gamma(
    frequency: np.ndarray,
    monetary_value: np.ndarray,
    initial: tuple[float, float, float] | None = None,
    weights: np.ndarray | None = None,
) -> GammaGammaParams:
    """Fit Gamma-Gamma (p, q, v) by maximum likelihood over customers with frequency > 0.

    ``weights``: how many customers share each (frequency, monetary_value) row."""
    x, m = _as_arrays(frequency, monetary_value)
    use = x > 0
    x, m = x[use], m[use]
    w = None if weights is None else np.asarray(weights, dtype=float)[use]
    if x.size == 0:
        raise ValueError("no customer with a repeat purchase")
    if np.any(m <= 0):
        raise ValueError("monetary_value must be positive for customers with frequency > 0")
    n = x.size if w is None else float(w.sum())

    def total(values: np.ndarray) -> Any:
        return values.sum(axis=-1) if w is None else (values * w).sum(axis=-1)

    def neg_ll(theta: np.ndarray) -> float:
        p, q, v = np.exp(theta)
        value = -total(gamma_gamma_log_likelihood(p, q, v, x, m)) / n
        return float(value) if np.isfinite(value) else 1e300

    def neg_ll_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.exp(theta)
        with np.errstate(all="ignore"):
            ll, grad = gamma_gamma_log_likelihood_gradient(*params, x, m)
            value = -total(ll) / n
            gradient = -total(grad) / n * params  # by log-parameter
        if not (np.isfinite(value) and np.isfinite(gradient).all()):
            return 1e300, np.zeros_like(theta)
        return float(value), gradient

    start = initial or (1.0, 2.0, float(np.mean(m)) if w is None else float(total(m) / n))
    result = _fit(neg_ll, np.log(np.asarray(start, dtype=float)), neg_ll_grad)
    p, q, v = (float(val) for val in np.exp(result.x))
    return GammaGammaParams(p, q, v, log_likelihood=-float(result.fun) * n,
                            converged=bool(result.success), n_customers=int(round(n)))


def expected_average_value(
    params: GammaGammaParams, frequency: np.ndarray, monetary_value: np.ndarray
) -> np.ndarray:
    """E[spend per transaction | x, mean spend]; the population mean p*v/(q-1) when x = 0."""
    x, m = _as_arrays(frequency, monetary_value)
    p, q, v = params.p, params.q, params.v
    if q <= 1:
        raise ValueError("the Gamma-Gamma mean exists only for q > 1")
    return p * (v + x * m) / (p * x + q - 1.0)


# --------------------------------------------------------------------------------------------
# CLV
# --------------------------------------------------------------------------------------------


def predict_clv(
    bg: BGNBDParams,
    gg: GammaGammaParams,
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    monetary_value: np.ndarray,
    horizon_periods: int,
    discount_rate_per_period: float,
    step: int = 1,
) -> np.ndarray:
    """Discounted expected value over the horizon, discounting each step at its end time."""
    if horizon_periods < 0 or step <= 0:
        raise ValueError("need horizon_periods >= 0 and step > 0")
    if discount_rate_per_period <= -1:
        raise ValueError("discount_rate_per_period must be > -1")
    x, t_x, T, m = _as_arrays(frequency, recency, T, monetary_value)
    value = expected_average_value(gg, x, m)
    ends = np.append(np.arange(step, horizon_periods, step), horizon_periods).astype(float)
    ends = ends[ends > 0]
    total = np.zeros_like(x)
    previous = np.zeros_like(x)
    for end in ends:
        cumulative = expected_purchases(bg, end, x, t_x, T)
        total += (cumulative - previous) / (1.0 + discount_rate_per_period) ** end
        previous = cumulative
    return total * value
