"""The quality report of one file: row problems, counted, with a few sample rows each."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

SAMPLE_LIMIT = 5


@dataclass
class Problems:
    """Row problems of one file: counts and up to five samples per class."""

    counts: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def add(self, code: str, mask: np.ndarray, frame: pd.DataFrame, columns: list[str]) -> None:
        n = int(mask.sum())
        if n == 0:
            return
        have = self._tally(code, n)
        if len(have) < SAMPLE_LIMIT:
            rows = frame.loc[mask].head(SAMPLE_LIMIT - len(have))
            for _, row in rows.iterrows():
                have.append(
                    {
                        "line": int(row["__line"]),
                        "values": {c: _jsonable(row[c]) for c in columns if c in row.index},
                    }
                )

    def add_raw(self, code: str, count: int, samples: list[dict[str, Any]], note: str = "") -> None:
        if count <= 0:
            return
        have = self._tally(code, count)
        have.extend(samples[: max(0, SAMPLE_LIMIT - len(have))])
        if note:
            self.notes[code] = note

    def _tally(self, code: str, count: int) -> list[dict[str, Any]]:
        """Count ``count`` more rows under ``code``; returns the code's samples so far."""
        self.counts[code] = self.counts.get(code, 0) + count
        return self.samples.setdefault(code, [])

    def as_dict(self) -> dict[str, Any]:
        return {
            code: {
                "count": count,
                "samples": self.samples.get(code, []),
                **({"note": self.notes[code]} if code in self.notes else {}),
            }
            for code, count in sorted(self.counts.items())
        }


def _most_common(problems: Problems) -> str | None:
    """The problem counted most often (the first of equals), None when there is none."""
    return max(problems.counts, key=lambda c: problems.counts[c]) if problems.counts else None


def _first_sample_where(problems: Problems) -> str:
    for samples in problems.samples.values():
        if samples and samples[0].get("line") is not None:
            return f"line {samples[0]['line']}"
    return ""


def _jsonable(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str) and len(value) > 200:
        return value[:200] + "…"
    return value if isinstance(value, int | float | str | bool) else str(value)
