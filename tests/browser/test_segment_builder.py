"""A PM builds a segment with the rule builder, refreshes, and reads its value page."""

from __future__ import annotations

import json

import pytest

from segments.models import Segment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def seed_dataset(workspace, tmp_path):  # type: ignore[no-untyped-def]
    from events import services

    dataset = services.dataset_create(workspace=workspace, name="Seeded events")
    events = tmp_path / "events.csv"
    events.write_text("user_id,event,timestamp,revenue\n" + "".join(
        f"u{i},view_page,2025-01-0{1 + i % 5}T10:00:00Z,{i % 3}\n" for i in range(30)))
    services.import_create(dataset=dataset, user=None,
                           events=services.copy_to_uploads(events, workspace=workspace))
    dataset.refresh_from_db()
    return dataset


def test_rule_builder_creates_a_segment_and_the_refresh_shows_its_value(
    new_page, login, live_server, team, tmp_path
):
    dataset = seed_dataset(team["acme"], tmp_path)
    event = dataset.event_catalog[0]["event"]
    page = new_page()
    login(page, "analyst")
    page.goto(f"{live_server.url}/w/acme/segments/new/")
    page.get_by_label("Name", exact=True).fill("Builder segment")
    page.select_option("#rb-kind", "event")
    page.fill("#rb-subject", event)
    page.fill("#rb-value", "1")
    page.get_by_role("button", name="Add condition").click()
    rule = json.loads(page.input_value("#id_definition"))
    assert rule == {"all": [{"event": event, "min_count": 1}]}
    page.get_by_role("button", name="Save segment").click()
    page.wait_for_url("**/segments/*/")
    segment = Segment.objects.get(name="Builder segment")
    assert segment.definition == rule and segment.owner.username == "analyst"
    # Refresh from the list page; the job runs at commit and the page reloads.
    page.goto(f"{live_server.url}/w/acme/segments/")
    page.get_by_role("button", name=f"Refresh “{dataset.name}”").click()
    page.goto(f"{live_server.url}/w/acme/segments/{segment.pk}/")
    assert page.get_by_role("heading", name="Value signals with 95% intervals").is_visible()
    page.wait_for_selector("#chart-signals .main-svg")
    assert page.errors == []
    # A wrong rule is refused with the offending node named, and nothing is saved.
    page.goto(f"{live_server.url}/w/acme/segments/new/")
    page.get_by_label("Name", exact=True).fill("Broken")
    page.fill("#id_definition", '{"all": [{"event": "nope_never_seen"}]}')
    page.get_by_role("button", name="Save segment").click()
    assert "all[0]" in page.locator("#err-def").inner_text()
    assert not Segment.objects.filter(name="Broken").exists()
