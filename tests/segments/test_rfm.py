"""RFM scores and named segments: hand-checked on ten users. Pure, no database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from events.frame import build_user_events
from segments.analytics.rfm import (
    SEGMENT_GRID,
    SEGMENT_NAMES,
    SEGMENT_TABLE,
    quantile_scores,
    rfm_scores,
    rfm_segment_mask,
    rfm_summary,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _event_store() -> None:
    return None


@pytest.fixture(autouse=True)
def _eager_tasks() -> Iterator[None]:
    yield


def ten_users() -> pd.DataFrame:
    """Each score value 1..5 is held by exactly two users for R, F and M."""
    return pd.DataFrame({
        "recency_days": [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        "n_events": [9, 1, 2, 10, 5, 3, 7, 8, 4, 6],
        "revenue_total": [40.0, 0, 5, 30, 20, 10, 45, 35, 15, 25],
    })


def test_scores_and_segments_hand_checked() -> None:
    scores = rfm_scores(ten_users())
    assert scores["R"].tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert scores["F"].tolist() == [5, 1, 1, 5, 3, 2, 4, 4, 2, 3]
    assert scores["M"].tolist() == [5, 1, 1, 4, 3, 2, 5, 4, 2, 3]
    assert scores["FM"].tolist() == [5, 1, 1, 5, 3, 2, 5, 4, 2, 3]  # round half up
    assert scores["score"].tolist() == ["555", "511", "411", "454", "333", "322", "245",
                                        "244", "122", "133"]
    assert scores["segment"].astype(str).tolist() == [
        "Champions", "New customers", "Promising", "Loyal", "Need attention", "About to sleep",
        "Can't lose them", "At risk", "Lost", "At risk",
    ]
    assert scores["recency_days"].tolist() == ten_users()["recency_days"].tolist()
    assert scores["monetary"].iloc[6] == 45.0 and scores["frequency"].iloc[3] == 10.0


def test_ties_are_split_by_first_rank() -> None:
    values = pd.Series([3.0] * 10)
    assert quantile_scores(values).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    frame = ten_users().assign(n_events=1)
    assert sorted(rfm_scores(frame)["F"].tolist()) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_segment_table_covers_grid_once() -> None:
    counts = {name: 0 for name, _, _ in SEGMENT_TABLE}
    for r in range(5):
        for fm in range(5):
            counts[SEGMENT_GRID[r, fm]] += 1
    assert sum(counts.values()) == 25 and all(counts.values())
    assert SEGMENT_GRID[4, 4] == "Champions" and SEGMENT_GRID[1, 0] == "Hibernating"
    assert SEGMENT_GRID[0, 1] == "Lost" and SEGMENT_GRID[2, 2] == "Need attention"
    assert len(SEGMENT_NAMES) == 12  # the eleven RFM names plus "No activity"


def test_segment_mask_and_summary() -> None:
    scores = rfm_scores(ten_users())
    assert rfm_segment_mask(scores, "At risk").tolist() == [False] * 7 + [True, False, True]
    assert not rfm_segment_mask(scores, "Hibernating").any()
    with pytest.raises(ValueError, match="unknown RFM segment"):
        rfm_segment_mask(scores, "Whales")
    summary = rfm_summary(scores)
    assert summary.loc["At risk", "users"] == 2
    assert summary.loc["At risk", "share"] == pytest.approx(0.2)
    assert summary.loc["At risk", "monetary"] == pytest.approx(30.0)  # (35 + 25) / 2


def test_from_user_events_with_inactive_user() -> None:
    frame = pd.DataFrame({
        "user_id": ["a", "a", "b", "c"],
        "event": ["view", "purchase", "view", "view"],
        "timestamp": pd.to_datetime([T0, T0 + timedelta(days=5), T0 + timedelta(days=2),
                                     T0 + timedelta(days=30)], utc=True).as_unit("us"),
        "revenue": [np.nan, 12.0, np.nan, np.nan],
        "cost": [np.nan] * 4,
    })
    data = build_user_events([frame])
    scores = rfm_scores(data, T0 + timedelta(days=10))
    assert scores["recency_days"].iloc[:2].tolist() == [5.0, 8.0]
    assert scores["segment"].iloc[2] == "No activity"  # c's first event is after as_of
    assert scores.loc[2, ["R", "F", "M"]].tolist() == [0, 0, 0]
    assert scores.loc[0, ["R", "F", "M"]].tolist() == [5, 5, 5]
    assert scores.loc[1, ["R", "F", "M"]].tolist() == [1, 1, 1]
    with pytest.raises(ValueError):
        rfm_scores(ten_users(), T0)


def test_three_bins_map_onto_the_five_point_table() -> None:
    scores = rfm_scores(ten_users().iloc[:9], bins=3)
    assert set(scores["R"]) == {1, 2, 3}
    # R=3 -> 5 and FM=3 -> 5 on the named-segment table: the most recent and valuable user.
    assert scores["segment"].iloc[0] == "Champions"
    assert scores["segment"].iloc[8] in {"Lost", "At risk", "Hibernating", "Can't lose them"}
