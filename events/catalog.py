"""The event catalog: what a dataset contains, computed from the store's partitions. Pure."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

PROPERTY_SAMPLE = 500
TOP_VALUES = 5
TREND_WEEKS = 12


def event_catalog(partitions: Iterable[pd.DataFrame]) -> list[dict[str, Any]]:
    """Per event name: count, distinct users, first/last seen, weekly counts, property keys.

    Each partition holds whole users, so distinct-user counts of partitions add up.
    """
    stats: list[pd.DataFrame] = []
    weekly: list[pd.Series] = []
    keys: dict[str, set[str]] = {}
    for frame in partitions:
        if frame.empty:
            continue
        event = frame["event"].astype("str")
        grouped = pd.DataFrame({"event": event, "user_id": frame["user_id"],
                                "timestamp": frame["timestamp"]}).groupby("event", observed=True)
        stats.append(
            pd.DataFrame(
                {
                    "count": grouped.size(),
                    "users": grouped["user_id"].nunique(),
                    "first_seen": grouped["timestamp"].min(),
                    "last_seen": grouped["timestamp"].max(),
                }
            )
        )
        week = frame["timestamp"].dt.tz_localize(None).dt.to_period("W-SUN").dt.start_time
        weekly.append(pd.Series(1, index=pd.MultiIndex.from_arrays([event, week])).groupby(
            level=[0, 1]).sum())
        if "properties" in frame:
            has = frame["properties"].notna().to_numpy()
            props = pd.DataFrame({"event": event.to_numpy()[has],
                                  "properties": frame["properties"].to_numpy()[has]})
            sample = props.groupby("event", observed=True).head(PROPERTY_SAMPLE // 5)
            for name, text in zip(sample["event"], sample["properties"], strict=True):
                try:
                    keys.setdefault(name, set()).update(json.loads(text).keys())
                except (ValueError, AttributeError):
                    continue
    if not stats:
        return []
    combined = pd.concat(stats).groupby(level=0).agg(
        count=("count", "sum"), users=("users", "sum"),
        first_seen=("first_seen", "min"), last_seen=("last_seen", "max"),
    )
    weeks = pd.concat(weekly).groupby(level=[0, 1]).sum()
    last_week = weeks.index.get_level_values(1).max()
    span = pd.date_range(end=last_week, periods=TREND_WEEKS, freq="7D")
    out = []
    for name, row in combined.sort_values("count", ascending=False).iterrows():
        series = weeks.loc[name].reindex(span, fill_value=0) if name in weeks.index else None
        out.append(
            {
                "event": str(name),
                "count": int(row["count"]),
                "users": int(row["users"]),
                "first_seen": row["first_seen"].isoformat(),
                "last_seen": row["last_seen"].isoformat(),
                "weekly": {
                    "weeks": [d.strftime("%Y-%m-%d") for d in span],
                    "counts": [int(v) for v in series.to_numpy()] if series is not None else [],
                },
                "property_keys": sorted(keys.get(str(name), set())),
            }
        )
    return out


def attribute_catalog(users: pd.DataFrame) -> list[dict[str, Any]]:
    """Per user attribute: type, cardinality, share missing and top values."""
    out = []
    for column in users.columns:
        if column == "user_id":
            continue
        series = users[column]
        if pd.api.types.is_datetime64_any_dtype(series):
            kind = "datetime"
        elif pd.api.types.is_bool_dtype(series):
            kind = "boolean"
        elif pd.api.types.is_numeric_dtype(series):
            kind = "number"
        else:
            kind = "category"
        present = series.dropna()
        entry: dict[str, Any] = {
            "attribute": str(column),
            "type": kind,
            "cardinality": int(present.nunique()),
            "missing_share": round(float(1 - len(present) / max(len(series), 1)), 4),
        }
        if kind in {"category", "boolean"}:
            top = present.astype("str").value_counts().head(TOP_VALUES)
            entry["top_values"] = [{"value": str(k), "count": int(v)} for k, v in top.items()]
        elif kind == "number" and len(present):
            entry["min"] = float(np.min(present))
            entry["max"] = float(np.max(present))
            entry["mean"] = round(float(np.mean(present)), 4)
        elif kind == "datetime" and len(present):
            entry["min"] = present.min().isoformat()
            entry["max"] = present.max().isoformat()
        out.append(entry)
    return out
