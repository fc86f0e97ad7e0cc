"""Audit rows name their object in words ("Decision: approve 'Mobile checklist' (v2)"), for
every audited model kind, and the audit page shows that name."""

from __future__ import annotations

import pytest

from audit.models import AuditEntry
from audit.recorder import TRACKED
from experiments.models import Experiment, Hypothesis
from planner.models import Decision, Investment, OptimizationRun, RoadmapVersion, Scenario
from segments.models import Segment

pytestmark = pytest.mark.django_db


def _label(obj: object, action: str = "create") -> str:
    return AuditEntry.objects.get(object_type=obj._meta.label_lower,  # type: ignore[attr-defined]
                                  object_id=str(obj.pk), action=action).object_repr  # type: ignore[attr-defined]


def test_every_audited_kind_is_named_in_words(objs, team, client):  # type: ignore[no-untyped-def]
    acme = team["acme"]
    hyp = Hypothesis.objects.create(workspace=acme, statement="Checklists   lift activation",
                                    metric="m", expected_lift=0.1)
    exp = Experiment.objects.create(
        workspace=acme, hypothesis=hyp, name="Mobile checklist A/B", data_source="summary",
        arms=[{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
        primary_metric={"name": "m", "kind": "conversion", "event": "e", "window_days": 7})
    inv = Investment.objects.create(workspace=acme, title="Mobile checklist", cost=10,
                                    assumed_reach=100, assumed_value_per_user=1, assumed_lift=0.1)
    seg = Segment.objects.create(workspace=acme, dataset=objs["dataset"], name="Team plan",
                                 definition={"attribute": "plan", "op": "eq", "value": "team"})
    v2 = RoadmapVersion.objects.create(workspace=acme, number=2)
    by_version = Decision.objects.create(workspace=acme, version=v2, investment=inv,
                                         verdict="approve", rationale="best value per cost")
    run = OptimizationRun.objects.create(
        workspace=acme, scenario=Scenario.objects.create(workspace=acme, name="s", budget=5,
                                                         frontier_points=0), input_hash="h")
    by_run = Decision.objects.create(workspace=acme, run=run, investment=inv, verdict="defer",
                                     rationale="later")
    expected = {
        hyp: "Hypothesis: 'Checklists lift activation'",  # whitespace folded
        exp: "Experiment: 'Mobile checklist A/B'",
        inv: "Investment: 'Mobile checklist'",
        seg: "Segment: 'Team plan'",
        v2: "Roadmap version: v2",
        by_version: "Decision: approve 'Mobile checklist' (v2)",
        by_run: f"Decision: defer 'Mobile checklist' (run #{run.pk})",
    }
    # Every tracked model kind has a case above.
    assert {o._meta.label_lower for o in expected} == set(TRACKED)
    for obj, text in expected.items():
        assert _label(obj) == text
    # Updates and deletes carry the name too (a deleted object keeps it).
    inv.title = "Mobile checklist v2"
    inv.save()
    assert _label(inv, "update") == "Investment: 'Mobile checklist v2'"
    seg_pk = seg.pk
    seg.delete()
    assert AuditEntry.objects.get(object_type="segments.segment", object_id=str(seg_pk),
                                  action="delete").object_repr == "Segment: 'Team plan'"
    # No model-default names anywhere; the page shows the names.
    assert not AuditEntry.objects.filter(object_repr__contains=" object (").exists()
    client.force_login(team["admin"])
    page = client.get("/w/acme/audit/").content.decode()
    assert "Decision: approve &#x27;Mobile checklist&#x27; (v2)" in page
    assert str(by_version) == "approve 'Mobile checklist v2' (v2)"  # renamed above


def test_a_long_statement_is_cut_with_an_ellipsis(team):  # type: ignore[no-untyped-def]
    hyp = Hypothesis.objects.create(workspace=team["acme"], statement="x" * 300, metric="m")
    assert _label(hyp) == "Hypothesis: '" + "x" * 79 + "…'"
