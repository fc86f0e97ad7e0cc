"""Drift between snapshots: membership churn, value change significance, rank changes. Pure."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
from scipy import stats

from segments.analytics.drift import membership_drift, rank_changes, value_drift
from segments.analytics.value import Signal

Z = stats.norm.ppf(0.975)


@pytest.fixture(autouse=True)
def _event_store() -> None:
    return None


@pytest.fixture(autouse=True)
def _eager_tasks() -> Iterator[None]:
    yield


def sig(estimate: float | None, low: float | None, high: float | None,
        name: str = "ltv_90") -> Signal:
    return Signal(name, estimate, low, high, 100, "bootstrap", "revenue", None)


def test_membership_drift_hand_computed() -> None:
    out = membership_drift(np.array([1, 2, 3, 4, 4]), np.array([3, 4, 5]))
    assert out == {"before": 4, "after": 3, "in": 1, "out": 2, "stayed": 2, "jaccard": 2 / 5}
    ids = membership_drift(np.array(["a", "b"], dtype=object), np.array(["b", "c"], dtype=object))
    assert (ids["in"], ids["out"], ids["stayed"]) == (1, 1, 1)
    assert ids["jaccard"] == pytest.approx(1 / 3)
    assert membership_drift(np.array([]), np.array([]))["jaccard"] == 1.0
    assert membership_drift(np.array([1]), np.array([2]))["jaccard"] == 0.0


def test_significant_value_change() -> None:
    out = value_drift(sig(10.0, 9.0, 11.0), sig(13.0, 12.0, 14.0))
    se = math.hypot(1 / Z, 1 / Z)
    assert out["change"] == 3.0 and out["relative_change"] == pytest.approx(0.3)
    assert out["z"] == pytest.approx(3.0 / se)
    assert out["p_value"] == pytest.approx(2 * stats.norm.sf(3.0 / se))
    assert out["significant"] is True


def test_non_significant_value_change_and_dict_form() -> None:
    out = value_drift(sig(10.0, 9.0, 11.0).to_dict(), sig(10.5, 9.5, 11.5).to_dict())
    assert out["change"] == 0.5 and out["significant"] is False
    assert out["p_value"] == pytest.approx(2 * stats.norm.sf(0.5 / math.hypot(1 / Z, 1 / Z)))


def test_value_drift_over_signal_dicts() -> None:
    before = {"ltv_90": sig(10.0, 9.0, 11.0), "size": Signal("size", 50.0, None, None, 50,
                                                              "count", "users", None),
              "ltv_365": sig(None, None, None, "ltv_365"), "gone": sig(1.0, 0.5, 1.5, "gone")}
    after = {"ltv_90": sig(13.0, 12.0, 14.0), "size": Signal("size", 60.0, None, None, 60,
                                                             "count", "users", None),
             "ltv_365": sig(5.0, 4.0, 6.0, "ltv_365")}
    out = value_drift(before, after)
    assert set(out) == {"ltv_90", "size", "ltv_365"}
    assert out["ltv_90"]["significant"] is True
    assert out["size"]["change"] == 10.0 and out["size"]["p_value"] is None
    assert out["size"]["note"] == "no interval in one of the snapshots"
    assert out["ltv_365"]["change"] is None and out["ltv_365"]["significant"] is False


def test_rank_changes() -> None:
    before = {"a": 10.0, "b": 8.0, "c": 5.0, "d": 1.0, "only_before": 100.0}
    after = {"a": 4.0, "b": 9.0, "c": 6.0, "d": 2.0, "e": 50.0}
    out = rank_changes(before, after)
    assert out == [
        {"segment": "a", "old_rank": 1, "new_rank": 3, "moved": -2, "old_value": 10.0,
         "new_value": 4.0},
        {"segment": "b", "old_rank": 2, "new_rank": 1, "moved": 1, "old_value": 8.0,
         "new_value": 9.0},
        {"segment": "c", "old_rank": 3, "new_rank": 2, "moved": 1, "old_value": 5.0,
         "new_value": 6.0},
    ]
    signals = rank_changes({"x": sig(1.0, 0, 2), "y": sig(2.0, 1, 3), "z": sig(None, None, None)},
                           {"x": sig(3.0, 2, 4), "y": sig(2.0, 1, 3), "z": sig(9.0, 8, 10)})
    assert [(r["segment"], r["old_rank"], r["new_rank"]) for r in signals] == [
        ("x", 2, 1), ("y", 1, 2)]
    assert rank_changes({"a": 1.0, "b": 1.0}, {"a": 2.0, "b": 2.0}) == []  # ties share rank
