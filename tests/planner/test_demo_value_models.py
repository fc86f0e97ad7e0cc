"""The demo, end to end on a small generated dataset: the checklist investments take their
lift through a measured value model (no proxy lift one to one), and the calibration page has a
history of concluded forecasts to read."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from experiments import selectors as experiment_selectors
from experiments.models import Hypothesis
from planner.models import Investment, ValueModel

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(tmp_path, settings):  # type: ignore[no-untyped-def]
    call_command("setup_demo")
    call_command("generate_demo_data", out=tmp_path / "demo", users=1500, seed=7)
    call_command("import_events", workspace="demo", dataset="Demo events",
                 events=tmp_path / "demo" / "events.csv", users=tmp_path / "demo" / "users.csv")
    call_command("create_demo_segments")
    call_command("refresh_segments", workspace="demo")
    call_command("create_demo_plan")
    call_command("create_demo_experiments")


def test_the_demo_maps_the_checklist_lift_to_value_and_has_a_calibration_history(demo, client):
    web = Investment.objects.get(title="Onboarding checklist v2 (web)")
    model = ValueModel.objects.get(name="7-day onboarding -> 90-day LTV (web)")
    assert web.value_model_id == model.pk and model.kind == "measured"
    s = web.value_sources
    lift, mapping = s["lift"], s["mapping"]
    # The lift is the experiment's, on the proxy metric onboarded_7d ...
    hyp = Hypothesis.objects.get(statement__startswith="An onboarding checklist")
    assert hyp.metric == "onboarded_7d" and lift["estimate"] == hyp.measured_lift
    # ... and reaches value through the measured elasticity, not one to one.
    assert mapping["kind"] == "measured" and mapping["observational"] is True
    assert mapping["estimate"] == pytest.approx(model.mid) and mapping["estimate"] != 1.0
    assert mapping["n"] == model.fit["n_users"] > 60
    assert s["value_lift"]["estimate"] == pytest.approx(lift["estimate"] * model.mid)
    reach, vpu = s["reach"]["estimate"], s["value_per_user"]["estimate"]
    p, adoption = s["probability_of_success"]["estimate"], s["adoption"]["estimate"]
    assert web.expected_value == pytest.approx(reach * adoption * vpu * lift["estimate"]
                                               * model.mid * p)
    one_to_one = reach * adoption * vpu * lift["estimate"] * p
    assert web.expected_value != pytest.approx(one_to_one)
    assert web.value_low <= web.expected_value <= web.value_high
    # The calibration page has enough history to read: 20+ concluded forecasts, 3 authors.
    result = experiment_selectors.workspace_calibration(web.workspace)
    assert result.overall.forecasts >= 20 and len(result.by_author) == 3
    assert result.excluded == 2
    client.login(username="demo", password="demo-pass-2026")
    page = client.get("/w/demo/calibration/").content.decode()
    assert "By author" in page and "analyst" in page
    page = client.get(f"/w/demo/investments/{web.pk}/").content.decode()
    assert "measured, observational" in page
