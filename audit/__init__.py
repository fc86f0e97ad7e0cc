"""Audit history: who changed what, when, with the values before and after.

Model changes are captured by signals (audit.signals); bulk writes go through record_bulk.
"""

from __future__ import annotations

from typing import Any


def record_bulk(queryset: Any, changes: dict[str, Any], actor: Any = None) -> int:
    """Apply `queryset.update(**changes)` and record a bulk_update entry per row changed."""
    from .recorder import record_bulk as _record_bulk

    return _record_bulk(queryset, changes, actor)
