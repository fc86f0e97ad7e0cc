"""A refresh as two map passes over user-hash partitions whose parts do not grow with users. Pure.

The fan-out of ``run_refresh`` (one process) for data that does not fit one process. Each
partition is mapped twice; each map returns a *partial*: a flat dict of numpy arrays whose
size depends on the segments, the signals and the periods (and, in the first pass, on the
distinct values of a few discrete quantities), never on the number of users. A merge folds
the partials one at a time, so its memory is one partial plus the running totals.

Pass 1, ``stats_map`` -> ``stats_reduce`` (what spans users and must be known first):
  * the BG/NBD sufficient statistics: the distinct (frequency, recency, T) triples of the
    buyers with their counts, and the distinct (frequency, mean repeat spend) pairs for the
    Gamma-Gamma fit; the merge fits both (weighted likelihoods, ``clv.fit_bgnbd(weights=)``);
  * RFM value histograms (recency in whole days, frequency, revenue in cents): the merge turns
    them into the score thresholds.
  The result, the *broadcast*, is small JSON: the CLV fit and the RFM thresholds.

Pass 2, ``segments_map`` -> ``segments_reduce`` (with the broadcast): per group (everyone,
each segment, each segment's calibration membership, everyone signed up before the split)
counts, sums and sums of squares of every value signal, Poisson-bootstrap replicate sums,
the per-user CLV predictions aggregated the same way, the retention and holdout integer and
sum partials. Member lists are returned per partition (the caller writes them there).

Where the single process is exact, so is this (counts exactly; means, standard errors, the
CLV fit and lifts within floating-point rounding, since sums are added in another order).
Differences, by design:
  * bootstrap intervals come from a Poisson bootstrap: each member gets a Poisson(1) weight in
    each replicate, drawn in its partition from a generator seeded by (seed, signal, group,
    partition), so replicate sums add across partitions and do not depend on timing. The
    single process resamples members with replacement (multinomial); the two are the same
    bootstrap in distribution, their intervals differ by Monte-Carlo noise (a few tenths of a
    percent of the estimate on a segment of a few thousand users). As in the single process,
    samples with more than ``BOOTSTRAP_MAX_NONZERO`` nonzero values use the t interval, which
    is exact here; the predicted-CLV signal follows the same rule (the single process
    bootstraps it at any size, capping a resample at 50,000).
  * RFM: recency is scored in whole days and revenue in cents (so the histograms are bounded
    by the span and the value range), and users tied on a value at a score boundary are split
    by a hash of their user id in the proportion the boundary needs (the single process splits
    them by user order, which no partition knows). Users off a boundary value get the single
    process's score; the bins' sizes match to within the hash's rounding.
"""

from __future__ import annotations

import copy
import io
import json
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from events.event_kinds import RetentionDefinition
from events.frame import US_PER_DAY, UserEvents

from . import clv as clv_core
from .holdout import holdout_verdict, window_revenue
from .intervals import wilson_interval
from .refresh import (
    CLV_DISCOUNT_PER_WEEK,
    CLV_HORIZON_WEEKS,
    RefreshResult,
    SegmentResult,
    SegmentSpec,
    _frame_dict,
    _jsonable,
    cohort_returns,
    segment_mask,
)
from .retention import retention_counts, retention_flags, retention_table_from_counts
from .rfm import NO_ACTIVITY, SEGMENT_GRID, SEGMENT_NAMES, _to_five
from .value import (
    BOOTSTRAP_MAX_NONZERO,
    Z95,
    _lift,
    _make,
    as_signal,
    retention_unit,
    t_quantile_975,
    user_features,
)

RETENTION_COHORT = "month"
RETENTION_PERIODS = 12
N_BOOT = 1000
CLV_BOOT = 400
BOOT_DRAWS = 4_000_000  # bootstrap index draws held at once
RFM_BINS = 5
BASELINE = "baseline"
ALL_BEFORE_SPLIT = "all_users"
HOLDOUT_UNIT = "revenue per user per 30 days"
_UNIQUE_KEYS = {"bg": ("x", "tx", "T"), "gg": ("x", "m"), "rfm_r": ("v",), "rfm_f": ("v",),
                "rfm_m": ("v",)}
__all__ = ["segments_map", "segments_reduce", "stats_map", "stats_reduce", "partial_bytes",
           "partial_from_bytes"]


