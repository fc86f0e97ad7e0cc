"""The segment page's definition field holds the same JSON nesting limit as the API."""

from __future__ import annotations

import pytest

from events.models import Dataset

pytestmark = pytest.mark.django_db


def test_a_definition_nested_5000_levels_is_a_form_error_not_a_500(client, team):
    Dataset.objects.create(workspace=team["acme"], name="events")
    client.force_login(team["analyst"])
    deep = '{"not": ' * 5000 + "{}" + "}" * 5000
    r = client.post("/w/acme/segments/new/", {"name": "deep", "kind": "rule",
                                                "definition": deep})
    assert r.status_code == 200
    assert b"not valid JSON: nested deeper than 64 levels" in r.content
