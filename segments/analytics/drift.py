"""Drift between two snapshots: membership churn, value change and rank changes. Pure.

Value change significance is a two-sided z-test whose standard errors are implied by each
snapshot's 95% interval (half-width / 1.96), treating the snapshots as independent. Snapshots
usually share users, which correlates them positively, so the test is conservative.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import stats

from .intervals import finite_or_none
from .value import Z95, Signal, as_signal

ALPHA = 0.05


def membership_drift(before_ids: np.ndarray, after_ids: np.ndarray) -> dict[str, Any]:
    """Users who entered / left / stayed between two memberships, and their Jaccard index."""
    before = np.unique(np.asarray(before_ids))
    after = np.unique(np.asarray(after_ids))
    stayed = len(np.intersect1d(before, after, assume_unique=True))
    entered = len(after) - stayed
    left = len(before) - stayed
    union = len(before) + len(after) - stayed
    return {
        "before": len(before),
        "after": len(after),
        "in": int(entered),
        "out": int(left),
        "stayed": int(stayed),
        "jaccard": 1.0 if union == 0 else stayed / union,
    }


def _is_single(value: Any) -> bool:
    return isinstance(value, Signal) or (isinstance(value, Mapping) and "estimate" in value)


def _implied_se(signal: Signal) -> float | None:
    if signal.low is None or signal.high is None:
        return None
    return (signal.high - signal.low) / (2 * Z95)


def _signal_change(before: Signal, after: Signal) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": after.name or before.name,
        "before": before.estimate,
        "after": after.estimate,
        "change": None,
        "relative_change": None,
        "z": None,
        "p_value": None,
        "significant": False,
        "note": None,
    }
    if before.estimate is None or after.estimate is None:
        out["note"] = "no estimate in one of the snapshots"
        return out
    change = after.estimate - before.estimate
    out["change"] = change
    if before.estimate != 0:
        out["relative_change"] = change / abs(before.estimate)
    se_before, se_after = _implied_se(before), _implied_se(after)
    if se_before is None or se_after is None:
        out["note"] = "no interval in one of the snapshots"
        return out
    se = math.hypot(se_before, se_after)
    if se == 0:
        out["note"] = "both intervals have zero width"
        out["significant"] = change != 0
        out["p_value"] = 0.0 if change != 0 else 1.0
        return out
    z = change / se
    p = float(2 * stats.norm.sf(abs(z)))
    out.update(z=z, p_value=p, significant=p < ALPHA)
    return out


def value_drift(before: Any, after: Any) -> dict[str, Any]:
    """Change of one signal, or of every signal two ``segment_signals`` results share.

    Arguments are Signals (or their dicts) or mappings name -> Signal; the result is one change
    dict (change, relative_change, z, p_value, significant at 0.05) or name -> change dict.
    """
    if _is_single(before) and _is_single(after):
        return _signal_change(as_signal(before), as_signal(after))
    common = [name for name in before if name in after]
    return {name: _signal_change(as_signal(before[name]), as_signal(after[name]))
            for name in common}


def _value(v: Any) -> float | None:
    if _is_single(v):
        return as_signal(v).estimate
    return finite_or_none(v)


def _ranks(values: Mapping[str, float]) -> dict[str, int]:
    """Rank 1 = highest value; ties share the best rank (competition ranking)."""
    ordered = sorted(values.values(), reverse=True)
    return {name: 1 + ordered.index(v) for name, v in values.items()}


def rank_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Segments whose rank (1 = highest value) changed, ranked among segments valued in both.

    Values are numbers or Signals (their estimate); segments missing or without a value in
    either snapshot are left out. Sorted by the size of the move, then by name.
    """
    b = {k: x for k, v in before.items() if (x := _value(v)) is not None}
    a = {k: x for k, v in after.items() if (x := _value(v)) is not None}
    common = [k for k in b if k in a]
    old = _ranks({k: b[k] for k in common})
    new = _ranks({k: a[k] for k in common})
    moved = [
        {"segment": k, "old_rank": old[k], "new_rank": new[k], "moved": old[k] - new[k],
         "old_value": b[k], "new_value": a[k]}
        for k in common if old[k] != new[k]
    ]
    return sorted(moved, key=lambda row: (-abs(row["moved"]), row["segment"]))