# ----------------------------------------------------------------------------- serialising
def partial_bytes(partial: Mapping[str, Any]) -> bytes:
    """A partial as NPZ bytes (arrays as they are; ``meta``, a JSON-able dict, as JSON)."""
    buffer = io.BytesIO()
    arrays = {k: np.asarray(v) for k, v in partial.items() if k != "meta"}
    arrays["meta"] = np.frombuffer(json.dumps(partial.get("meta", {})).encode(), dtype=np.uint8)
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def partial_from_bytes(data: bytes) -> dict[str, Any]:
    """``partial_bytes`` read back."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        out: dict[str, Any] = {k: npz[k] for k in npz.files if k != "meta"}
        out["meta"] = json.loads(npz["meta"].tobytes().decode()) if "meta" in npz.files else {}
    return out


# ----------------------------------------------------------------------------- pass 1
def _clv_summary(data: UserEvents, as_of: int) -> pd.DataFrame | None:
    """The buyers' (frequency, recency, T, monetary_value) before ``as_of`` (index: user code),
    as ``refresh.clv_inputs`` computes them (per user: the same in any partition)."""
    before = (data.revenue > 0) & (data.time < as_of)
    if not before.any():
        return None
    return clv_core.rfm_summary(data.user[before], data.time[before] / US_PER_DAY,
                                data.revenue[before], calibration_end=as_of / US_PER_DAY)


def _signup_min(data: UserEvents, as_of: int) -> int:
    signup = data.signup.astype(np.int64)
    signup = signup[signup <= as_of]
    return int(signup.min()) if len(signup) else np.iinfo(np.int64).max


def cohort_axis(signup_min: int | None, as_of: int) -> np.ndarray:
    """Every retention cohort (month start, µs) a member can fall in: from the earliest
    signup's month to ``as_of``'s. Pass 2 counts on this fixed axis, so its parts have the
    same shape in every partition (the span's months, not the users, set their size)."""
    if signup_min is None:
        return np.zeros(0, np.int64)
    months = np.arange(np.datetime64(int(signup_min), "us").astype("datetime64[M]"),
                       np.datetime64(int(as_of), "us").astype("datetime64[M]") + np.timedelta64(1, "M"))
    return months.astype("datetime64[us]").astype(np.int64)


def _rfm_values(features: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(active users, {R, F, M: integer keys, higher is better}) of a features table."""
    recency = features["recency_days"].to_numpy(dtype=np.float64)
    active = ~np.isnan(recency) & (features["n_events"].to_numpy() > 0)
    with np.errstate(invalid="ignore"):
        keys = {
            "r": -np.floor(np.where(active, recency, 0.0)).astype(np.int64),
            "f": np.round(features["n_events"].to_numpy(dtype=np.float64)).astype(np.int64),
            "m": np.round(features["revenue_total"].to_numpy(dtype=np.float64) * 100
                          ).astype(np.int64),
        }
    return active, keys


def stats_map(data: UserEvents, *, as_of: int) -> dict[str, Any]:
    """Pass 1 of one partition: CLV sufficient statistics, RFM histograms, totals."""
    out: dict[str, Any] = {
        "users": np.array([data.n_users], np.int64),
        "events": np.array([data.n_events], np.int64),
        "purchases": np.array([int((data.revenue > 0).sum())], np.int64),
        "time_min": np.array([int(data.time.min()) if data.n_events else np.iinfo(np.int64).max],
                             np.int64),
        "signup_min": np.array([_signup_min(data, as_of)], np.int64),
    }
    summary = _clv_summary(data, as_of)
    if summary is None:
        summary = pd.DataFrame({c: np.zeros(0) for c in ("frequency", "recency", "T",
                                                         "monetary_value")})
    (x, tx, T), n = clv_core.unique_rows([summary["frequency"].to_numpy(), summary["recency"].to_numpy(),
                                  summary["T"].to_numpy()])
    out.update({"bg_x": x, "bg_tx": tx, "bg_T": T, "bg_n": n})
    repeat = summary["frequency"].to_numpy() > 0
    (gx, gm), gn = clv_core.unique_rows([summary["frequency"].to_numpy()[repeat],
                                 summary["monetary_value"].to_numpy()[repeat]])
    out.update({"gg_x": gx, "gg_m": gm, "gg_n": gn})
    features = user_features(data, as_of, top_events=0)
    active, keys = _rfm_values(features)
    for dim, key in keys.items():
        (v,), c = clv_core.unique_rows([key[active]])
        out[f"rfm_{dim}_v"], out[f"rfm_{dim}_n"] = v.astype(np.int64), c
    return out


def _fold_unique(acc: dict[str, Any], part: Mapping[str, Any]) -> None:
    for prefix, cols in _UNIQUE_KEYS.items():
        columns = [np.r_[acc[f"{prefix}_{c}"], part[f"{prefix}_{c}"]] for c in cols]
        counts = np.r_[acc[f"{prefix}_n"], part[f"{prefix}_n"]]
        rows, n = clv_core.unique_rows(columns, counts)
        for c, values in zip(cols, rows, strict=True):
            acc[f"{prefix}_{c}"] = values
        acc[f"{prefix}_n"] = n


def _thresholds(values: np.ndarray, counts: np.ndarray, bins: int) -> list[list[float]]:
    """Per interior edge of ``pd.qcut`` on ranks 1..N: (boundary value, share of the users
    with that value whose rank is at or below the edge)."""
    total = int(counts.sum())
    order = np.argsort(values, kind="stable")
    values, counts = values[order], counts[order]
    below = np.cumsum(counts) - counts
    out = []
    for j in range(1, bins):
        edge = 1 + (total - 1) * j / bins  # np.quantile of ranks 1..N, as qcut computes it
        at_or_below = math.floor(edge + 1e-9)
        i = int(np.searchsorted(below + counts, at_or_below, side="left"))
        if at_or_below <= 0 or i >= len(values):
            out.append([float("-inf") if at_or_below <= 0 else float("inf"), 1.0])
            continue
        out.append([float(values[i]), (at_or_below - int(below[i])) / int(counts[i])])
    return out


def stats_reduce(parts: Iterable[Mapping[str, Any]], *, any_rfm: bool = True,
                 bins: int = RFM_BINS) -> dict[str, Any]:
    """Pass 1's merge: the broadcast (CLV fit, RFM thresholds, totals) as a JSON-able dict."""
    acc: dict[str, Any] | None = None
    for part in parts:
        if acc is None:
            acc = {k: np.asarray(v).copy() for k, v in part.items() if k != "meta"}
            continue
        for key in ("users", "events", "purchases"):
            acc[key] = acc[key] + part[key]
        acc["time_min"] = np.minimum(acc["time_min"], part["time_min"])
        acc["signup_min"] = np.minimum(acc["signup_min"], part["signup_min"])
        _fold_unique(acc, part)
    if acc is None:
        raise ValueError("no partitions to merge")
    purchases = int(acc["purchases"][0])
    fit: dict[str, Any]
    if purchases < 50 or not len(acc["bg_n"]):
        fit = {"fitted": False, "reason": "fewer than 50 purchases"}
    else:
        try:
            bg = clv_core.fit_bgnbd(acc["bg_x"], acc["bg_tx"], acc["bg_T"], weights=acc["bg_n"])
            gg = clv_core.fit_gamma_gamma(acc["gg_x"], acc["gg_m"], weights=acc["gg_n"])
        except (ValueError, FloatingPointError, RuntimeError) as exc:
            fit = {"fitted": False, "reason": str(exc)}
        else:
            fit = {"fitted": True,
                   "bgnbd": {k: float(getattr(bg, k)) for k in ("r", "alpha", "a", "b")},
                   "gamma_gamma": {k: float(getattr(gg, k)) for k in ("p", "q", "v")},
                   "horizon_weeks": CLV_HORIZON_WEEKS, "annual_discount": 0.10}
    time_min = int(acc["time_min"][0])
    signup_min = int(acc["signup_min"][0])
    rfm = {dim: _thresholds(acc[f"rfm_{dim}_v"], acc[f"rfm_{dim}_n"], bins)
           for dim in ("r", "f", "m")} if any_rfm else None
    return {"users": int(acc["users"][0]), "events": int(acc["events"][0]),
            "purchases": purchases, "time_min": None if time_min == np.iinfo(np.int64).max
            else time_min, "signup_min": None if signup_min == np.iinfo(np.int64).max
            else signup_min, "clv_fit": fit, "rfm": rfm, "rfm_bins": bins,
            "sizes": {"bg_triples": len(acc["bg_n"]), "gg_pairs": len(acc["gg_n"]),
                      **{f"rfm_{d}_values": len(acc[f"rfm_{d}_n"]) for d in "rfm"}}}


# ----------------------------------------------------------------------------- RFM scores
def user_hash01(user_ids: np.ndarray) -> np.ndarray:
    """A stable number in [0, 1) per user id (the same in every partition and process)."""
    ids = np.asarray(user_ids, dtype=object).astype(str).astype(object)
    return (pd.util.hash_array(ids) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def rfm_segments(features: pd.DataFrame, user_ids: np.ndarray, thresholds: Mapping[str, Any],
                 bins: int = RFM_BINS) -> np.ndarray:
    """The named RFM segment of each user from broadcast thresholds (see the module doc)."""
    active, keys = _rfm_values(features)
    u = user_hash01(user_ids)
    score = {}
    for dim, key in keys.items():
        s = np.ones(len(key), np.int64)
        for value, share in thresholds[dim]:
            s += (key > value) | ((key == value) & (u >= share))
        score[dim] = s
    fm = (score["f"] + score["m"] + 1) // 2
    segment = np.full(len(active), NO_ACTIVITY, dtype=object)
    segment[active] = SEGMENT_GRID[_to_five(score["r"][active], bins) - 1,
                                   _to_five(fm[active], bins) - 1]
    return segment


# ----------------------------------------------------------------------------- pass 2
def _rng(seed: int, name: str, group: str, part: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(name.encode()),
                                  zlib.crc32(group.encode()), int(part)])


def boot_cap(partitions: int) -> int:
    """The most nonzero values a partition bootstraps. The merge bootstraps only when all
    partitions together have at most ``BOOTSTRAP_MAX_NONZERO``; users are spread over the
    partitions by a hash, so a partition of such a sample holds about 1/P of it. Twice that
    (plus 50) keeps the maps from drawing replicates the merge will not use; a partition above
    it (a rare, lopsided sample) makes the merge fall back to the t interval."""
    return BOOTSTRAP_MAX_NONZERO if partitions <= 1 else \
        min(BOOTSTRAP_MAX_NONZERO, 2 * BOOTSTRAP_MAX_NONZERO // partitions + 50)


def _mean_partial(out: dict[str, Any], key: str, x: np.ndarray, rng: np.random.Generator,
                  n_boot: int, cap: int = BOOTSTRAP_MAX_NONZERO) -> None:
    """n, sum, sum of squares, nonzero count; Poisson-bootstrap replicate sums and weights
    (NaN when this partition has more than ``cap`` nonzero values)."""
    x = np.asarray(x, dtype=np.float64)
    nonzero = x[x != 0]
    k = len(nonzero)
    out[f"{key}/stats"] = np.array([len(x), x.sum(), np.dot(x, x), k], dtype=np.float64)
    if k > cap:
        out[f"{key}/boot_sum"] = np.full(n_boot, np.nan)
        out[f"{key}/boot_w"] = np.full(n_boot, np.nan)
        return
    # Poisson(1) weights per member and replicate, drawn the cheap way: the zeros' total
    # weight is Poisson(n - k); the nonzero values' weights are a Poisson(k) number of draws
    # spread uniformly over them (the same joint distribution as k independent Poisson(1)).
    weights = rng.poisson(float(len(x) - k), size=n_boot).astype(np.float64)
    draws = rng.poisson(float(k), size=n_boot)
    weights += draws
    sums = np.zeros(n_boot)
    cum = np.cumsum(draws)
    first = 0
    while k and first < n_boot:  # batches keep the index array under BOOT_DRAWS
        base = int(cum[first - 1]) if first else 0
        last = max(first + 1, int(np.searchsorted(cum, base + BOOT_DRAWS, side="right")))
        batch = draws[first:last]
        idx = rng.integers(0, k, size=int(batch.sum()))
        rep = np.repeat(np.arange(last - first), batch)
        sums[first:last] = np.bincount(rep, weights=nonzero[idx], minlength=last - first)
        first = last
    out[f"{key}/boot_sum"] = sums
    out[f"{key}/boot_w"] = weights


def _group(out: dict[str, Any], g: str, mask: np.ndarray, cols: Mapping[str, Any],
           clv: np.ndarray, seed: int, part: int, n_boot: int, clv_boot: int) -> None:
    """The signal partial of one group (boolean mask over the partition's users)."""
    cap = cols["cap"]
    out[f"{g}/size"] = np.array([int(mask.sum())], np.int64)
    active = mask & cols["active_period"]
    _mean_partial(out, f"{g}/revenue_per_active_user", cols["revenue_period"][active],
                  _rng(seed, "revenue_per_active_user", g, part), n_boot, cap)
    for h in cols["horizons"]:
        chosen = mask & cols[f"matured_{h}"]
        _mean_partial(out, f"{g}/ltv_{h}", cols[f"ltv_{h}"][chosen],
                      _rng(seed, f"ltv_{h}", g, part), n_boot, cap)
    if cols["has_cost"]:
        _mean_partial(out, f"{g}/cost_to_serve", cols["cost_period"][active],
                      _rng(seed, "cost_to_serve", g, part), n_boot, cap)
    counts = [int(np.count_nonzero(mask & cols["converted"]))]
    for d in cols["retention_days"]:
        eligible = mask & cols[f"eligible_d{d}"]
        counts += [int(eligible.sum()), int(np.count_nonzero(eligible & cols[f"retained_d{d}"]))]
    out[f"{g}/counts"] = np.array(counts, np.int64)
    values = clv[mask]
    _mean_partial(out, f"{g}/predicted_clv", values[np.isfinite(values)],
                  _rng(seed, "predicted_clv", g, part), clv_boot, cap)
    members = np.flatnonzero(mask & cols["signed_up"])
    cohorts, sizes, hits, base = retention_counts(cols["signup"][members],
                                                  cols["retained"][members], cols["as_of"],
                                                  RETENTION_COHORT, RETENTION_PERIODS)
    axis = cols["cohorts"]
    at = np.searchsorted(axis, cohorts)
    if len(cohorts) and (at >= len(axis)).any() or not np.array_equal(axis[at], cohorts):
        raise ValueError("a member's signup falls outside the broadcast cohort axis")
    out[f"{g}/ret_sizes"] = np.zeros(len(axis), np.int64)
    out[f"{g}/ret_hits"] = np.zeros((len(axis), RETENTION_PERIODS), np.int64)
    out[f"{g}/ret_base"] = np.zeros((len(axis), RETENTION_PERIODS), np.int64)
    out[f"{g}/ret_sizes"][at], out[f"{g}/ret_hits"][at], out[f"{g}/ret_base"][at] = \
        sizes, hits, base
    out[f"{g}/ret_members"] = np.array([len(members)], np.int64)


def _holdout_group(out: dict[str, Any], g: str, who: str, mask: np.ndarray, cal: np.ndarray,
                   hold: np.ndarray, seed: int, part: int, n_boot: int, cap: int) -> None:
    c, h = cal[mask], hold[mask]
    _mean_partial(out, f"{g}/cal", c, _rng(seed, f"{who}_calibration", g, part), n_boot, cap)
    _mean_partial(out, f"{g}/hold", h, _rng(seed, f"{who}_holdout", g, part), n_boot, cap)
    out[f"{g}/cross"] = np.array([np.dot(c, h)], np.float64)


def segments_map(
    data: UserEvents,
    specs: Sequence[SegmentSpec],
    *,
    as_of: int,
    split: int,
    broadcast: Mapping[str, Any],
    part: int,
    partitions: int = 1,
    outcome_event: str | None = None,
    seed: int = 0,
    n_boot: int = N_BOOT,
    clv_boot: int = CLV_BOOT,
    retention: RetentionDefinition | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Pass 2 of partition ``part`` of ``partitions``: (the partial, {segment key: member
    user ids}). ``retention``: as ``run_refresh``'s."""
    features = user_features(data, as_of, outcome=outcome_event, top_events=0,
                             retention=retention)
    signup = data.signup.astype(np.int64)
    horizons = list(features.attrs["horizons"])
    days = list(features.attrs["retention_days"])
    cols: dict[str, Any] = {c: features[c].to_numpy() for c in features.columns}
    everyone = np.flatnonzero(signup <= as_of)
    retained = np.zeros((data.n_users, RETENTION_PERIODS), dtype=bool)
    retained[everyone] = retention_flags(everyone, data, as_of, RETENTION_COHORT,
                                         RETENTION_PERIODS, "on",
                                         cohort_returns(data, retention))
    cols.update(cap=boot_cap(partitions), cohorts=cohort_axis(broadcast.get("signup_min"), as_of), horizons=horizons, retention_days=days, has_cost=bool(data.has_cost),
                signup=signup, signed_up=signup <= as_of, retained=retained, as_of=as_of,
                active_period=cols["active_period"].astype(bool),
                converted=cols["converted"].astype(bool))
    # Per-user CLV predictions with the broadcast fit (users who never bought: 0).
    fit = broadcast["clv_fit"]
    clv = np.full(data.n_users, np.nan)
    if fit.get("fitted"):
        clv[:] = 0.0
        summary = _clv_summary(data, as_of)
        if summary is not None and len(summary):
            value = clv_core.predict_clv(
                clv_core.BGNBDParams(**fit["bgnbd"]), clv_core.GammaGammaParams(**fit["gamma_gamma"]),
                summary["frequency"].to_numpy(), summary["recency"].to_numpy(),
                summary["T"].to_numpy(), summary["monetary_value"].to_numpy(),
                horizon_periods=CLV_HORIZON_WEEKS, discount_rate_per_period=CLV_DISCOUNT_PER_WEEK)
            clv[summary.index.to_numpy()] = np.nan_to_num(value)
    start = split - (as_of - split)
    cal_rev = window_revenue(data, start, split) * (30 * US_PER_DAY / (split - start))
    hold_rev = window_revenue(data, split, as_of) * (30 * US_PER_DAY / (as_of - split))
    out: dict[str, Any] = {}
    errors: dict[str, str] = {}
    members: dict[str, np.ndarray] = {}
    rfm = None
    if any(s.kind == "rfm" for s in specs):
        rfm = rfm_segments(features, data.user_ids, broadcast["rfm"],
                           int(broadcast.get("rfm_bins", RFM_BINS)))
    every = np.ones(data.n_users, dtype=bool)
    _group(out, BASELINE, every, cols, clv, seed, part, n_boot, clv_boot)
    _holdout_group(out, ALL_BEFORE_SPLIT, "all_users", signup < split, cal_rev, hold_rev, seed,
                   part, n_boot, cols["cap"])
    for spec in specs:
        try:
            if spec.kind == "rfm":
                name = spec.definition["rfm"]
                if name not in SEGMENT_NAMES:
                    raise ValueError(f"unknown RFM segment {name!r}; known: "
                                     f"{', '.join(SEGMENT_NAMES)}")
                mask = rfm == name
                calibration = mask
            else:
                mask = np.asarray(segment_mask(spec, data, as_of), dtype=bool)
                calibration = (np.asarray(segment_mask(spec, data, split), dtype=bool)
                               if spec.kind == "rule" else mask)
        except (ValueError, KeyError) as exc:
            errors[spec.key] = str(exc)
            continue
        _group(out, f"seg:{spec.key}", mask, cols, clv, seed, part, n_boot, clv_boot)
        _holdout_group(out, f"cal:{spec.key}", "segment", calibration, cal_rev, hold_rev, seed,
                       part, n_boot, cols["cap"])
        members[spec.key] = np.asarray(data.user_ids, dtype=object)[mask]
    out["users"] = np.array([data.n_users], np.int64)
    out["meta"] = {"errors": errors, "horizons": horizons, "retention_days": days,
                   "has_cost": bool(data.has_cost),
                   "outcome_found": bool(features.attrs.get("outcome_found")),
                   "outcome": features.attrs.get("outcome"),
                   "period_days": int(features.attrs["period_days"]),
                   "retention": features.attrs.get("retention")}
    return out, members


# ----------------------------------------------------------------------------- pass 2 merge
def _fold(acc: dict[str, Any], part: Mapping[str, Any]) -> None:
    """Add one partial into the running totals (every array has the same shape in every
    partition: the cohort axis is broadcast)."""
    for key, value in part.items():
        if key == "meta":
            continue
        acc[key] = np.asarray(value).copy() if key not in acc else acc[key] + value


def _mean_signal(acc: Mapping[str, Any], key: str, name: str, unit: str, empty: str, *,
                 min_n: int, max_rel_width: float) -> tuple[Any, float | None]:
    """(Signal, standard error) of a mean from its merged partial."""
    n, total, squares, k = acc[f"{key}/stats"]
    n = int(n)
    kw = {"min_n": min_n, "max_rel_width": max_rel_width}
    if n == 0:
        return _make(name, None, None, None, 0, "bootstrap", unit, reason=empty, **kw), None
    estimate = total / n
    var = max(squares - total * total / n, 0.0) / (n - 1) if n > 1 else float("nan")
    se = math.sqrt(var / n) if n > 1 else None
    boots = acc[f"{key}/boot_sum"]
    if k <= BOOTSTRAP_MAX_NONZERO and np.isfinite(boots).all():
        with np.errstate(invalid="ignore", divide="ignore"):
            means = boots / acc[f"{key}/boot_w"]
        low, high = np.nanquantile(means, [0.025, 0.975])
        return _make(name, estimate, float(low), float(high), n, "bootstrap", unit, **kw), se
    half = t_quantile_975(n - 1) * math.sqrt(var) / math.sqrt(n)
    return _make(name, estimate, estimate - half, estimate + half, n, "t", unit, **kw), se


def _wilson(name: str, successes: int, trials: int, unit: str, empty: str, **kw: Any) -> Any:
    if trials == 0:
        return _make(name, None, None, None, 0, "wilson", unit, reason=empty, **kw)
    low, high = wilson_interval(successes, trials)
    return _make(name, successes / trials, low, high, trials, "wilson", unit, **kw)


def _signals(acc: Mapping[str, Any], g: str, meta: Mapping[str, Any], total_users: int,
             baseline: Mapping[str, Any] | None, *, min_n: int, max_rel_width: float = 0.5,
             period_days: int = 30) -> dict[str, Any]:
    """``value.segment_signals`` (plus predicted_clv) of one group from its merged partial."""
    kw = {"min_n": min_n, "max_rel_width": max_rel_width}
    size = int(acc[f"{g}/size"][0])
    out: dict[str, Any] = {}
    out["size"] = _make("size", float(size), None, None, size, "count", "users", **kw)
    out["share"] = _wilson("share", size, total_users, "share of all users", "no users", **kw)
    out["revenue_per_active_user"], _ = _mean_signal(
        acc, f"{g}/revenue_per_active_user", "revenue_per_active_user",
        f"revenue per active user per {period_days} days",
        f"no user active in the last {period_days} days", **kw)
    ltv_se: dict[int, float | None] = {}
    for h in meta["horizons"]:
        out[f"ltv_{h}"], ltv_se[h] = _mean_signal(
            acc, f"{g}/ltv_{h}", f"ltv_{h}", f"revenue per user in the first {h} days",
            f"no user has {h} days of history", **kw)
    counts = acc[f"{g}/counts"]
    for i, d in enumerate(meta["retention_days"]):
        eligible, retained = int(counts[1 + 2 * i]), int(counts[2 + 2 * i])
        out[f"retention_d{d}"] = _wilson(
            f"retention_d{d}", retained, eligible, retention_unit(meta.get("retention"), d),
            f"no user is old enough for day-{d} retention (needs {d + 1} days)", **kw)
    converted = int(counts[0])
    outcome = meta.get("outcome")
    if outcome is None:
        out["conversion"] = _make("conversion", None, None, None, size, "wilson",
                                  "share converted", reason="no outcome event chosen", **kw)
    else:
        out["conversion"] = _wilson("conversion", converted, size, "share converted",
                                    "no users in the segment", **kw)
        if outcome and not meta.get("outcome_found", True):
            c = out["conversion"]
            out["conversion"] = _make(
                "conversion", c.estimate, c.low, c.high, size, "wilson", "share converted",
                reason=f"outcome event never occurs in the data: {', '.join(outcome)}", **kw)
    if meta["has_cost"]:
        out["cost_to_serve"], _ = _mean_signal(
            acc, f"{g}/cost_to_serve", "cost_to_serve",
            f"cost per active user per {period_days} days",
            f"no user active in the last {period_days} days", **kw)

    def base_part(key: str, own: tuple[float | None, float | None]
                  ) -> tuple[float | None, float | None]:
        if baseline is None:
            return own
        if key not in baseline:
            return None, None
        signal = as_signal(baseline[key])
        se = None if signal.low is None or signal.high is None else \
            (signal.high - signal.low) / (2 * Z95)
        return signal.estimate, se

    if 90 in meta["horizons"]:
        ltv = out["ltv_90"]
        n90 = int(acc[f"{g}/ltv_90/stats"][0])
        out["lift_vs_baseline_ltv_90"] = _lift(
            "lift_vs_baseline_ltv_90", (ltv.estimate, ltv_se[90], n90),
            base_part("ltv_90", (ltv.estimate, ltv_se[90])),
            "ratio of LTV90 to all users", **kw)
    known = out["conversion"].estimate is not None
    p = se = None
    if size and known:
        p = converted / size
        se = math.sqrt(p * (1 - p) / size)
    out["lift_vs_baseline_conversion"] = _lift(
        "lift_vs_baseline_conversion", (p, se, size), base_part("conversion", (p, se)),
        "ratio of conversion to all users",
        unknown=None if known else out["conversion"].warning, **kw)
    clv, _ = _mean_signal(acc, f"{g}/predicted_clv", "predicted_clv", "money per user",
                          "no members", min_n=min_n, max_rel_width=float("inf"))
    out["predicted_clv"] = clv
    return out


def _holdout(acc: Mapping[str, Any], g: str, who: str, *, min_n: int) -> dict[str, Any]:
    kw = {"min_n": min_n, "max_rel_width": 0.5}
    cal, _ = _mean_signal(acc, f"{g}/cal", f"{who}_calibration", HOLDOUT_UNIT, "no users", **kw)
    hold, _ = _mean_signal(acc, f"{g}/hold", f"{who}_holdout", HOLDOUT_UNIT, "no users", **kw)
    n, sc, scc, _k = acc[f"{g}/cal/stats"]
    _n, sh, shh, _k2 = acc[f"{g}/hold/stats"]
    sch = float(acc[f"{g}/cross"][0])
    n = int(n)
    ratio = low = high = None
    if n and sc / n > 0:
        mc, mh = sc / n, sh / n
        ratio = mh / mc
        if mh > 0 and n >= 2:
            vc = (scc - n * mc * mc) / (n - 1)
            vh = (shh - n * mh * mh) / (n - 1)
            cov = (sch - n * mc * mh) / (n - 1)
            var = (vh / mh**2 + vc / mc**2 - 2 * cov / (mh * mc)) / n
            se = math.sqrt(max(var, 0.0))
            low, high = ratio * math.exp(-Z95 * se), ratio * math.exp(Z95 * se)
    overlap = False
    if None not in (cal.low, cal.high, hold.low, hold.high):
        overlap = cal.low <= hold.high and hold.low <= cal.high
    return {"n": n, "calibration": cal.to_dict(), "holdout": hold.to_dict(), "ratio": ratio,
            "ratio_low": low, "ratio_high": high, "overlap": bool(overlap)}


def segments_reduce(
    parts: Iterable[Mapping[str, Any]],
    specs: Sequence[SegmentSpec],
    *,
    as_of: int,
    split: int,
    broadcast: Mapping[str, Any],
    min_n: int = 30,
) -> RefreshResult:
    """Pass 2's merge: ``run_refresh``'s result (members left empty: they stay per partition)."""
    acc: dict[str, Any] = {}
    errors: dict[str, str] = {}
    meta: dict[str, Any] = {}
    for part in parts:
        _fold(acc, part)
        pm = part.get("meta", {})
        for key, message in pm.get("errors", {}).items():
            errors.setdefault(key, message)
        if not meta:
            meta = dict(pm)
        else:
            meta["outcome_found"] = meta.get("outcome_found") or pm.get("outcome_found")
            meta["has_cost"] = meta.get("has_cost") or pm.get("has_cost")
    if not acc:
        raise ValueError("no partitions to merge")
    users = int(acc["users"][0])
    baseline_signals = _signals(acc, BASELINE, meta, users, None, min_n=min_n)
    baseline = {k: v.to_dict() for k, v in baseline_signals.items()}
    result = RefreshResult(as_of=as_of, baseline=baseline, clv_fit=dict(broadcast["clv_fit"]))
    start = split - (as_of - split)
    base_holdout = _holdout(acc, ALL_BEFORE_SPLIT, "all_users", min_n=min_n)
    axis = cohort_axis(broadcast.get("signup_min"), as_of)
    for spec in specs:
        g = f"seg:{spec.key}"
        if spec.key in errors or f"{g}/size" not in acc:
            result.segments.append(SegmentResult(
                spec.key, 0, 0.0, np.array([], dtype=object), {}, {}, {},
                error=errors.get(spec.key, "not evaluated")))
            continue
        signals = _signals(acc, g, meta, users, baseline, min_n=min_n)
        seg = _holdout(acc, f"cal:{spec.key}", "segment", min_n=min_n)
        holdout = holdout_verdict(seg, copy.deepcopy(base_holdout), start,
                                  split, as_of, HOLDOUT_UNIT, min_n=min_n)
        present = acc[f"{g}/ret_sizes"] > 0  # the single process lists members' cohorts
        table = retention_table_from_counts(
            axis[present], acc[f"{g}/ret_sizes"][present], acc[f"{g}/ret_hits"][present],
            acc[f"{g}/ret_base"][present], int(acc[f"{g}/ret_members"][0]), RETENTION_COHORT,
            RETENTION_PERIODS, "on")
        size = int(acc[f"{g}/size"][0])
        result.segments.append(SegmentResult(
            key=spec.key, size=size, share=size / users if users else 0.0,
            members=np.array([], dtype=object),
            signals={k: v.to_dict() for k, v in signals.items()},
            holdout=_jsonable(holdout), retention=_frame_dict(table)))
    return result

