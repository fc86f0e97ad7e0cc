"""Clustering suggestions: k-means on log-scaled, standardized per-user behaviour. Pure.

Pipeline: pick behaviour columns of a ``user_features`` table, ``sign(x) * log1p(|x|)``, then
``StandardScaler`` (fitted on all users). For each k in ``k_range`` k-means (scikit-learn) is fitted
on a seeded scan sample of at most ``SCAN_SAMPLE`` users and scored by its silhouette there; the
best k wins (ties to the smaller k) and is refitted on the larger seeded sample of at most
``sample_size`` users. Every user is then labelled by ``predict``.
Clusters are numbered by size (0 = largest). Each is described by its most distinguishing
columns: the cluster mean in the standardized log space is a z-score against the overall mean
(0); the columns with the largest |z| (at least ``MIN_Z``) are put in words, with the ratio of
the cluster's mean to the overall mean in original units. Stability: the chosen k is refitted
on ``n_bootstrap`` bootstrap resamples of the sample; each refit labels the sample points and
the adjusted Rand index against the main fit's labels is averaged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.preprocessing import StandardScaler

from .value import EVENT_PREFIX

BEHAVIOUR_COLUMNS = ("n_events", "active_days", "revenue_total", "revenue_period", "ltv_90",
                     "recency_days")
MAX_EVENT_COLUMNS = 10
SCAN_SAMPLE = 5_000
N_INIT = 4
BOOT_N_INIT = 2
MIN_Z = 0.5
MAX_PHRASES = 3

# column -> (noun, kind); kind picks the wording: count, amount or recency.
LABELS: dict[str, tuple[str, str]] = {
    "n_events": ("events", "count"),
    "active_days": ("active days", "count"),
    "revenue_total": ("revenue", "amount"),
    "revenue_period": ("recent revenue", "amount"),
    "ltv_30": ("revenue in first 30 days", "amount"),
    "ltv_90": ("revenue in first 90 days", "amount"),
    "ltv_365": ("revenue in first 365 days", "amount"),
    "cost_total": ("cost", "amount"),
    "recency_days": ("days since last seen", "recency"),
    "tenure_days": ("days since signup", "amount"),
}


def default_columns(features: pd.DataFrame, max_event_columns: int = MAX_EVENT_COLUMNS) -> list[str]:
    """Behaviour columns present in ``features``, plus the most frequent event-count columns."""
    cols = [c for c in BEHAVIOUR_COLUMNS if c in features.columns]
    events = [c for c in features.columns if str(c).startswith(EVENT_PREFIX)]
    totals = features[events].sum().sort_values(ascending=False, kind="stable")
    return cols + list(totals.index[:max_event_columns])


def _label(column: str) -> tuple[str, str]:
    if column in LABELS:
        return LABELS[column]
    if column.startswith(EVENT_PREFIX):
        return f"{column[len(EVENT_PREFIX):]} events", "count"
    return column.replace("_", " "), "amount"


def _ratio_text(ratio: float | None) -> str:
    if ratio is None or not math.isfinite(ratio):
        return ""
    number = f"{ratio:.0f}" if ratio >= 10 else f"{ratio:.2g}"
    return f" ({number}x average)"


def phrase(
    column: str, z: float, ratio: float | None, mean: float | None = None,
    overall: float | None = None,
) -> str:
    """Plain words for one distinguishing column, e.g. 'many more events (3.1x average)'."""
    noun, kind = _label(column)
    strong = abs(z) >= 1
    if kind == "count":
        words = ("many more" if strong else "more") if z > 0 else (
            "far fewer" if strong else "fewer")
        text = f"{words} {noun}"
    elif kind == "recency":
        text = ("long inactive" if strong else "less recently active") if z > 0 else (
            "very recently active" if strong else "more recently active")
        if mean is None or overall is None:
            return text
        return f"{text} (last seen {mean:.0f} days ago on average vs {overall:.0f})"
    else:
        words = ("very high" if strong else "high") if z > 0 else ("very low" if strong else "low")
        text = f"{words} {noun}"
    return text + _ratio_text(ratio)


def _transform(raw: pd.DataFrame) -> np.ndarray:
    values = raw.to_numpy(dtype=np.float64)
    return np.sign(values) * np.log1p(np.abs(values))


def _stability_label(score: float) -> str:
    if score >= 0.9:
        return "very stable"
    if score >= 0.75:
        return "stable"
    if score >= 0.5:
        return "moderately stable"
    return "unstable"


@dataclass
class ClusterSuggestions:
    """Result of ``suggest_clusters``; ``labels`` is aligned with the features' rows."""

    k: int
    silhouette: dict[int, float]
    columns: list[str]
    clusters: list[dict[str, Any]]
    stability: float
    stability_scores: list[float]
    labels: np.ndarray = field(repr=False)
    index: np.ndarray = field(repr=False)
    sample_size: int = 0
    seed: int = 0

    @property
    def stability_label(self) -> str:
        """'very stable' / 'stable' / 'moderately stable' / 'unstable' from the mean ARI."""
        return _stability_label(self.stability)

    def mask(self, cluster: int) -> np.ndarray:
        """Boolean mask over the features' rows of one cluster (to save it as a segment)."""
        if not 0 <= cluster < self.k:
            raise ValueError(f"cluster must be in 0..{self.k - 1}")
        return self.labels == cluster

    def members(self, cluster: int) -> np.ndarray:
        """Index values (user codes) of one cluster's members."""
        return self.index[self.mask(cluster)]

    def to_dict(self, include_labels: bool = False) -> dict[str, Any]:
        """JSON-ready summary; per-user labels only on request."""
        out: dict[str, Any] = {
            "k": self.k,
            "silhouette": {str(k): v for k, v in self.silhouette.items()},
            "columns": list(self.columns),
            "clusters": self.clusters,
            "stability": self.stability,
            "stability_label": self.stability_label,
            "stability_scores": list(self.stability_scores),
            "sample_size": self.sample_size,
            "n_users": len(self.labels),
            "seed": self.seed,
        }
        if include_labels:
            out["labels"] = [int(v) for v in self.labels]
        return out


