"""Request bodies the API refuses before any view runs: JSON nested deeper than the limit is a
JSON 400, and a body over DATA_UPLOAD_MAX_MEMORY_SIZE is a JSON 413 naming the limit (issue 16,
items 6 and 12)."""

from __future__ import annotations

import io
import json

import pytest

from events.models import Dataset, Import
from security.bodies import json_depth

pytestmark = pytest.mark.django_db

DEEP = 5_000


def nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


def hypothesis_body(metric: str) -> bytes:
    return ('{"workspace": "acme", "statement": "deep", "metric": ' + metric + "}").encode()


def _json(response):  # type: ignore[no-untyped-def]
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    return response.json()


def test_json_nested_5000_levels_is_a_400_before_any_role_check(team, api, settings):
    for user in (team["viewer"], team["admin"], None):  # a viewer would get 403, anonymous 401
        r = api(user).post("/api/v1/hypotheses/", hypothesis_body(nested(DEEP)),
                           content_type="application/json")
        assert r.status_code == 400, r.content[:300]
        body = _json(r)
        assert body == {"detail": f"the JSON body is nested deeper than "
                                  f"{settings.JSON_MAX_DEPTH} levels (arrays and objects inside "
                                  f"one another)", "code": "json_too_deep"}
    for nest in (nested(DEEP // 2, '{"a": 1}'), '{"a": ' * DEEP + "1" + "}" * DEEP):
        r = api(team["admin"]).patch("/api/v1/hypotheses/1/", nest.encode(),
                                     content_type="application/json")
        assert r.status_code == 400 and _json(r)["code"] == "json_too_deep"


def test_the_limit_counts_levels_not_brackets_inside_strings(team, api, settings):
    settings.JSON_MAX_DEPTH = 100
    admin = api(team["admin"])
    # 100 levels (the whole body is one more: the object) pass the check...
    r = admin.post("/api/v1/hypotheses/", hypothesis_body(nested(99)),
                   content_type="application/json")
    assert r.status_code == 400 and "metric" in _json(r), r.content[:300]  # the serializer's 400
    r = admin.post("/api/v1/hypotheses/", hypothesis_body(nested(100)),
                   content_type="application/json")
    assert r.status_code == 400 and _json(r)["code"] == "json_too_deep"
    # ... and brackets in text, escaped quotes and backslashes included, are not levels.
    statement = '[[[{{"\\' * 40  # 200 opening brackets, 280 characters
    r = admin.post("/api/v1/hypotheses/", json.dumps({
        "workspace": "acme", "statement": statement, "metric": "bought"}),
        content_type="application/json")
    assert r.status_code == 201, r.content[:300]
    assert r.json()["statement"] == statement


def test_json_inside_a_form_field_is_held_to_the_same_limit(team, api):
    dataset = Dataset.objects.create(workspace=team["acme"], name="app")
    upload = io.BytesIO(b"user_id,event,timestamp\nu1,signup,2025-01-01T00:00:00Z\n")
    upload.name = "events.csv"
    r = api(team["analyst"]).post("/api/v1/imports/", {
        "dataset": dataset.pk, "events": upload, "mapping": '{"user_id": ' + nested(DEEP) + "}"},
        format="multipart")
    assert r.status_code == 400, r.content[:300]
    assert _json(r)["code"] == "json_too_deep"
    assert not Import.objects.exists()


@pytest.mark.parametrize(("text", "depth"), [
    ("1", 0), ("[]", 1), ('{"a": [1, {"b": []}]}', 4), ('"[[[["', 0),
    ('["\\"[[", [[]]]', 3), ('["\\\\", [[]]]', 3), ('{"k\\\\\\"[": [[[]]]}', 4),
    ("[" * 300, 300),  # unbalanced: counted as written (the parser then refuses it)
])
def test_json_depth_scans_without_recursion(text, depth):
    assert json_depth(text.encode()) == depth


def test_a_json_body_over_the_limit_is_a_json_413_naming_the_limit(team, api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
    body = json.dumps({"workspace": "acme", "statement": "x" * (11 * 1024 * 1024),
                       "metric": "bought"}).encode()
    for user in (team["admin"], None):
        r = api(user).post("/api/v1/hypotheses/", body, content_type="application/json")
        assert r.status_code == 413, r.content[:300]
        assert _json(r) == {
            "detail": f"the request body has {len(body):,} bytes, over the limit of 10 MiB "
                      "(10,485,760 bytes); send files as multipart uploads",
            "code": "body_too_large"}


def test_form_fields_over_the_limit_are_a_json_413(team, api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    dataset = Dataset.objects.create(workspace=team["acme"], name="app")
    upload = io.BytesIO(b"user_id,event,timestamp\nu1,signup,2025-01-01T00:00:00Z\n")
    upload.name = "events.csv"
    r = api(team["analyst"]).post("/api/v1/imports/", {
        "dataset": dataset.pk, "events": upload, "timezone": "x" * 5_000}, format="multipart")
    assert r.status_code == 413, r.content[:300]
    assert _json(r)["code"] == "body_too_large"
    assert "1 KiB (1,024 bytes)" in _json(r)["detail"]
    assert not Import.objects.exists()


def test_pages_keep_their_own_answer(team, client, settings):
    """Outside /api/ nothing changes: a page form over the limit is Django's 400."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    client.force_login(team["admin"])
    r = client.post("/w/acme/hypotheses/new/", {"statement": "x" * 5_000})
    assert r.status_code == 400


def test_the_api_parsers_hold_the_limit_wherever_a_body_is_parsed():
    """However a DRF view is reached (the middleware covers /api/), its parsers check too."""
    from django.http import QueryDict

    from security.parsers import FormParser, JSONParser, JsonTooDeep

    with pytest.raises(JsonTooDeep):
        JSONParser().parse(io.BytesIO(nested(DEEP).encode()))
    assert JSONParser().parse(io.BytesIO(b'{"a": [[1]]}')) == {"a": [[1]]}
    body = QueryDict(mutable=True)
    body.update({"mapping": " " + nested(DEEP), "note": "[" * DEEP})
    with pytest.raises(JsonTooDeep):
        FormParser().parse(io.BytesIO(body.urlencode().encode()),
                           parser_context={"encoding": "utf-8"})
    body = QueryDict("note=" + "(" * DEEP)
    assert FormParser().parse(io.BytesIO(body.urlencode().encode()),
                              parser_context={"encoding": "utf-8"})["note"] == "(" * DEEP
