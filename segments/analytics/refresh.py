"""One refresh: every segment of a dataset evaluated on one shared feature table. Pure.

The per-user feature table and the predictive-CLV fit are computed once; each segment is then
a boolean mask and a handful of vectorized reductions over it.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from events.event_kinds import RetentionDefinition
from events.frame import US_PER_DAY, UserEvents
from events.threads import analytic_threads, map_in_threads
from segments.analytics.holdout import holdout_check
from segments.analytics.retention import retention_curve

from . import clv as clv_core
from .rfm import rfm_scores, rfm_segment_mask
from .rules import evaluate_rule
from .value import Signal, return_lut, segment_signals, user_features

HOLDOUT_FRACTION = 0.25  # the last quarter of the observed span is the holdout period
CLV_HORIZON_WEEKS = 52
CLV_DISCOUNT_PER_WEEK = 0.10 / 52  # 10% a year


@dataclass(frozen=True)
class SegmentSpec:
    """What the refresh needs of a segment: its key and definition."""

    key: str
    kind: str  # rule | rfm | cluster
    definition: Mapping[str, Any]


@dataclass
class SegmentResult:
    key: str
    size: int
    share: float
    members: np.ndarray  # user ids
    signals: dict[str, dict[str, Any]]
    holdout: dict[str, Any]
    retention: dict[str, Any]
    error: str | None = None


@dataclass
class RefreshResult:
    as_of: int
    baseline: dict[str, dict[str, Any]]
    segments: list[SegmentResult] = field(default_factory=list)
    clv_fit: dict[str, Any] = field(default_factory=dict)


def segment_mask(spec: SegmentSpec, data: UserEvents, as_of: int,
                 rfm: pd.DataFrame | None = None) -> np.ndarray:
    """Membership of one segment as a boolean mask over user codes."""
    if spec.kind == "rfm":
        assert rfm is not None
        return np.asarray(rfm_segment_mask(rfm, spec.definition["rfm"]), dtype=bool)
    if spec.kind == "cluster":
        # A saved cluster is stored as its rule approximation plus the user list it had.
        if "rule" in spec.definition:
            return evaluate_rule(spec.definition["rule"], data, as_of)
        members = list(spec.definition.get("members", []))
        return pd.Index(data.user_ids).isin(members)
    return evaluate_rule(dict(spec.definition), data, as_of)


def predictive_clv(data: UserEvents, as_of: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Per-user discounted expected value over a year (BG/NBD + Gamma-Gamma fitted on all)."""
    summary, purchases = clv_inputs(data, as_of)
    return predictive_clv_from_summary(summary, purchases, data.n_users)


def clv_inputs(data: UserEvents, as_of: int) -> tuple[pd.DataFrame | None, int]:
    """(per-user purchase summary before ``as_of``, index = user code; the number of purchase
    events at any time). The summary is None when there are too few purchases to fit."""
    buys = data.revenue > 0
    purchases = int(buys.sum())
    if purchases < 50:
        return None, purchases
    before = buys & (data.time < as_of)
    days = data.time[before] / US_PER_DAY
    summary = clv_core.rfm_summary(
        data.user[before], days, data.revenue[before], calibration_end=as_of / US_PER_DAY,
    )
    return summary, purchases


def predictive_clv_from_summary(summary: pd.DataFrame | None, purchases: int, n_users: int,
                                ) -> tuple[np.ndarray, dict[str, Any]]:
    """``predictive_clv`` from ``clv_inputs`` (summary rows in user order)."""
    if summary is None or purchases < 50:
        return np.full(n_users, np.nan), {"fitted": False, "reason": "fewer than 50 purchases"}
    try:
        # Fitted from the distinct rows and their counts, as the fan-out's merge fits: the same
        # likelihood summed in the same order, so both give the same parameters.
        frequency = summary["frequency"].to_numpy()
        (x, tx, T), n = clv_core.unique_rows([frequency, summary["recency"].to_numpy(),
                                              summary["T"].to_numpy()])
        bg = clv_core.fit_bgnbd(x, tx, T, weights=n)
        repeat = frequency > 0
        (gx, gm), gn = clv_core.unique_rows([frequency[repeat],
                                             summary["monetary_value"].to_numpy()[repeat]])
        gg = clv_core.fit_gamma_gamma(gx, gm, weights=gn)
    except (ValueError, FloatingPointError, RuntimeError) as exc:
        return np.full(n_users, np.nan), {"fitted": False, "reason": str(exc)}
    value = clv_core.predict_clv(
        bg, gg, summary["frequency"].to_numpy(), summary["recency"].to_numpy(),
        summary["T"].to_numpy(), summary["monetary_value"].to_numpy(),
        horizon_periods=CLV_HORIZON_WEEKS, discount_rate_per_period=CLV_DISCOUNT_PER_WEEK,
    )
    per_user = np.zeros(n_users)  # users who never bought are expected to stay at ~0
    per_user[summary.index.to_numpy()] = np.nan_to_num(value)
    fit = {"fitted": True, "bgnbd": {k: float(getattr(bg, k)) for k in ("r", "alpha", "a", "b")},
           "gamma_gamma": {k: float(getattr(gg, k)) for k in ("p", "q", "v")},
           "horizon_weeks": CLV_HORIZON_WEEKS, "annual_discount": 0.10}
    return per_user, fit


