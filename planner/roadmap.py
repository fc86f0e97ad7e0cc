"""The approved roadmap: one per workspace, versioned. The council adopts a run (all of it or
chosen items) into a new version; approve / defer / reject / revoke decisions belong to the
investment and the version; any two versions (or a run and the current version) compare with
reasons; exports in roadmap tools' shapes."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

import audit
from accounts.models import Workspace
from integrations import webhooks

from . import page_cache, stale
from .models import (
    Allocation,
    Decision,
    Investment,
    InvestmentStatus,
    ItemState,
    OptimizationRun,
    RoadmapItem,
    RoadmapVersion,
    Verdict,
)
from .roadmap_diff import Change, PlanContext, PlanItem, diff_plans, evidence_level
from .roadmap_formats import external_id
from .roadmap_timeline import TimelineItem
from .services import PlannerInvalid

VERDICT_STATE = {Verdict.APPROVE: ItemState.APPROVE, Verdict.DEFER: ItemState.DEFER,
                 Verdict.REJECT: ItemState.REJECT, Verdict.REVOKE: ItemState.PROPOSED}
STATE_STATUS = {ItemState.APPROVE: InvestmentStatus.APPROVED,
                ItemState.DEFER: InvestmentStatus.DEFERRED,
                ItemState.REJECT: InvestmentStatus.REJECTED,
                ItemState.PROPOSED: InvestmentStatus.PROPOSED}


# ----- reads ---------------------------------------------------------------------------------
def current_version(workspace: Workspace | int) -> RoadmapVersion | None:
    """The workspace's latest roadmap version (None before the first adoption)."""
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    return (RoadmapVersion.objects.filter(workspace_id=workspace_id)
            .select_related("adopted_by", "adopted_from").order_by("-number").first())


def run_is_stale(run: OptimizationRun) -> str | None:
    """Why this run cannot be adopted as it stands, or None.

    The run must have finished with a plan, and none of its recorded inputs may have changed
    (planner.stale; runs recorded before their basis: every item's value and cost)."""
    if run.finished_at is None:
        return f"run #{run.pk} has not finished"
    plan = run.plan or {}
    if plan.get("error") or run.status in ("failed", "infeasible", ""):
        return f"run #{run.pk} has no plan to adopt ({run.status or 'no status'})"
    report = stale.run_staleness(run)
    if report.stale:
        first = report.changes[0]
        more = f" (and {len(report.changes) - 1} more)" if len(report.changes) > 1 else ""
        def shown(x: Any) -> str:
            return f"{x:,.2f}" if isinstance(x, int | float) and not isinstance(x, bool) \
                else repr(x)

        if first.kind in ("added", "deleted"):
            what = f"#{first.item_id} '{first.title}' was {first.kind} since"
        elif first.kind == "scenario":
            what = f"scenario {first.field} was {shown(first.then)}, now {shown(first.now)}"
        else:
            what = (f"#{first.item_id} '{first.title}' {first.field} was {shown(first.then)}, "
                    f"now {shown(first.now)}")
        return f"run #{run.pk} is stale: {what}{more}; run the scenario again"
    if report.stale is None:  # recorded before runs kept their basis: compare value and cost
        return _value_or_cost_moved(run)
    return None


def _value_or_cost_moved(run: OptimizationRun) -> str | None:
    used = {int(i["id"]): i for i in (run.inputs or {}).get("items", [])}
    now = Investment.objects.filter(pk__in=used).values_list("pk", "title", "expected_value",
                                                            "cost")
    seen = set()
    for pk, title, value, cost in now.order_by("pk"):
        seen.add(pk)
        then = used[pk]
        for field, current in (("value", value), ("cost", cost)):
            before = float(then.get(field) or 0.0)
            if abs(before - current) > 1e-6 * max(1.0, abs(before)):
                return (f"run #{run.pk} is stale: #{pk} '{title}' {field} was {before:,.2f}, "
                        f"now {current:,.2f}; run the scenario again")
    gone = sorted(set(used) - seen)
    if gone:
        return f"run #{run.pk} is stale: investment #{gone[0]} was deleted since"
    return None


