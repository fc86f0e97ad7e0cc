"""Experiments from before the metric library keep working: the migration puts every metric
they name into their workspace's library and links it (one metric per name and definition)."""

from __future__ import annotations

import pytest

BEFORE = [("experiments", "0005_bayes_setting"), ("accounts", "0004_calibration_setting")]


@pytest.mark.django_db(transaction=True)
def test_existing_metric_definitions_become_library_metrics():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    try:
        executor.migrate(BEFORE)
        old = MigrationExecutor(connection).loader.project_state(BEFORE).apps
        ws = old.get_model("accounts", "Workspace").objects.create(slug="old", name="Old")
        hyp = old.get_model("experiments", "Hypothesis").objects.create(
            workspace_id=ws.pk, statement="s")
        experiment = old.get_model("experiments", "Experiment")
        onboarded = {"name": "onboarded_7d", "kind": "conversion",
                     "event": "onboarding_completed", "window_days": 7}
        sessions = {"kind": "count", "event": "session_start", "window_days": 14}
        a = experiment.objects.create(workspace_id=ws.pk, hypothesis_id=hyp.pk, name="A",
                                      primary_metric=onboarded, guardrail_metrics=[sessions])
        b = experiment.objects.create(
            workspace_id=ws.pk, hypothesis_id=hyp.pk, name="B",
            primary_metric={**onboarded, "window_days": 14},  # same name, other window
            guardrail_metrics=[sessions, {"kind": "revenue", "window_days": 30}])
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
        from experiments.models import Experiment, Metric

        library = {m.name: m for m in Metric.objects.filter(workspace__slug="old")}
        assert sorted(library) == ["count:session_start", "onboarded_7d", "onboarded_7d (2)",
                                   "revenue"]
        m = library["onboarded_7d"]
        assert (m.kind, m.event, m.window_days) == ("proportion", "onboarding_completed", 7.0)
        assert library["onboarded_7d (2)"].window_days == 14.0
        s = library["count:session_start"]
        assert (s.kind, s.value, s.event, s.window_days) == ("mean", "count", "session_start",
                                                             14.0)
        assert (library["revenue"].kind, library["revenue"].value,
                library["revenue"].event) == ("mean", "revenue", "")
        xa, xb = Experiment.objects.get(pk=a.pk), Experiment.objects.get(pk=b.pk)
        assert xa.primary_metric_ref == m
        assert list(xa.guardrail_metric_refs.all()) == [s]
        assert xb.primary_metric_ref.name == "onboarded_7d (2)"
        assert {g.name for g in xb.guardrail_metric_refs.all()} == {"count:session_start",
                                                                   "revenue"}
        # the stored definitions (what analyses read) are unchanged; the library's spec of
        # a metric is the same definition
        assert xa.primary_metric == onboarded
        assert m.spec() == onboarded
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
