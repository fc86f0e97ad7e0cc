"""A refresh split into a per-partition map and a reduce over per-user rows. Pure.

Every per-user computation is local to a user-hash partition of the event store (a user lives
in exactly one partition), so ``refresh_map`` runs on one partition's events and returns one
row per user of that partition: the feature columns the signals read, each segment's
membership (at ``as_of`` and at the holdout split), the per-user inputs of the predictive-CLV
fit, the holdout windows' revenues and the retention flags. ``refresh_reduce`` concatenates
the rows of all partitions in the single-process user order (user ids sorted, as
``build_user_events`` codes them) and computes everything that spans users (signals with
their bootstrap intervals, the CLV fit, RFM scores, holdout, retention tables) on the same
values in the same order as ``run_refresh``: the results are identical.

What spans users and must be known before the map: ``as_of`` and the holdout ``split``
(from the earliest event of the dataset: ``refresh_split``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from events.event_kinds import RetentionDefinition
from events.frame import UserEvents
from segments.analytics.holdout import holdout_from_revenues
from segments.analytics.retention import retention_flags, retention_table

from .holdout import window_revenue
from .refresh import (
    HOLDOUT_FRACTION,
    RefreshResult,
    SegmentResult,
    SegmentSpec,
    _clv_signal,
    _frame_dict,
    _jsonable,
    clv_inputs,
    cohort_returns,
    predictive_clv_from_summary,
    segment_mask,
)
from .rfm import rfm_scores, rfm_segment_mask
from .value import segment_signals, user_features

RETENTION_COHORT = "month"
RETENTION_PERIODS = 12
MASK = "mask:"
CALIBRATION = "calibration:"
RETAINED = "retained_p"
CLV_COLUMNS = ("frequency", "recency", "T", "monetary_value")
META_KEY = b"segment_planner_fanout"


def refresh_split(as_of: int, start: int | None) -> int:
    """The holdout split of ``run_refresh``: ``start`` is the earliest event time (None: none)."""
    start = as_of if start is None else int(start)
    return int(as_of - (as_of - start) * HOLDOUT_FRACTION)


def refresh_map(
    data: UserEvents,
    specs: Sequence[SegmentSpec],
    *,
    as_of: int,
    split: int,
    outcome_event: str | None = None,
    retention: RetentionDefinition | None = None,
) -> pd.DataFrame:
    """Per-user rows of one partition (``data`` holds only its users). ``attrs`` carry what is
    summed over partitions (events, purchases, whether the outcome/cost occur, segment errors).
    ``retention``: as ``run_refresh``'s."""
    features = user_features(data, as_of, outcome=outcome_event, top_events=0,
                             retention=retention)
    keep = [c for c in features.columns
            if c not in {"first_seen", "last_seen", "signup", "tenure_days", "active_days",
                         "cost_total"}]
    columns: dict[str, Any] = {"user_id": np.asarray(data.user_ids, dtype=object)}
    for c in keep:
        columns[c] = features[c].to_numpy()
    signup = data.signup.astype(np.int64)
    columns["signup_us"] = signup
    # Predictive CLV inputs: the per-user purchase summary before as_of.
    summary, purchases = clv_inputs(data, as_of)
    has_summary = np.zeros(data.n_users, dtype=bool)
    clv = {c: np.full(data.n_users, np.nan) for c in CLV_COLUMNS}
    if summary is not None:
        rows = summary.index.to_numpy()
        has_summary[rows] = True
        for c in CLV_COLUMNS:
            clv[c][rows] = summary[c].to_numpy()
    columns["clv_summary"] = has_summary
    for c in CLV_COLUMNS:
        columns[f"clv_{c}"] = clv[c]
    # Holdout windows: revenue per user in [start, split) and [split, as_of).
    start = split - (as_of - split)
    columns["calibration_revenue"] = window_revenue(data, start, split)
    columns["holdout_revenue"] = window_revenue(data, split, as_of)
    # Retention flags of every user who signed up by as_of (the table reads only members).
    everyone = np.flatnonzero(signup <= as_of)
    flags = np.zeros((data.n_users, RETENTION_PERIODS), dtype=bool)
    flags[everyone] = retention_flags(everyone, data, as_of, RETENTION_COHORT,
                                      RETENTION_PERIODS, "on", cohort_returns(data, retention))
    for p in range(RETENTION_PERIODS):
        columns[f"{RETAINED}{p}"] = flags[:, p]
    errors: dict[str, str] = {}
    for spec in specs:
        if spec.kind == "rfm":  # scored on all users' quantiles: in the reduce
            continue
        try:
            mask = segment_mask(spec, data, as_of)
            calibration = segment_mask(spec, data, split) if spec.kind == "rule" else mask
        except (ValueError, KeyError) as exc:
            errors[spec.key] = str(exc)
            continue
        columns[f"{MASK}{spec.key}"] = np.asarray(mask, dtype=bool)
        columns[f"{CALIBRATION}{spec.key}"] = np.asarray(calibration, dtype=bool)
    frame = pd.DataFrame(columns)
    frame.attrs.update(
        events=int(data.n_events), purchases=int(purchases),
        time_min=int(data.time.min()) if data.n_events else None,
        outcome_found=bool(features.attrs.get("outcome_found")),
        has_cost=bool(data.has_cost), errors=errors,
        feature_attrs={k: features.attrs[k] for k in
                       ("as_of", "period_days", "outcome", "horizons", "retention_days",
                        "retention")},
        feature_columns=keep,
    )
    return frame