def run_context(run: OptimizationRun, label: str | None = None) -> PlanContext:
    """Budget, spend by roadmap, share bounds and capacity use of a finished run."""
    return _context(_context_dict(run), label or f"run #{run.pk}")


def _context_dict(run: OptimizationRun) -> dict[str, Any]:
    plan, inputs = run.plan or {}, run.inputs or {}
    return {
        "budget": inputs.get("budget"),
        "roadmap_spend": {k: float(v.get("spend") or 0.0)
                          for k, v in (plan.get("by_roadmap") or {}).items()},
        "shares": inputs.get("shares") or {},
        "capacity": {str(k): [v.get("used"), v.get("capacity")]
                     for k, v in (plan.get("capacity_use") or {}).items()},
    }


def _context(data: dict[str, Any], label: str) -> PlanContext:
    return PlanContext(
        label=label, budget=None if data.get("budget") is None else float(data["budget"]),
        roadmap_spend={k: float(v) for k, v in (data.get("roadmap_spend") or {}).items()},
        shares={k: (float(v[0]), float(v[1])) for k, v in (data.get("shares") or {}).items()},
        capacity={k: (float(v[0] or 0.0), None if v[1] is None else float(v[1]))
                  for k, v in (data.get("capacity") or {}).items()})


def version_context(version: RoadmapVersion) -> PlanContext:
    return _context(version.context or {}, f"v{version.number}")


def _teams(effort: Any) -> tuple[str, ...]:
    return tuple(sorted(t for t, u in (effort or {}).items() if u))


def version_plan(version: RoadmapVersion) -> list[PlanItem]:
    """The version's items as the diff sees them (rejected items are not part of the plan)."""
    return [PlanItem(str(i.investment_id), i.title, i.roadmap, i.value, i.cost,
                     i.start_quarter, _teams(i.teams), i.evidence, i.state)
            for i in version.items.exclude(state=ItemState.REJECT).order_by("id")]


def run_plan(run: OptimizationRun) -> list[PlanItem]:
    """A run's chosen items (evidence as the investment records it now)."""
    effort = {i["id"]: i.get("effort") or {} for i in (run.inputs or {}).get("items", [])}
    return [PlanItem(str(a.investment_id), a.investment.title, a.roadmap, a.value, a.cost,
                     a.start_quarter, _teams(effort.get(str(a.investment_id))),
                     evidence_level(a.investment.value_sources))
            for a in run.allocations.filter(chosen=True).select_related("investment")
            .order_by("investment_id")]


def diff_versions(base: RoadmapVersion, new: RoadmapVersion) -> list[Change]:
    return diff_plans(version_plan(base), version_plan(new), version_context(base),
                      version_context(new))


def previous_version(version: RoadmapVersion) -> RoadmapVersion | None:
    return (RoadmapVersion.objects.filter(workspace_id=version.workspace_id,
                                          number__lt=version.number).order_by("-number").first())


def diff_from_previous(version: RoadmapVersion) -> tuple[str, list[Change]]:
    """(label of the base, changes) from the version before (or from nothing) to ``version``."""
    base = previous_version(version)
    if base is None:
        return "no roadmap yet", diff_plans([], version_plan(version),
                                            PlanContext("no roadmap yet"),
                                            version_context(version))
    return f"v{base.number}", diff_versions(base, version)


def diff_run(run: OptimizationRun, version: RoadmapVersion | None = None) -> list[Change]:
    """A run against a version (default the current one; an empty roadmap before any)."""
    version = version or current_version(run.workspace_id)
    if version is None:
        return diff_plans([], run_plan(run), PlanContext("no roadmap yet"), run_context(run))
    return diff_plans(version_plan(version), run_plan(run), version_context(version),
                      run_context(run))


