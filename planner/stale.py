"""Whether a run is stale: its recorded inputs against the same inputs read from the database
now (planner.staleness compares; this module reads). A constant number of queries per run,
whatever the number of items."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .models import Investment, OptimizationRun, Scenario
from .services import scenario_problem
from .staleness import Change, compare

CANNOT_TELL = ("cannot tell whether this run is current: it was made before runs recorded what "
               "their inputs rest on (evidence, snapshots, experiments); re-run to compare")
NOW_FIELDS = ("value", "value_low", "value_high", "cost")


@dataclass
class RunStaleness:
    """``stale`` is None when the run cannot be compared (see ``note``); ``now`` holds each
    run item's current figures (absent: deleted since)."""

    run_id: int
    stale: bool | None
    changes: list[Change] = field(default_factory=list)
    now: dict[str, dict[str, Any]] = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"stale": self.stale, "stale_note": self.note,
                "changes": [c.to_dict() for c in self.changes]}

    def changed_fields(self, item_id: Any) -> list[str]:
        """The fields of one item that changed since the run ('item' when added or deleted)."""
        key = str(item_id)
        return [c.field for c in self.changes if c.item_id == key]

    def item_now(self, item_id: Any) -> dict[str, Any]:
        """The item's figures now, as ``value_now``, ``cost_now``, ... (None when deleted),
        and the fields that changed."""
        now = self.now.get(str(item_id)) or {}
        return {**{f"{name}_now": now.get(name) for name in (*NOW_FIELDS, "status")},
                "changed": self.changed_fields(item_id)}

    @property
    def scenario_changes(self) -> list[Change]:
        return [c for c in self.changes if c.kind == "scenario"]

    @property
    def item_changes(self) -> list[Change]:
        return [c for c in self.changes if c.kind != "scenario"]


def current_inputs(run: OptimizationRun, scenario: Scenario | None = None) -> tuple[
        dict[str, Any], dict[str, dict[str, Any]]]:
    """(the run's scenario as a run would record it now, each run item's figures now). Items
    of the run that left the plan's candidates (rejected, done) get their status and figures;
    deleted items are absent."""
    if scenario is None:
        scenario = Scenario.objects.select_related("workspace").get(pk=run.scenario_id)
    current = scenario_problem(scenario)
    now = {str(i["id"]): {name: i.get(name) for name in NOW_FIELDS} for i in current["items"]}
    basis = current["basis"]["items"]
    for key, item in basis.items():
        if key in now:
            now[key]["status"] = item.get("status")
    missing = [int(i["id"]) for i in (run.inputs or {}).get("items") or []
               if str(i["id"]) not in now and str(i["id"]).isdigit()]
    for pk, status, title, value, low, high, cost in Investment.objects.filter(
            workspace_id=run.workspace_id, pk__in=missing).values_list(
            "pk", "status", "title", "expected_value", "value_low", "value_high", "cost"):
        basis[str(pk)] = {"title": title, "status": status}
        now[str(pk)] = {"value": value, "value_low": low, "value_high": high, "cost": cost,
                        "status": status}
    return current, now


def run_staleness(run: OptimizationRun, memo: dict[Any, Any] | None = None) -> RunStaleness:
    """What changed since ``run`` recorded its inputs. ``memo`` (per request) shares the
    current inputs between runs of one scenario."""
    if memo is not None and ("scenario", run.scenario_id) in memo:
        current, now = memo[("scenario", run.scenario_id)]
    else:
        current, now = current_inputs(run)
        if memo is not None:
            memo[("scenario", run.scenario_id)] = (current, now)
    changes = compare(run.inputs or {}, current)
    if changes is None:
        return RunStaleness(run.pk, None, [], now, CANNOT_TELL)
    return RunStaleness(run.pk, bool(changes), changes, now,
                        f"{len(changes)} change(s) since the run" if changes else
                        "no input has changed since the run")


def rows_with_now(rows: list[dict[str, Any]], report: RunStaleness,
                  key: str = "investment_id") -> list[dict[str, Any]]:
    """Export rows with each item's current figures beside the run-time ones."""
    out = []
    for row in rows:
        now = report.item_now(row[key])
        out.append({**row, "expected_value_now": now["value_now"], "cost_now": now["cost_now"],
                    "status_now": now["status_now"],
                    "changed_since_run": "; ".join(now["changed"]),
                    "run_stale": report.stale})
    return out
