"""How to read one file: the options an import is made with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class ImportOptions:
    """How to read one file. ``now`` is a parameter so validation is deterministic."""

    now: datetime
    format: str = "auto"  # auto | csv | parquet | jsonl
    mapping: Mapping[str, str] = field(default_factory=dict)
    timezone: str | None = None
    max_bytes: int | None = None
