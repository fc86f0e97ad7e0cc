"""Decisions recorded on runs before roadmap versions survive the migration: they become
version 1 of their workspace's roadmap (latest verdict per investment as the item's state)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

BEFORE = [("planner", "0011_value_models"), ("accounts", "0004_calibration_setting")]


@pytest.mark.django_db(transaction=True)
def test_run_decisions_become_version_one():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    try:
        executor.migrate(BEFORE)
        old = MigrationExecutor(connection).loader.project_state(BEFORE).apps
        ws = old.get_model("accounts", "Workspace").objects.create(slug="old", name="Old")
        user = old.get_model("auth", "User").objects.create(username="chair")
        inv_model = old.get_model("planner", "Investment")
        a = inv_model.objects.create(workspace_id=ws.pk, title="A", cost=60,
                                     expected_value=200, effort={"web": 2},
                                     value_sources={"probability_of_success": {
                                         "source": "evidence level 'experiment' of "
                                                   "hypothesis #1"}})
        b = inv_model.objects.create(workspace_id=ws.pk, title="B", cost=20, expected_value=40)
        scenario = old.get_model("planner", "Scenario").objects.create(
            workspace_id=ws.pk, name="s", budget=100)
        run_model = old.get_model("planner", "OptimizationRun")
        alloc = old.get_model("planner", "Allocation")
        decision = old.get_model("planner", "Decision")
        runs = []
        for a_value, quarter in ((180.0, "2027Q1"), (210.0, "2027Q2")):
            run = run_model.objects.create(workspace_id=ws.pk, scenario_id=scenario.pk,
                                           input_hash=f"h{quarter}")
            alloc.objects.create(run_id=run.pk, investment_id=a.pk, roadmap="core",
                                 chosen=True, start_quarter=quarter, cost=60, value=a_value)
            alloc.objects.create(run_id=run.pk, investment_id=b.pk, roadmap="core",
                                 chosen=False, cost=20, value=40)
            runs.append(run)
        at = [datetime(2026, 1, d, tzinfo=UTC) for d in (1, 2, 3)]
        decision.objects.create(workspace_id=ws.pk, run_id=runs[0].pk, investment_id=a.pk,
                                verdict="defer", rationale="later", decided_at=at[0])
        decision.objects.create(workspace_id=ws.pk, run_id=runs[0].pk, investment_id=b.pk,
                                verdict="reject", rationale="no", decided_at=at[1])
        decision.objects.create(workspace_id=ws.pk, run_id=runs[1].pk, investment_id=a.pk,
                                verdict="approve", rationale="now", decided_at=at[2],
                                decided_by_id=user.pk)
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
        from planner.models import Decision, RoadmapVersion

        [version] = RoadmapVersion.objects.filter(workspace__slug="old")
        assert (version.number, version.adopted_from_id, version.adopted_by.username,
                version.adopted_at) == (1, runs[1].pk, "chair", at[2])
        items = {i.title: i for i in version.items.all()}
        # A: its latest decision (approve, on the second run) with that run's figures.
        assert (items["A"].state, items["A"].value, items["A"].start_quarter,
                items["A"].teams, items["A"].evidence, items["A"].chosen_by_optimizer) == (
            "approve", 210.0, "2027Q2", {"web": 2}, "experiment", True)
        assert (items["B"].state, items["B"].value, items["B"].chosen_by_optimizer) == (
            "reject", 40.0, False)
        assert sorted(Decision.objects.filter(version=version).values_list(
            "verdict", "run_id")) == [("approve", runs[1].pk), ("defer", runs[0].pk),
                                      ("reject", runs[0].pk)]
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
