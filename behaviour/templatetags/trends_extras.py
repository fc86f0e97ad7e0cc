"""Template helpers for trends results: the numbers as a table (buckets x columns)."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


def _fmt(value: float | None, measure: str) -> str:
    if value is None:
        return "—"
    if measure == "sum_revenue":
        return f"{value:,.2f}"
    if measure == "formula":
        return f"{value:,.4f}"  # 4 decimals always: a column reads 0.2070 beside 0.2481
    return f"{value:,.0f}"


@register.filter
def trends_table(r: dict[str, Any]) -> dict[str, Any]:
    """Columns (each series, its breakdown groups, its previous period, the formula and its
    previous period) and one row per bucket, as display text."""
    if not r or "buckets" not in r:
        return {"columns": [], "rows": []}
    columns: list[tuple[str, list[float | None], str]] = []
    for s in r["series"]:
        columns.append((s["label"], s["values"], s["measure"]))
        for g in s.get("breakdown") or []:
            columns.append((f"{s['letter']} · {g['label']}", g["values"], s["measure"]))
        if s.get("previous") is not None:
            label = "previous period" + (" (all)" if s.get("breakdown") else "")
            columns.append((f"{s['letter']} {label}", s["previous"], s["measure"]))
    f = r.get("formula")
    if f:
        columns.append((f"formula {f['expression']}", f["values"], "formula"))
        for g in f.get("breakdown") or []:
            columns.append((f"formula · {g['label']}", g["values"], "formula"))
        if f.get("previous") is not None:
            columns.append(("formula previous period", f["previous"], "formula"))
    rows = [[bucket, *[_fmt(values[i], m) for _, values, m in columns]]
            for i, bucket in enumerate(r["buckets"])]
    return {"columns": [c[0] for c in columns], "rows": rows}


@register.simple_tag
def property_keys(dataset: Any) -> list[str]:
    """The event property keys the dataset's catalog found (for the breakdown choice)."""
    if dataset is None:
        return []
    return sorted({k for e in (dataset.event_catalog or []) for k in (e.get("property_keys") or [])})
