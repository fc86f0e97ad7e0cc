"""What an investment's figures rest on, recorded with each optimizer run: status, evidence
level and the segment snapshots, hypotheses and experiments behind its value (ids and times).

``inputs_basis`` reads it for any number of investments in a constant number of queries (the
investments' target segments prefetched by the caller); ``planner.staleness`` compares it.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from typing import Any

from django.db.models import OuterRef, Subquery

from experiments.models import Evidence, Experiment, Hypothesis, HypothesisStatus
from segments.models import Segment, SegmentSnapshot

from .models import Investment
from .staleness import BASIS_VERSION

EVIDENCE_ORDER = [Evidence.ASSUMPTION, Evidence.OBSERVATIONAL, Evidence.EXPERIMENT,
                  Evidence.REPLICATED]


def strongest_hypothesis(hypotheses: Iterable[Hypothesis]) -> Hypothesis | None:
    """The hypothesis an investment's lift comes from: not invalidated, measured first, then
    by evidence level (None when every one is invalidated, or there is none)."""
    live = [h for h in hypotheses if h.status != HypothesisStatus.INVALIDATED]
    if not live:
        return None
    return max(live, key=lambda h: (h.measured_lift is not None,
                                    EVIDENCE_ORDER.index(h.evidence)))


def evidence_of(best: Hypothesis) -> str:
    """The evidence level a hypothesis lends: a measured lift is at least an experiment."""
    if best.measured_lift is not None and best.evidence not in (Evidence.EXPERIMENT,
                                                                Evidence.REPLICATED):
        return Evidence.EXPERIMENT
    return str(best.evidence)


def evidence_level(hypotheses: Sequence[Hypothesis], assumed_lift: float | None) -> str:
    """The evidence behind an investment's lift: the strongest hypothesis's level, else
    'assumption' (an assumed lift), else 'none'."""
    best = strongest_hypothesis(hypotheses)
    if best is not None:
        return evidence_of(best)
    if any(h.status == HypothesisStatus.INVALIDATED for h in hypotheses):
        return "none"  # the valuation sets the assumption aside (services._lift_figures)
    return str(Evidence.ASSUMPTION) if assumed_lift is not None else "none"


def _iso(value: datetime.datetime | None) -> str | None:
    return value.astimezone(datetime.UTC).isoformat() if value is not None else None


def inputs_basis(workspace_id: int, investments: Sequence[Investment]) -> dict[str, Any]:
    """Per investment (by id as text): title, status, evidence level, exclusion group, and the
    latest snapshot of each target segment, each linked hypothesis and its experiments, with
    their ids and times. Three queries whatever the number of items (target segments must be
    prefetched)."""
    hypotheses: dict[int, list[Hypothesis]] = {}
    through = Investment.hypotheses.through
    for link in (through.objects.filter(investment__workspace_id=workspace_id)
                 .select_related("hypothesis").order_by("hypothesis_id")):
        hypotheses.setdefault(link.investment_id, []).append(link.hypothesis)
    experiments: dict[int, list[dict[str, Any]]] = {}
    for pk, hyp, status, analyzed in (Experiment.objects.filter(workspace_id=workspace_id)
                                      .order_by("pk").values_list("pk", "hypothesis_id",
                                                                  "status", "analyzed_at")):
        experiments.setdefault(hyp, []).append(
            {"experiment": pk, "status": status, "analyzed_at": _iso(analyzed)})
    latest = SegmentSnapshot.objects.filter(segment=OuterRef("pk")).order_by("-computed_at",
                                                                             "-id")
    snapshots = {pk: (snap, at) for pk, snap, at in Segment.objects.filter(
        workspace_id=workspace_id).annotate(
        snap=Subquery(latest.values("pk")[:1]),
        at=Subquery(latest.values("computed_at")[:1])).values_list("pk", "snap", "at")}
    items: dict[str, Any] = {}
    for inv in investments:
        hyps = hypotheses.get(inv.pk, [])
        segs = sorted(s.pk for s in inv.target_segments.all())
        items[str(inv.pk)] = {
            "title": inv.title, "status": inv.status,
            "evidence": evidence_level(hyps, inv.assumed_lift),
            "exclusion_group": inv.exclusion_group,
            "snapshots": [{"segment": s, "snapshot": snapshots.get(s, (None, None))[0],
                           "computed_at": _iso(snapshots.get(s, (None, None))[1])}
                          for s in segs],
            "hypotheses": [{"hypothesis": h.pk, "status": h.status,
                            "updated_at": _iso(h.updated_at)} for h in hyps],
            "experiments": [x for h in hyps for x in experiments.get(h.pk, [])],
        }
    return {"version": BASIS_VERSION, "items": items}
