"""Clustering suggestions recover planted behaviour groups and describe them. Pure, no database."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from segments.analytics.clustering import (
    ClusterSuggestions,
    default_columns,
    phrase,
    suggest_clusters,
)

GROUP = 250


@pytest.fixture(autouse=True)
def _event_store() -> None:
    return None


@pytest.fixture(autouse=True)
def _eager_tasks() -> Iterator[None]:
    yield


def planted(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Three groups: heavy reporters, big spenders, casual visitors (with lognormal noise)."""
    rng = np.random.default_rng(seed)
    centres = {  # n_events, active_days, revenue_total, ltv_90, recency_days, reports, views
        "reporters": (200, 25, 5, 2, 2, 150, 40),
        "spenders": (30, 10, 800, 400, 10, 1, 25),
        "casual": (5, 2, 0, 0, 60, 0, 5),
    }
    rows, truth = [], []
    for g, centre in enumerate(centres.values()):
        noise = rng.lognormal(0, 0.15, size=(GROUP, len(centre)))
        rows.append(np.asarray(centre, dtype=float) * noise)
        truth.append(np.full(GROUP, g))
    values = np.vstack(rows)
    frame = pd.DataFrame(values, columns=["n_events", "active_days", "revenue_total", "ltv_90",
                                          "recency_days", "event:report", "event:view"])
    for col in ("n_events", "active_days", "event:report", "event:view"):
        frame[col] = frame[col].round()
    frame["revenue_period"] = 0.0  # constant: dropped
    order = rng.permutation(len(frame))
    return frame.iloc[order].reset_index(drop=True), np.concatenate(truth)[order]


@pytest.fixture(scope="module")
def result() -> tuple[ClusterSuggestions, np.ndarray]:
    features, truth = planted()
    return suggest_clusters(features, seed=0, n_bootstrap=5), truth


def test_planted_groups_recovered(result: tuple[ClusterSuggestions, np.ndarray]) -> None:
    out, truth = result
    assert out.k == 3
    assert max(out.silhouette, key=out.silhouette.get) == 3
    assert set(out.silhouette) == set(range(2, 9))
    assert adjusted_rand_score(truth, out.labels) > 0.9
    assert out.stability > 0.9 and out.stability_label == "very stable"
    assert len(out.stability_scores) == 5
    assert "revenue_period" not in out.columns
    assert sum(c["size"] for c in out.clusters) == 3 * GROUP
    assert sum(c["share"] for c in out.clusters) == pytest.approx(1.0)
    sizes = [c["size"] for c in out.clusters]
    assert sizes == sorted(sizes, reverse=True)


def test_descriptions_name_the_planted_features(
    result: tuple[ClusterSuggestions, np.ndarray],
) -> None:
    out, truth = result
    by_group = {}
    for g in range(3):
        values, counts = np.unique(out.labels[truth == g], return_counts=True)
        by_group[g] = out.clusters[int(values[np.argmax(counts)])]
    reporters, spenders, casual = by_group[0], by_group[1], by_group[2]
    assert "more report events" in reporters["description"]
    assert "x average" in reporters["description"]
    assert "high revenue" in spenders["description"]
    assert casual["description"].startswith(("Far fewer", "Long inactive", "Very low"))
    top = reporters["distinguishing"][0]
    assert top["z"] > 0 and top["ratio"] > 1
    assert reporters["means"]["event:report"] > 100
    assert 100 < reporters["centroid"]["event:report"] < 200  # geometric-like centre


def test_deterministic_and_json_ready(result: tuple[ClusterSuggestions, np.ndarray]) -> None:
    out, _ = result
    features = planted()[0]
    first = suggest_clusters(features, k_range=range(2, 5), seed=4, n_bootstrap=2)
    again = suggest_clusters(features, k_range=range(2, 5), seed=4, n_bootstrap=2)
    assert (again.labels == first.labels).all()
    assert again.to_dict() == first.to_dict()
    payload = json.loads(json.dumps(out.to_dict(include_labels=True)))
    assert payload["k"] == 3 and len(payload["labels"]) == 3 * GROUP


def test_mask_saves_a_cluster_as_a_segment(
    result: tuple[ClusterSuggestions, np.ndarray],
) -> None:
    out, _ = result
    mask = out.mask(1)
    assert mask.dtype == bool and mask.sum() == out.clusters[1]["size"]
    assert (out.members(1) == np.flatnonzero(mask)).all()
    with pytest.raises(ValueError):
        out.mask(3)


def test_fit_on_sample_labels_everyone() -> None:
    features, truth = planted(seed=1)
    out = suggest_clusters(features, k_range=range(2, 5), seed=3, sample_size=200,
                           n_bootstrap=3)
    assert out.sample_size == 200 and len(out.labels) == len(features)
    assert out.k == 3 and adjusted_rand_score(truth, out.labels) > 0.9


def test_default_columns_and_phrases() -> None:
    features = pd.DataFrame({"n_events": [1], "signup": [0], "event:a": [1], "event:b": [5]})
    assert default_columns(features) == ["n_events", "event:b", "event:a"]
    assert phrase("event:report", 2.0, 3.14) == "many more report events (3.1x average)"
    assert phrase("active_days", -0.7, 0.5) == "fewer active days (0.5x average)"
    assert phrase("ltv_90", 1.5, 12.4) == "very high revenue in first 90 days (12x average)"
    assert phrase("recency_days", 1.2, None) == "long inactive"
    assert phrase("recency_days", -1.2, 0.1, 2.4, 24.0) == (
        "very recently active (last seen 2 days ago on average vs 24)")


def test_too_few_distinct_users() -> None:
    features = pd.DataFrame({"n_events": [1, 1, 2, 2], "active_days": [1, 1, 1, 1]})
    with pytest.raises(ValueError, match="too few distinct"):
        suggest_clusters(features)
    with pytest.raises(ValueError, match="varies"):
        suggest_clusters(features.assign(n_events=1))
