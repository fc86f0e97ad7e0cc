"""Issue 16, "domains on every number": the ranges are in the OpenAPI schema (minimum and
maximum of every number a client writes to the planner, experiments, segments and accounts), and
the models and the database hold them too (README "Number domains")."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from drf_spectacular.generators import SchemaGenerator

from accounts.models import Workspace

pytestmark = pytest.mark.django_db

# component -> property -> (minimum, maximum)
RANGES = {
    "InvestmentRequest": {
        "cost": (0.01, 1e12), "duration_quarters": (1, 40), "adoption": (0, 1),
        "horizon_months": (1, 60), "assumed_reach": (0, 1_000_000_000),
        "assumed_value_per_user": (0, 1e6), "assumed_lift": (-1, 10), "impact": (0, 10),
        "confidence": (0, 1), "ease": (1, 10)},
    "ScenarioRequest": {
        "budget": (0, 1e15), "robust_draws": (0, 100_000), "frontier_points": (0, 50),
        "time_limit": (1, 600)},
    "HypothesisRequest": {
        "expected_lift": (-1, 10), "expected_lift_low": (-1, 10),
        "expected_lift_high": (-1, 10)},
    "ExperimentRequest": {
        "mde": (0.001, 10), "alpha": (0.001, 0.2), "power": (0.5, 0.99),
        "cuped_pre_days": (0, 365), "cost": (0, 1e12)},
    "MetricRequest": {"window_days": (0.001, 365)},
    "PowerInRequest": {
        "baseline_mean": (-1e15, 1e15), "baseline_sd": (0, 1e15),
        "daily_traffic": (0.01, 1e9), "cuped_r2": (0, 0.99), "cluster_size": (1, 1e6),
        "icc": (0, 1)},
}


def test_the_schema_states_every_written_number_s_range():
    schema = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    for component, ranges in RANGES.items():
        props = schema[component]["properties"]
        numbers = {name for name, p in props.items() if p.get("type") in ("number", "integer")}
        assert numbers - set(ranges) <= {"hypothesis", "dataset", "segment", "value_model",
                                          "primary_metric_ref"}, \
            component
        for name, (low, high) in ranges.items():
            assert (props[name].get("minimum"), props[name].get("maximum")) == (low, high), \
                (component, name)
            if "Patched" + component in schema:  # PATCH bodies say the same
                patched = schema["Patched" + component]["properties"][name]
                assert (patched.get("minimum"), patched.get("maximum")) == (low, high)
    sweep = schema["SweepRequest"]["properties"]
    assert (sweep["thresholds"]["items"]["minimum"], sweep["thresholds"]["items"]["maximum"]) \
        == (0, 1_000_000)
    assert (sweep["window_days"]["items"]["minimum"], sweep["window_days"]["items"]["maximum"]) \
        == (1, 36_600)


def test_workspace_settings_have_ranges(team):
    ws = team["acme"]
    ws.min_segment_size, ws.refresh_every_days = 0, 10**6
    with pytest.raises(ValidationError) as caught:
        ws.full_clean()
    assert caught.value.message_dict == {
        "min_segment_size": ["Ensure this value is greater than or equal to 1."],
        "refresh_every_days": ["Ensure this value is less than or equal to 3650."]}
    for field, value in (("min_segment_size", 10**7), ("refresh_every_days", 0)):
        with pytest.raises(IntegrityError), transaction.atomic():
            Workspace.objects.filter(pk=ws.pk).update(**{field: value})


def test_sweep_thresholds_and_windows_have_ranges(world, api, team):
    client = api(team["analyst"])
    url = f"/api/v1/segments/{world['segment'].pk}/sweep/"
    r = client.post(url, {"path": "all[1]", "thresholds": [1, 10**12]}, format="json")
    assert r.status_code == 400
    assert r.json() == {"thresholds": {"1": ["Ensure this value is less than or equal to "
                                             "1000000."]}}
    r = client.post(url, {"path": "all[1]", "window_days": [10**6]}, format="json")
    assert r.json() == {"window_days": {"0": ["Ensure this value is less than or equal to "
                                              "36600."]}}
    r = client.post(url, {"path": "all[1]", "thresholds": [1, 2]}, format="json")
    assert r.status_code == 200, r.content
