"""The approved roadmap in roadmap tools' import shapes: Jira's CSV issue import, Productboard's
feature import CSV, and JSON with stable external ids. Pure: rows in, text out (no Django).

A row is a dict with: ``external_id``, ``external_ref``, ``investment``, ``title``,
``description``, ``roadmap``, ``state``, ``start_quarter``, ``duration_quarters``, ``teams``
(team -> effort units), ``value``, ``cost``, ``evidence``. Every text cell is formula-safe
(``safe_cell``); an empty export still has its header row.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from typing import Any

QUARTER = re.compile(r"^(\d{4})Q([1-4])$")

JIRA_HEADER = ["Issue key", "Summary", "Description", "Issue Type", "Labels", "Labels",
               "Labels", "Team", "Start date", "Due date", "Custom field (Quarter)",
               "Custom field (Expected value)", "Custom field (Cost)",
               "Custom field (Roadmap)", "Custom field (Evidence)",
               "Custom field (External ID)"]
PRODUCTBOARD_HEADER = ["Feature name", "Feature description", "Feature type", "Status",
                       "Release", "Start date", "End date", "Tags", "Team", "Value", "Cost",
                       "Roadmap", "Evidence", "External ID", "External reference"]


def safe_cell(value: Any) -> Any:
    """Neutralize spreadsheet formulas: text starting with = + - @ (or tab/CR) gets a quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def external_id(workspace: str, investment: int) -> str:
    """The stable id of an investment in exports: the same in every version and re-export."""
    return f"sp-{workspace}-inv-{investment}"


def quarter_dates(quarter: str, duration: int = 1) -> tuple[str, str]:
    """First day of ``quarter`` and last day of its ``duration``-th quarter (ISO dates), or
    ("", "") when the item has no quarter."""
    match = QUARTER.match(quarter or "")
    if not match:
        return "", ""
    year, q = int(match[1]), int(match[2])
    start = date(year, 3 * (q - 1) + 1, 1)
    end_q = q - 1 + max(int(duration or 1), 1)  # 0-based quarter after the last one
    end_year, end_index = year + end_q // 4, end_q % 4
    after = date(end_year, 3 * end_index + 1, 1)
    return start.isoformat(), (after - timedelta(days=1)).isoformat()


def _teams(row: dict[str, Any]) -> list[str]:
    """Teams by effort, largest first (ties by name)."""
    teams = row.get("teams") or {}
    return [t for t, _ in sorted(teams.items(), key=lambda kv: (-float(kv[1] or 0), kv[0]))]


def _description(row: dict[str, Any]) -> str:
    teams = _teams(row)
    lines = [row.get("description") or "",
             f"Expected value {row['value']:,.0f} (risk-adjusted, at adoption), cost "
             f"{row['cost']:,.0f}, evidence: {row.get('evidence') or 'none recorded'}.",
             f"Teams: {', '.join(teams) if teams else 'none recorded'}."]
    return "\n".join(line for line in lines if line)


def _write(header: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()


def _number(x: float) -> str:
    return f"{x:.2f}"


def jira_csv(rows: list[dict[str, Any]]) -> str:
    """Jira's CSV issue import: one Epic per item (Labels repeated, one value each)."""
    out = []
    for row in rows:
        start, due = quarter_dates(row.get("start_quarter", ""), row.get("duration_quarters", 1))
        teams = _teams(row)
        quarter = row.get("start_quarter") or ""
        out.append([row.get("external_ref") or "", row["title"], _description(row), "Epic",
                    "segment-planner", f"roadmap-{row['roadmap']}",
                    f"quarter-{quarter}" if quarter else "", teams[0] if teams else "",
                    start, due, quarter, _number(row["value"]), _number(row["cost"]),
                    row["roadmap"], row.get("evidence") or "", row["external_id"]])
    return _write(JIRA_HEADER, out)


def productboard_csv(rows: list[dict[str, Any]]) -> str:
    """Productboard's feature import: one feature per item."""
    out = []
    for row in rows:
        start, end = quarter_dates(row.get("start_quarter", ""), row.get("duration_quarters", 1))
        teams = _teams(row)
        out.append([row["title"], _description(row), "feature", row.get("state") or "",
                    row.get("start_quarter") or "", start, end,
                    ", ".join(["segment-planner", row["roadmap"]]), ", ".join(teams),
                    _number(row["value"]), _number(row["cost"]), row["roadmap"],
                    row.get("evidence") or "", row["external_id"], row.get("external_ref") or ""])
    return _write(PRODUCTBOARD_HEADER, out)


def roadmap_json(meta: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """JSON: the version's facts and its items with their stable external ids and dates."""
    items = []
    for row in rows:
        start, end = quarter_dates(row.get("start_quarter", ""), row.get("duration_quarters", 1))
        items.append({**row, "teams": dict(row.get("teams") or {}), "start_date": start or None,
                      "end_date": end or None})
    return {**meta, "items": items}