def merge_parts(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The partitions' rows in the single-process user order (user ids sorted)."""
    parts = [p for p in parts if p is not None]
    nonempty = [p for p in parts if len(p)]
    if not nonempty:
        merged = parts[0].iloc[:0] if parts else pd.DataFrame({"user_id": []})
    else:
        merged = pd.concat(nonempty, ignore_index=True, sort=False) if len(nonempty) > 1 \
            else nonempty[0]
        ids = merged["user_id"].to_numpy(dtype=object)
        order = np.argsort(ids.astype(str), kind="stable")
        merged = merged.take(order).reset_index(drop=True)
    merged.attrs = {}
    return merged


def refresh_reduce(
    parts: Sequence[pd.DataFrame],
    specs: Sequence[SegmentSpec],
    *,
    as_of: int,
    split: int,
    seed: int = 0,
    min_n: int = 30,
) -> RefreshResult:
    """``run_refresh`` from the partitions' ``refresh_map`` rows."""
    parts = list(parts)
    rows = merge_parts(parts)
    n = len(rows)
    attrs = [p.attrs for p in parts if p.attrs]
    first = attrs[0] if attrs else {}
    # Masks: a segment missing from a partition whose map failed on it is an error overall.
    errors: dict[str, str] = {}
    for a in attrs:
        for key, message in a.get("errors", {}).items():
            errors.setdefault(key, message)
    feature_columns = first.get("feature_columns", [])
    features = pd.DataFrame({c: rows[c].to_numpy() for c in feature_columns},
                            index=pd.RangeIndex(n, name="user"))
    features.attrs.update(first.get("feature_attrs", {}))
    features.attrs["outcome_found"] = any(a.get("outcome_found") for a in attrs)
    features.attrs["has_cost"] = any(a.get("has_cost") for a in attrs)
    user_ids = rows["user_id"].to_numpy(dtype=object) if n else np.array([], dtype=object)
    signup = rows["signup_us"].to_numpy(dtype=np.int64) if n else np.zeros(0, np.int64)

    everyone = np.ones(n, dtype=bool)
    baseline_signals = segment_signals(everyone, features, seed=seed, min_n=min_n)
    purchases = sum(int(a.get("purchases", 0)) for a in attrs)
    summary = None
    if purchases >= 50 and n:
        has = rows["clv_summary"].to_numpy(dtype=bool)
        summary = pd.DataFrame({c: rows[f"clv_{c}"].to_numpy(dtype=np.float64)[has]
                                for c in CLV_COLUMNS}, index=np.flatnonzero(has))
    clv_values, clv_fit = predictive_clv_from_summary(summary, purchases, n)
    baseline_signals["predicted_clv"] = _clv_signal(clv_values, everyone, seed, min_n)
    baseline = {k: v.to_dict() for k, v in baseline_signals.items()}
    rfm = rfm_scores(features) if any(s.kind == "rfm" for s in specs) else None
    start = split - (as_of - split)
    cal_rev = rows["calibration_revenue"].to_numpy(dtype=np.float64) if n else np.zeros(0)
    hold_rev = rows["holdout_revenue"].to_numpy(dtype=np.float64) if n else np.zeros(0)
    retained = np.column_stack([rows[f"{RETAINED}{p}"].to_numpy(dtype=bool)
                                for p in range(RETENTION_PERIODS)]) if n \
        else np.zeros((0, RETENTION_PERIODS), dtype=bool)
    result = RefreshResult(as_of=as_of, baseline=baseline, clv_fit=clv_fit)
    holdout_shared: dict[Any, Any] = {}
    for spec in specs:
        if spec.kind == "rfm":
            assert rfm is not None
            try:
                mask = np.asarray(rfm_segment_mask(rfm, spec.definition["rfm"]), dtype=bool)
            except (ValueError, KeyError) as exc:
                errors[spec.key] = str(exc)
            else:
                calibration_mask = mask
        elif spec.key not in errors:
            mask = rows[f"{MASK}{spec.key}"].to_numpy(dtype=bool) if n \
                else np.zeros(0, dtype=bool)
            calibration_mask = rows[f"{CALIBRATION}{spec.key}"].to_numpy(dtype=bool) if n \
                else np.zeros(0, dtype=bool)
        if spec.key in errors:
            result.segments.append(SegmentResult(spec.key, 0, 0.0, np.array([], dtype=object),
                                                 {}, {}, {}, error=errors[spec.key]))
            continue
        signals = segment_signals(mask, features, baseline=baseline_signals, seed=seed,
                                  min_n=min_n)
        signals["predicted_clv"] = _clv_signal(clv_values, mask, seed, min_n)
        holdout = holdout_from_revenues(calibration_mask, cal_rev, hold_rev, signup, start,
                                        split, as_of, min_n=min_n, seed=seed,
                                        shared=holdout_shared)
        members = np.flatnonzero(mask & (signup <= as_of))
        curve = retention_table(signup[members], retained[members], as_of, RETENTION_COHORT,
                                RETENTION_PERIODS, "on")
        result.segments.append(
            SegmentResult(
                key=spec.key,
                size=int(mask.sum()),
                share=float(mask.mean()) if n else 0.0,
                members=user_ids[mask],
                signals={k: v.to_dict() for k, v in signals.items()},
                holdout=_jsonable(holdout),
                retention=_frame_dict(curve),
            )
        )
    return result


def part_meta(frame: pd.DataFrame) -> bytes:
    """The map's ``attrs`` as JSON, kept in the part file's schema metadata."""
    return json.dumps(frame.attrs, default=str).encode()


def parts_totals(parts: Sequence[pd.DataFrame]) -> dict[str, Any]:
    """Users, events and the earliest event over the partitions' rows."""
    times = [p.attrs.get("time_min") for p in parts if p.attrs.get("time_min") is not None]
    return {"users": int(sum(len(p) for p in parts)),
            "events": int(sum(int(p.attrs.get("events", 0)) for p in parts)),
            "time_min": min(times) if times else None}


# ----------------------------------------------------------------------------- behaviour analyses
# A part is a flat dict of numpy arrays (written as one NPZ file per partition); kinds with a
# per-user stage keep ``user_ids`` so the reduce can restore the single-process user order.
