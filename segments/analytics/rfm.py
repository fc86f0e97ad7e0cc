"""RFM: recency / frequency / monetary quantile scores and the usual named RFM segments. Pure.

Recency is days since the user's last event (as of ``as_of``), frequency the number of events
(or another column), monetary the total revenue. Each becomes a quantile score 1..bins (higher
is better: more recent, more frequent, more revenue). Ties are broken by
``rank(method="first")`` (i.e. by user code) so every quantile bin gets its share of users even
when many users share a value. Users without any event by ``as_of`` get scores 0 and the
segment "No activity".

Named segments use R and FM = round-half-up((F + M) / 2), both on a 1..5 scale (with
``bins != 5`` a score s is first mapped linearly to ``1 + round((s - 1) * 4 / (bins - 1))``):

=====================  ==========  =========
Segment                R           FM
=====================  ==========  =========
Champions              5           4-5
Loyal                  3-4         4-5
Potential loyalists    4-5         2-3
New customers          5           1
Promising              4           1
Need attention         3           3
About to sleep         3           1-2
At risk                1-2         3-4
Can't lose them        1-2         5
Hibernating            2           1-2
Lost                   1           1-2
=====================  ==========  =========

The table covers the 5 x 5 grid exactly once (it is the common R/F regex map, with "Lost"
split off the bottom-left corner of "Hibernating").
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from events.frame import UserEvents

from .value import user_features

# (name, R range, FM range), inclusive, on the 1..5 scale.
SEGMENT_TABLE: tuple[tuple[str, tuple[int, int], tuple[int, int]], ...] = (
    ("Champions", (5, 5), (4, 5)),
    ("Loyal", (3, 4), (4, 5)),
    ("Potential loyalists", (4, 5), (2, 3)),
    ("New customers", (5, 5), (1, 1)),
    ("Promising", (4, 4), (1, 1)),
    ("Need attention", (3, 3), (3, 3)),
    ("About to sleep", (3, 3), (1, 2)),
    ("At risk", (1, 2), (3, 4)),
    ("Can't lose them", (1, 2), (5, 5)),
    ("Hibernating", (2, 2), (1, 2)),
    ("Lost", (1, 1), (1, 2)),
)
NO_ACTIVITY = "No activity"
SEGMENT_NAMES: tuple[str, ...] = (*(row[0] for row in SEGMENT_TABLE), NO_ACTIVITY)


def _grid() -> np.ndarray:
    """5 x 5 array of segment names indexed by [R - 1, FM - 1]."""
    grid = np.full((5, 5), "", dtype=object)
    for name, (r0, r1), (f0, f1) in SEGMENT_TABLE:
        block = grid[r0 - 1:r1, f0 - 1:f1]
        if (block != "").any():
            raise AssertionError(f"RFM table overlaps at {name}")
        grid[r0 - 1:r1, f0 - 1:f1] = name
    if (grid == "").any():
        raise AssertionError("RFM table leaves part of the grid uncovered")
    return grid


SEGMENT_GRID = _grid()


def quantile_scores(values: pd.Series, bins: int = 5) -> pd.Series:
    """Scores 1..bins by equal-count quantiles of ``values`` (higher value, higher score)."""
    if len(values) == 0:
        return pd.Series([], dtype=np.int64, index=values.index)
    if len(values) == 1:
        return pd.Series([(bins + 1) // 2], dtype=np.int64, index=values.index)
    ranks = values.rank(method="first")
    codes = pd.qcut(ranks, bins, labels=False)
    return (codes.astype(np.int64) + 1).rename(values.name)


def _to_five(score: np.ndarray, bins: int) -> np.ndarray:
    """Map scores 1..bins linearly onto 1..5 (rounding half up); identity when bins == 5."""
    return 1 + np.floor((score - 1) * 4 / (bins - 1) + 0.5).astype(np.int64)


def rfm_scores(
    source: pd.DataFrame | UserEvents,
    as_of: int | datetime | pd.Timestamp | np.datetime64 | None = None,
    bins: int = 5,
    *,
    frequency: str = "n_events",
    monetary: str = "revenue_total",
) -> pd.DataFrame:
    """Per user: recency_days, frequency, monetary, R/F/M scores, FM, score code, segment.

    ``source`` is a ``user_features`` table (its ``recency_days`` is already as of its own
    as_of; ``as_of`` must then be None) or ``UserEvents`` (features are computed as of
    ``as_of``). The index is the user code, in the same order as the source.
    """
    if isinstance(source, UserEvents):
        features = user_features(source, as_of, top_events=0)
    else:
        if as_of is not None:
            raise ValueError("pass as_of to user_features, not with a features table")
        features = source
    if bins < 2:
        raise ValueError("bins must be at least 2")
    recency = features["recency_days"].astype("float64")
    active = recency.notna() & (features["n_events"] > 0)
    out = pd.DataFrame(
        {
            "recency_days": recency,
            "frequency": features[frequency].astype("float64"),
            "monetary": features[monetary].astype("float64"),
        },
        index=features.index,
    )
    for col in ("R", "F", "M"):
        out[col] = np.zeros(len(out), dtype=np.int64)
    scored = out[active.to_numpy()]
    if len(scored):
        out.loc[scored.index, "R"] = quantile_scores(-scored["recency_days"], bins).to_numpy()
        out.loc[scored.index, "F"] = quantile_scores(scored["frequency"], bins).to_numpy()
        out.loc[scored.index, "M"] = quantile_scores(scored["monetary"], bins).to_numpy()
    r, f, m = (out[c].to_numpy() for c in ("R", "F", "M"))
    fm = (f + m + 1) // 2
    out["FM"] = fm
    out["score"] = pd.Series(r.astype(str), index=out.index) + f.astype(str) + m.astype(str)
    segment = np.full(len(out), NO_ACTIVITY, dtype=object)
    ok = active.to_numpy()
    segment[ok] = SEGMENT_GRID[_to_five(r[ok], bins) - 1, _to_five(fm[ok], bins) - 1]
    out["segment"] = pd.Categorical(segment, categories=list(SEGMENT_NAMES))
    out.attrs.update(bins=bins, frequency=frequency, monetary=monetary,
                     as_of=features.attrs.get("as_of"))
    return out


def rfm_segment_mask(scores: pd.DataFrame, name: str) -> np.ndarray:
    """Boolean mask (one entry per row of ``scores``) of the users in a named RFM segment."""
    if name not in SEGMENT_NAMES:
        raise ValueError(f"unknown RFM segment {name!r}; known: {', '.join(SEGMENT_NAMES)}")
    return (scores["segment"].astype(object) == name).to_numpy(dtype=bool)


def rfm_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Per named segment: users, share, mean recency, frequency and monetary."""
    grouped = scores.groupby("segment", observed=False)
    table = grouped.agg(users=("R", "size"), recency_days=("recency_days", "mean"),
                        frequency=("frequency", "mean"), monetary=("monetary", "mean"))
    table.insert(1, "share", table["users"] / max(len(scores), 1))
    return table
