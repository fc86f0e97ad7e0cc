"""The demo's council adopts its '2027 plan' run as roadmap v1 and approves the two most
valuable items, once."""

from __future__ import annotations

import pytest

from planner import services
from planner.management.commands.create_demo_plan import Command
from planner.models import Investment, RoadmapVersion, Scenario

pytestmark = pytest.mark.django_db


def test_the_demo_plan_is_adopted_once_with_its_top_two_approved(team, make_user,
                                                                  django_capture_on_commit_callbacks):
    ws = team["acme"]
    for title, vpu in (("A", 10), ("B", 2), ("C", 5)):  # values 200, 40, 100
        services.investment_revalue(investment=Investment.objects.create(
            workspace=ws, title=title, cost=10, assumed_reach=100, assumed_value_per_user=vpu,
            assumed_lift=1.0, adoption=1.0))
    scenario = Scenario.objects.create(workspace=ws, name="2027 plan", budget=100,
                                       frontier_points=0, shares={"core": [0, 1]})
    with django_capture_on_commit_callbacks(execute=True):
        services.run_start(scenario=scenario)
    Command()._adopt(ws)
    Command()._adopt(ws)  # a workspace that has a roadmap keeps it
    [version] = RoadmapVersion.objects.filter(workspace=ws)
    assert version.adopted_by == team["council"] and version.note == "demo: the 2027 plan"
    assert dict(version.items.values_list("title", "state")) == {
        "A": "approve", "C": "approve", "B": "proposed"}