# ----- writes --------------------------------------------------------------------------------
def roadmap_adopt(*, run: OptimizationRun, user: Any, items: list[int] | None = None,
                  note: str = "", base_url: str | None = None) -> RoadmapVersion:
    """Adopt a run (its chosen items, or ``items``: investments of the run) as the workspace's
    next roadmap version. Decisions on the current version carry over to the items kept."""
    problem = run_is_stale(run)
    if problem:
        raise PlannerInvalid("run", problem)
    allocations = {a.investment_id: a for a in Allocation.objects.filter(run=run)
                   .select_related("investment").order_by("investment_id")}
    if items is None:
        picked = [pk for pk, a in allocations.items() if a.chosen]
    else:
        picked = list(dict.fromkeys(items))
        for pk in picked:
            if pk not in allocations:
                inv = Investment.objects.filter(pk=pk, workspace_id=run.workspace_id).first()
                name = inv.label if inv else f"#{pk}"
                raise PlannerInvalid("items", f"{name} is not part of run #{run.pk}")
    with transaction.atomic():
        # The workspace row lock serializes adoptions: version numbers never collide.
        Workspace.objects.select_for_update().filter(pk=run.workspace_id).first()
        previous = current_version(run.workspace_id)
        carried = dict(previous.items.values_list("investment_id", "state")) if previous else {}
        number = (RoadmapVersion.objects.filter(workspace_id=run.workspace_id)
                  .aggregate(n=Max("number"))["n"] or 0) + 1
        version = RoadmapVersion.objects.create(
            workspace_id=run.workspace_id, number=number, adopted_from=run,
            adopted_by=user if getattr(user, "is_authenticated", False) else None,
            adopted_at=timezone.now(), note=(note or "").strip()[:5000],
            context=_context_dict(run))
        deps = _dependencies(picked)
        rows = []
        for pk in picked:
            a = allocations[pk]
            inv = a.investment
            rows.append(RoadmapItem(
                version=version, investment=inv, title=inv.title, roadmap=a.roadmap,
                start_quarter=a.start_quarter, duration_quarters=inv.duration_quarters,
                value=a.value, cost=a.cost, teams=inv.effort or {},
                evidence=evidence_level(inv.value_sources), depends_on=deps.get(pk, []),
                chosen_by_optimizer=a.chosen, state=carried.get(pk, ItemState.PROPOSED)))
        created = RoadmapItem.objects.bulk_create(rows)
        webhooks.notify_roadmap_adopted(version=version, items=created, base_url=base_url)
    page_cache.forget(run.workspace_id)
    return version


def _dependencies(ids: list[int]) -> dict[int, list[int]]:
    through = Investment.depends_on.through
    out: dict[int, list[int]] = {}
    for src, dst in through.objects.filter(from_investment_id__in=ids).order_by(
            "from_investment_id", "to_investment_id").values_list("from_investment_id",
                                                                  "to_investment_id"):
        out.setdefault(src, []).append(dst)
    return out