def suggest_clusters(
    features: pd.DataFrame,
    k_range: Sequence[int] = range(2, 9),
    seed: int = 0,
    sample_size: int = 20_000,
    n_bootstrap: int = 10,
    columns: Sequence[str] | None = None,
) -> ClusterSuggestions:
    """k-means suggestions on behaviour features; see the module docstring."""
    cols = list(columns) if columns is not None else default_columns(features)
    raw = features[cols].astype("float64")
    if "recency_days" in raw:  # users with no event: as if last seen before everyone else
        fill = raw["recency_days"].max()
        raw["recency_days"] = raw["recency_days"].fillna(0.0 if pd.isna(fill) else fill + 1)
    raw = raw.fillna(0.0)
    logged = _transform(raw)
    keep = logged.std(axis=0) > 0
    if not keep.any():
        raise ValueError("no behaviour column varies between users")
    cols = [c for c, k in zip(cols, keep, strict=True) if k]
    raw, logged = raw[cols], logged[:, keep]
    scaler = StandardScaler().fit(logged)
    scaled = scaler.transform(logged)

    rng = np.random.default_rng(seed)
    n = len(scaled)
    sample_idx = np.sort(rng.choice(n, size=min(n, sample_size), replace=False))
    sample = scaled[sample_idx]
    distinct = len(np.unique(sample, axis=0))
    ks = [int(k) for k in k_range if 2 <= k < distinct]
    if not ks:
        raise ValueError(f"too few distinct users ({distinct}) to form clusters")

    # k is chosen on a smaller scan sample (the silhouette is quadratic in its size).
    scan = sample[np.sort(rng.choice(len(sample), size=min(len(sample), SCAN_SAMPLE),
                                     replace=False))]
    silhouettes: dict[int, float] = {}
    for k in ks:
        scan_model = KMeans(n_clusters=k, n_init=N_INIT, random_state=seed).fit(scan)
        if len(np.unique(scan_model.labels_)) < 2:
            silhouettes[k] = -1.0
            continue
        silhouettes[k] = float(silhouette_score(scan, scan_model.labels_))
    best = max(ks, key=lambda k: (silhouettes[k], -k))
    model = KMeans(n_clusters=best, n_init=N_INIT, random_state=seed).fit(sample)

    # Number clusters by size, largest first.
    raw_labels = model.predict(scaled)
    order = np.argsort(-np.bincount(raw_labels, minlength=best), kind="stable")
    relabel = np.empty(best, dtype=np.int64)
    relabel[order] = np.arange(best)
    labels = relabel[raw_labels]
    centers = model.cluster_centers_[order]

    sample_labels = relabel[model.labels_]
    scores: list[float] = []
    for b in range(n_bootstrap):
        boot_rng = np.random.default_rng([seed, b])
        idx = boot_rng.integers(0, len(sample), size=len(sample))
        refit = KMeans(n_clusters=best, n_init=BOOT_N_INIT, random_state=seed + b + 1)
        refit.fit(sample[idx])
        scores.append(float(adjusted_rand_score(sample_labels, refit.predict(sample))))
    stability = float(np.mean(scores)) if scores else float("nan")

    sizes = np.bincount(labels, minlength=best)
    overall = raw.mean().to_numpy()
    raw_values = raw.to_numpy()
    centroid_raw = scaler.inverse_transform(centers)
    centroid_raw = np.sign(centroid_raw) * np.expm1(np.abs(centroid_raw))
    clusters: list[dict[str, Any]] = []
    for c in range(best):
        rows = labels == c
        z = scaled[rows].mean(axis=0)
        means = raw_values[rows].mean(axis=0)
        top = [i for i in np.argsort(-np.abs(z), kind="stable")[:MAX_PHRASES]
               if abs(z[i]) >= MIN_Z]
        distinguishing = []
        for i in top:
            ratio = float(means[i] / overall[i]) if overall[i] > 0 else None
            distinguishing.append({"column": cols[i], "z": round(float(z[i]), 3),
                                   "ratio": None if ratio is None else round(ratio, 3),
                                   "phrase": phrase(cols[i], float(z[i]), ratio,
                                                    float(means[i]), float(overall[i]))})
        words = ", ".join(d["phrase"] for d in distinguishing) or "close to the average user"
        clusters.append({
            "cluster": c,
            "name": f"Cluster {c + 1}: {words.split(', ')[0]}",
            "size": int(sizes[c]),
            "share": float(sizes[c] / n),
            "description": words[0].upper() + words[1:],
            "distinguishing": distinguishing,
            "centroid": {col: float(v) for col, v in zip(cols, centroid_raw[c], strict=True)},
            "means": {col: float(v) for col, v in zip(cols, means, strict=True)},
            "z": {col: float(v) for col, v in zip(cols, z, strict=True)},
        })
    return ClusterSuggestions(
        k=best,
        silhouette=silhouettes,
        columns=cols,
        clusters=clusters,
        stability=stability,
        stability_scores=scores,
        labels=labels,
        index=features.index.to_numpy(),
        sample_size=len(sample),
        seed=seed,
    )
