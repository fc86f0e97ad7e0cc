"""What the schemathesis run found, pinned as plain tests (each was a 500 or a schema lie)."""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator

from experiments.stats import sample_size
from planner.models import Investment

pytestmark = pytest.mark.django_db


def test_unreadable_or_odd_times_in_sync_filters_are_no_500(team, api):  # type: ignore[no-untyped-def]
    client = api(team["viewer"])
    for path in ("datasets", "segments", "hypotheses", "investments"):
        r = client.get(f"/api/v1/{path}/", {"updated_since": "w"})
        assert r.status_code == 400 and "updated_since" in r.json(), (path, r.content)
        assert client.get(f"/api/v1/{path}/", {"updated_since": "2025-01-01"}).status_code == 200
        assert client.get(f"/api/v1/{path}/", {
            "updated_since": "2025-01-01T00:00:00Z"}).status_code == 200
        # PostgreSQL stores offsets up to +-15:59 only: the filters compare in UTC.
        for name in ("updated_since", "updated_at__gte"):
            for value in ("8058-01-05T09:58:44+17:53", "0442-02-16T01:56:52.2302-18:41"):
                r = client.get(f"/api/v1/{path}/", {name: value})
                assert r.status_code == 200, (path, name, value, r.content)
            r = client.get(f"/api/v1/{path}/", {name: "0001-01-01T00:00:00+01:00"})
            assert r.status_code == 400 and name in r.json(), (path, name, r.content)


def test_ids_beyond_64_bits_in_list_filters_are_a_400(team, api):  # type: ignore[no-untyped-def]
    client = api(team["viewer"])
    for path, name in (("hypotheses", "segments"), ("investments", "target_segments")):
        r = client.get(f"/api/v1/{path}/", {name: ["1", str(2**64)]})
        assert r.status_code == 400 and name in r.json(), (path, r.content)


def test_an_unattainable_power_design_is_a_value_error():
    with pytest.raises(ValueError, match="more users than can be counted"):
        sample_size(baseline_mean=0.1, mde_relative=0.05, binary=True, cluster_size=1e308,
                    icc=0.5)


def test_a_created_investment_comes_back_ranked(team, api):  # type: ignore[no-untyped-def]
    r = api(team["admin"]).post("/api/v1/investments/", {
        "workspace": "acme", "title": "Bundles", "roadmap": "core", "cost": 50, "impact": 2,
        "confidence": 0.5, "ease": 3}, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert {"value_per_cost", "rice", "ice"} <= body.keys()
    assert body["ice"] == pytest.approx(2 * 0.5 * 3)
    assert Investment.objects.get(pk=body["id"]).owner == team["admin"]


def test_the_schema_documents_validation_errors_and_nullable_owners():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    create = schema["paths"]["/api/v1/segments/"]["post"]["responses"]["400"]
    assert create["content"]["application/json"]["schema"] == {
        "type": "object", "additionalProperties": {}}
    assert "400" in schema["paths"]["/api/v1/segments/"]["get"]["responses"]
    for component in ("Segment", "Investment", "Hypothesis"):
        assert schema["components"]["schemas"][component]["properties"]["owner"]["nullable"]
    summaries = schema["paths"]["/api/v1/experiments/{id}/summaries/"]["get"]["responses"]
    assert summaries["200"]["content"]["application/json"]["schema"]["type"] == "array"