def roadmap_decide(*, version: RoadmapVersion, investment: Investment, verdict: str,
                   rationale: str, user: Any, base_url: str | None = None) -> Decision:
    """The council's verdict on an item of the current version: the item's state and the
    investment's status follow it. Revoking an approved item (revoke, defer or reject) that
    an approved item depends on is refused, naming both."""
    if verdict not in Verdict.values:
        raise PlannerInvalid("verdict", f"{verdict!r} is not one of {', '.join(Verdict.values)}")
    if not (rationale or "").strip():
        raise PlannerInvalid("rationale", f"a decision on {investment.label} needs a rationale")
    with transaction.atomic():
        Workspace.objects.select_for_update().filter(pk=version.workspace_id).first()
        current = current_version(version.workspace_id)
        if current is None or current.pk != version.pk:
            raise PlannerInvalid("version", f"v{version.number} is not the current roadmap "
                                            f"version (v{current.number if current else '?'}): "
                                            "decisions go on the current version")
        item = RoadmapItem.objects.select_for_update().filter(
            version=version, investment=investment).first()
        if item is None:
            raise PlannerInvalid("investment", f"{investment.label} is not on roadmap "
                                               f"v{version.number}")
        state = VERDICT_STATE[Verdict(verdict)]
        if verdict == Verdict.REVOKE and item.state != ItemState.APPROVE:
            raise PlannerInvalid("verdict", f"{investment.label} is not approved on "
                                            f"v{version.number} ({item.state}): nothing to "
                                            "revoke")
        if item.state == ItemState.APPROVE and state != ItemState.APPROVE:
            dependents = list(Investment.objects.filter(
                depends_on=investment, roadmap_items__version=version,
                roadmap_items__state=ItemState.APPROVE).order_by("pk"))
            if dependents:
                names = ", ".join(d.label for d in dependents)
                raise PlannerInvalid("investment", f"{investment.label} cannot be revoked: "
                                                   f"approved {names} depends on it")
        item.state = state
        item.save(update_fields=["state"])
        decision = Decision.objects.create(
            workspace_id=version.workspace_id, version=version, investment=investment,
            verdict=verdict, rationale=rationale.strip(),
            decided_by=user if getattr(user, "is_authenticated", False) else None)
        audit.record_bulk(Investment.objects.filter(pk=investment.pk),
                          {"status": STATE_STATUS[state], "updated_at": timezone.now()}, user)
        webhooks.notify_roadmap_decision(decision=decision, state=state, base_url=base_url)
    page_cache.forget(version.workspace_id)
    return decision


# ----- exports -------------------------------------------------------------------------------
def export_rows(version: RoadmapVersion | None, *,
                states: tuple[str, ...] = (ItemState.APPROVE,)) -> list[dict[str, Any]]:
    """The version's items in these states as export rows (roadmap, quarter, title order)."""
    if version is None:
        return []
    slug = version.workspace.slug
    rows = []
    for item in (version.items.filter(state__in=states).select_related("investment")
                 .order_by("roadmap", "start_quarter", "title", "investment_id")):
        inv = item.investment
        rows.append({
            "external_id": external_id(slug, inv.pk), "external_ref": inv.external_ref,
            "investment": inv.pk, "title": item.title, "description": inv.description,
            "roadmap": item.roadmap, "state": item.state, "start_quarter": item.start_quarter,
            "duration_quarters": item.duration_quarters, "teams": item.teams or {},
            "value": item.value, "cost": item.cost, "evidence": item.evidence,
        })
    return rows


def export_meta(version: RoadmapVersion | None, workspace: Workspace) -> dict[str, Any]:
    return {"workspace": workspace.slug,
            "version": version.number if version else None,
            "adopted_at": version.adopted_at.isoformat() if version else None,
            "adopted_from_run": version.adopted_from_id if version else None}


# ----- timeline ------------------------------------------------------------------------------
def timeline_items(version: RoadmapVersion, changes: list[Change] | None = None,
                   states: tuple[str, ...] = (ItemState.APPROVE, ItemState.PROPOSED,
                                              ItemState.DEFER)) -> list[TimelineItem]:
    """The version's items (approved, proposed, deferred) for the timeline, each marked with
    what changed since the version before (``changes``)."""
    marks: dict[str, str] = {}
    for change in changes or []:
        if change.kind != "dropped":
            marks.setdefault(change.id, change.kind)
    rows = list(version.items.filter(state__in=states).order_by("start_quarter", "title", "id"))
    titles = dict(version.items.values_list("investment_id", "title"))
    missing = {d for r in rows for d in (r.depends_on or []) if d not in titles}
    titles.update(Investment.objects.filter(pk__in=missing).values_list("pk", "title"))
    return [TimelineItem(
        id=r.investment_id, title=r.title, roadmap=r.roadmap, state=r.state,
        start_quarter=r.start_quarter, duration=r.duration_quarters,
        teams=tuple(sorted(t for t, u in (r.teams or {}).items() if u)), value=r.value,
        cost=r.cost, evidence=r.evidence,
        depends_on=tuple(titles.get(d, f"#{d}") for d in (r.depends_on or [])),
        change=marks.get(str(r.investment_id), ""),
        state_label=str(ItemState(r.state).label)) for r in rows]