def _clv_signal(values: np.ndarray, mask: np.ndarray, seed: int, min_n: int) -> Signal:
    chosen = values[mask]
    chosen = chosen[np.isfinite(chosen)]
    n = len(chosen)
    if n == 0:
        return Signal(name="predicted_clv", estimate=None, low=None, high=None, n=0,
                      method="bootstrap", unit="money per user", warning="no members")
    rng = np.random.default_rng(seed)
    boots = np.empty(400)
    for b in range(0, 400, 100):  # batches of resamples keep memory flat on big segments
        idx = rng.integers(0, n, size=(100, n)) if n <= 50_000 else rng.integers(0, n, (100, 50_000))
        boots[b:b + 100] = chosen[idx].mean(axis=1)
    est = float(chosen.mean())
    low, high = (float(x) for x in np.quantile(boots, [0.025, 0.975]))
    warning = f"small sample: n={n} (< {min_n})" if n < min_n else None
    return Signal(name="predicted_clv", estimate=est, low=low, high=high, n=n,
                  method="bootstrap", unit="money per user", warning=warning)


def run_refresh(
    data: UserEvents,
    specs: list[SegmentSpec],
    *,
    as_of: int,
    outcome_event: str | None = None,
    seed: int = 0,
    min_n: int = 30,
    retention: RetentionDefinition | None = None,
) -> RefreshResult:
    """Evaluate all segments: membership, signals with intervals, holdout check, retention
    (``retention``: start and return events of D1/D7/D30; its return events also make the
    cohort table's returns; None: signup and any event)."""
    start = int(data.time.min()) if data.n_events else as_of
    split = int(as_of - (as_of - start) * HOLDOUT_FRACTION)
    with ThreadPoolExecutor(max_workers=analytic_threads()) as pool:
        # What does not depend on the feature table starts at once: while one thread builds
        # the features, the other fits the CLV models and evaluates the segments' rules (the
        # tasks run in the order submitted; a mask of an RFM segment waits for the scores).
        features_task = pool.submit(user_features, data, as_of, outcome=outcome_event,
                                    retention=retention)
        clv_task = pool.submit(predictive_clv, data, as_of)
        rfm_task = pool.submit(rfm_scores, data, as_of) \
            if any(s.kind == "rfm" for s in specs) else None

        def masks(spec: SegmentSpec) -> tuple[np.ndarray, np.ndarray] | str:
            """The segment's masks at as_of and at the holdout split, a bit per user each
            (every segment's wait in memory at once: 100 segments of 1M users, 25 MB)."""
            rfm = rfm_task.result() if rfm_task is not None and spec.kind == "rfm" else None
            try:
                mask = segment_mask(spec, data, as_of, rfm)
                calibration = segment_mask(spec, data, split, rfm) if spec.kind == "rule" \
                    else mask
            except (ValueError, KeyError) as exc:
                return str(exc)
            return np.packbits(mask), np.packbits(calibration)
        mask_tasks = [pool.submit(masks, spec) for spec in specs]
        features = features_task.result()
        returns = cohort_returns(data, retention)
        everyone = np.ones(data.n_users, dtype=bool)
        baseline_signals = segment_signals(everyone, features, seed=seed, min_n=min_n)
        clv_values, clv_fit = clv_task.result()
        baseline_signals["predicted_clv"] = _clv_signal(clv_values, everyone, seed, min_n)
        baseline = {k: v.to_dict() for k, v in baseline_signals.items()}
        result = RefreshResult(as_of=as_of, baseline=baseline, clv_fit=clv_fit)
        holdout_shared: dict[Any, Any] = {}  # window revenues and all-users group, once

        def one(item: tuple[SegmentSpec, Future[Any]]) -> SegmentResult:
            spec, task = item
            got = task.result()
            if isinstance(got, str):
                return SegmentResult(spec.key, 0, 0.0, np.array([], dtype=object), {}, {}, {},
                                     error=got)
            mask, calibration_mask = (np.unpackbits(bits, count=data.n_users).view(bool)
                                      for bits in got)
            signals = segment_signals(mask, features, baseline=baseline_signals, seed=seed,
                                      min_n=min_n)
            signals["predicted_clv"] = _clv_signal(clv_values, mask, seed, min_n)
            holdout = holdout_check(calibration_mask, data, split, as_of, min_n=min_n,
                                    seed=seed, shared=holdout_shared)
            curve = retention_curve(mask, data, as_of, cohort="month", max_periods=12,
                                    returns=returns)
            return SegmentResult(
                key=spec.key,
                size=int(mask.sum()),
                share=float(mask.mean()) if data.n_users else 0.0,
                members=data.user_ids[mask],
                signals={k: v.to_dict() for k, v in signals.items()},
                holdout=_jsonable(holdout),
                retention=_frame_dict(curve),
            )

        # Segments are independent (each draws from its own seeded generators; shared caches
        # hold values that do not depend on who computed them first): two at a time, in order.
        result.segments.extend(map_in_threads(one, zip(specs, mask_tasks, strict=True)))
    return result


def cohort_returns(data: UserEvents, retention: RetentionDefinition | None
                   ) -> np.ndarray | None:
    """The return events of the snapshots' cohort tables (None: every event)."""
    if retention is None or retention.return_events is None:
        return None
    return return_lut(data, retention.return_events)


def _frame_dict(frame: pd.DataFrame) -> dict[str, Any]:
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].astype("str")
    out = out.astype(object).where(pd.notna(out), None)
    return {"columns": [str(c) for c in out.columns], "rows": out.to_numpy().tolist()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
