"""Small objects in acme (tests/conftest.py's `team`), made with the ORM: enough for the audit,
mass-assignment and role tests without importing events."""

from __future__ import annotations

from typing import Any

import pytest

from events.models import Dataset
from experiments.models import Experiment, Hypothesis
from planner.models import Allocation, Investment, OptimizationRun, Scenario
from segments.models import Segment

RULE = {"all": [{"attribute": "plan", "op": "eq", "value": "pro"}]}


@pytest.fixture
def objs(team) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    acme, other = team["acme"], team["other"]
    dataset = Dataset.objects.create(workspace=acme, name="app")
    segment = Segment.objects.create(workspace=acme, dataset=dataset, name="pro",
                                     definition=RULE)
    hypothesis = Hypothesis.objects.create(workspace=acme, statement="Shorter checkout lifts buys",
                                           metric="bought", expected_lift=0.1)
    investment = Investment.objects.create(workspace=acme, title="Checkout", cost=100,
                                           assumed_reach=1000, assumed_value_per_user=5,
                                           assumed_lift=0.1)
    experiment = Experiment.objects.create(
        workspace=acme, hypothesis=hypothesis, name="Checkout A/B", data_source="summary",
        arms=[{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
        primary_metric={"name": "bought", "kind": "conversion", "event": "purchase",
                        "window_days": 30})
    scenario = Scenario.objects.create(workspace=acme, name="q2", budget=500, frontier_points=0)
    run = OptimizationRun.objects.create(workspace=acme, scenario=scenario, input_hash="x",
                                         status="optimal")
    Allocation.objects.create(run=run, investment=investment, roadmap="core", chosen=True,
                              cost=100, value=50)
    other_dataset = Dataset.objects.create(workspace=other, name="theirs")
    other_segment = Segment.objects.create(workspace=other, dataset=other_dataset, name="theirs",
                                           definition=RULE)
    return {"dataset": dataset, "segment": segment, "hypothesis": hypothesis,
            "investment": investment, "experiment": experiment, "scenario": scenario,
            "run": run, "other_dataset": other_dataset, "other_segment": other_segment}


@pytest.fixture(autouse=True)
def _fresh_cache():  # type: ignore[no-untyped-def]
    """Throttle and login-failure counts start from zero in every test."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
