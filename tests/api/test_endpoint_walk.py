"""Walk every endpoint of /api/v1/ for every method it allows, as every kind of caller.

The endpoints are enumerated from the URL resolver (drf-spectacular's enumerator, the same one
that builds the OpenAPI schema), so an endpoint added later shows up here by itself and fails
until it has a row in EXPECTED. Per endpoint + method the table gives the role action the call
needs (segments.models.ROLE_ACTIONS), the status a role that may do it gets, which of acme's
objects sits in the path, and a valid body (so a refusal is the role's, not the input's).

Callers: anonymous -> 401 with WWW-Authenticate; the admin of another workspace -> 404 on every
route about one of acme's objects, and no acme object in any list; each acme role -> 403 for a
write its role may not do, the table's status otherwise. Every write runs in a savepoint that
is rolled back, so the calls do not depend on each other's order. All mismatches are reported
at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from drf_spectacular.generators import EndpointEnumerator

from accounts.models import ROLE_ACTIONS

pytestmark = pytest.mark.django_db

PREFIX = "/api/v1/"
NOT_WALKED = {"/api/v1/schema/", "/api/v1/docs/"}  # public documentation, not data
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
ROLES = ("viewer", "analyst", "council", "admin")


@dataclass(frozen=True)
class Op:
    action: str  # what the role needs (ROLE_ACTIONS); reads need "view"
    ok: int  # the status for a role that may
    obj: str | None = None  # key of the acme object in the path; None: a collection
    body: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    multipart: bool = False
    lists: str | None = None  # collection GET: the acme object the list must (not) show
    outsider: int = 404  # a collection write naming acme's objects, by another workspace
    query: str = ""  # a query string the endpoint needs (e.g. "workspace=acme")


def _csv(name: str, text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


V = "view"
EXPECTED: dict[tuple[str, str], Op] = {
    ("/api/v1/", "GET"): Op(V, 200),
    # workspaces
    ("/api/v1/workspaces/", "GET"): Op(V, 200, lists="workspace"),
    ("/api/v1/workspaces/{slug}/", "GET"): Op(V, 200, "workspace"),
    ("/api/v1/workspaces/{slug}/settings/", "GET"): Op(V, 200, "workspace"),
    ("/api/v1/workspaces/{slug}/settings/", "PATCH"): Op(
        "manage", 200, "workspace", body=lambda o: {"auto_refresh_segments": True}),
    # datasets
    ("/api/v1/datasets/", "GET"): Op(V, 200, lists="dataset"),
    ("/api/v1/datasets/", "POST"): Op(
        "import", 201, body=lambda w: {"workspace": "acme", "name": "another"}),
    ("/api/v1/datasets/{pk}/", "GET"): Op(V, 200, "dataset"),
    ("/api/v1/datasets/{pk}/", "DELETE"): Op("manage", 204, "scratch"),
    ("/api/v1/datasets/{pk}/", "PATCH"): Op(
        "define", 200, "dataset", body=lambda w: {"retention_start_event": "",
                                                  "retention_return_events": []}),
    ("/api/v1/datasets/{pk}/catalog/", "GET"): Op(V, 200, "dataset"),
    ("/api/v1/datasets/{pk}/erase/", "POST"): Op(
        "manage", 202, "dataset", body=lambda w: {"user_id": "u1", "reason": "walk"}),
    # imports
    ("/api/v1/imports/", "GET"): Op(V, 200, lists="import"),
    ("/api/v1/imports/", "POST"): Op(
        "import", 202, multipart=True,
        body=lambda w: {"dataset": w["dataset"].pk,
                        "events": _csv("more.csv", "user_id,event,timestamp\n"
                                                   "u1,refund,2025-02-01T00:00:00Z\n")}),
    ("/api/v1/imports/{pk}/", "GET"): Op(V, 200, "import"),
    ("/api/v1/imports/{pk}/report/", "GET"): Op(V, 200, "import"),
    # jobs
    ("/api/v1/jobs/", "GET"): Op(V, 200, lists="job"),
    ("/api/v1/jobs/{pk}/", "GET"): Op(V, 200, "job"),
    # segments, refreshes, snapshots
    ("/api/v1/segments/", "GET"): Op(V, 200, lists="segment"),
    ("/api/v1/segments/", "POST"): Op(
        "define", 201, body=lambda w: {"dataset": w["dataset"].pk, "name": "free",
                                       "definition": {"attribute": "plan", "op": "eq",
                                                      "value": "free"}}),
    ("/api/v1/segments/{pk}/", "GET"): Op(V, 200, "segment"),
    ("/api/v1/segments/{pk}/", "PATCH"): Op(
        "define", 200, "segment", body=lambda w: {"description": "pro users who bought"}),
    ("/api/v1/segments/{pk}/", "DELETE"): Op("define", 204, "segment"),
    ("/api/v1/segments/{pk}/snapshots/", "GET"): Op(V, 200, "segment"),
    # a sweep stores nothing but computes over the dataset: not for viewers
    ("/api/v1/segments/{pk}/sweep/", "POST"): Op(
        "define", 200, "segment", body=lambda w: {"path": "all[1]", "thresholds": [1, 2]}),
    # the live size estimate of a rule being built (the segment form): those who define
    ("/api/v1/segments/estimate/", "POST"): Op(
        "define", 200, body=lambda w: {"dataset": w["dataset"].pk,
                                       "definition": {"attribute": "plan", "op": "eq",
                                                      "value": "free"}}),
    ("/api/v1/refreshes/", "GET"): Op(V, 200, lists="refresh"),
    ("/api/v1/refreshes/", "POST"): Op("define", 202, body=lambda w: {"dataset": w["dataset"].pk}),
    ("/api/v1/refreshes/{pk}/", "GET"): Op(V, 200, "refresh"),
    ("/api/v1/snapshots/", "GET"): Op(V, 200, lists="snapshot"),
    ("/api/v1/snapshots/{pk}/", "GET"): Op(V, 200, "snapshot"),
    # behaviour analyses: starting one is compute (not for viewers); saving a segment defines
    ("/api/v1/analyses/", "GET"): Op(V, 200, lists="analysis"),
    ("/api/v1/analyses/", "POST"): Op(
        "define", 202, body=lambda w: {"dataset": w["dataset"].pk, "kind": "retention", "params": {}}),
    ("/api/v1/analyses/{pk}/", "GET"): Op(V, 200, "analysis"),
    ("/api/v1/analyses/{pk}/save/", "POST"): Op(
        "define", 201, "analysis", body=lambda w: {"name": "did not buy", "step": 1}),
    # saved insights: members read, definers pin, rename, reorder and remove
    ("/api/v1/insights/", "GET"): Op(V, 200, lists="insight"),
    ("/api/v1/insights/", "POST"): Op(
        "define", 201, body=lambda w: {"workspace": "acme", "dataset": w["dataset"].pk,
                                       "name": "buyers", "kind": "funnel",
                                       "params": {"steps": ["signup", "purchase"]}}),
    ("/api/v1/insights/{pk}/", "GET"): Op(V, 200, "insight"),
    ("/api/v1/insights/{pk}/", "PUT"): Op("define", 200, "insight",
                                          body=lambda w: {"name": "signup to purchase"}),
    ("/api/v1/insights/{pk}/", "PATCH"): Op("define", 200, "insight",
                                            body=lambda w: {"position": 0}),
    ("/api/v1/insights/{pk}/", "DELETE"): Op("define", 204, "insight"),
    # hypotheses
    ("/api/v1/hypotheses/", "GET"): Op(V, 200, lists="hypothesis"),
    ("/api/v1/hypotheses/", "POST"): Op(
        "define", 201, body=lambda w: {"workspace": "acme", "statement": "Reminders lift buys",
                                       "segments": [w["segment"].pk]}),
    ("/api/v1/hypotheses/{pk}/", "GET"): Op(V, 200, "hypothesis"),
    ("/api/v1/hypotheses/{pk}/", "PUT"): Op(
        "define", 200, "hypothesis",
        body=lambda w: {"statement": "Bundles lift revenue", "metric": "bought",
                        "segments": [w["segment"].pk]}),
    ("/api/v1/hypotheses/{pk}/", "PATCH"): Op(
        "define", 200, "hypothesis", body=lambda w: {"mechanism": "fewer steps"}),
    ("/api/v1/hypotheses/{pk}/", "DELETE"): Op("define", 204, "hypothesis"),
    ("/api/v1/hypotheses/{pk}/history/", "GET"): Op(V, 200, "hypothesis"),
    ("/api/v1/hypotheses/{pk}/transition/", "POST"): Op(
        "define", 200, "hypothesis", body=lambda w: {"status": "prioritized", "note": "next"}),
    # forecast calibration: one entry per workspace of the caller's
    ("/api/v1/hypotheses/calibration/", "GET"): Op(V, 200),
    # value models
    ("/api/v1/value-models/", "GET"): Op(V, 200, lists="value_model"),
    ("/api/v1/value-models/", "POST"): Op(
        "define", 201, body=lambda w: {"workspace": "acme", "name": "sessions -> LTV",
                                       "kind": "entered", "low": 0.1, "mid": 0.2, "high": 0.4,
                                       "source": "a guess from the 2025 cohorts"}),
    ("/api/v1/value-models/{pk}/", "GET"): Op(V, 200, "value_model"),
    ("/api/v1/value-models/{pk}/", "PUT"): Op(
        "define", 200, "value_model",
        body=lambda w: {"name": "reports -> LTV", "kind": "identity"}),
    ("/api/v1/value-models/{pk}/", "PATCH"): Op("define", 200, "value_model",
                                                body=lambda w: {"mid": 0.5}),
    ("/api/v1/value-models/{pk}/", "DELETE"): Op("define", 204, "value_model"),
    # an entered model is not measured: the role check first, then a 400 on "kind"
    ("/api/v1/value-models/{pk}/measure/", "POST"): Op("define", 400, "value_model"),
    # experiments
    ("/api/v1/experiments/", "GET"): Op(V, 200, lists="experiment"),
    # another workspace cannot see the hypothesis: 400 on that field (tested elsewhere too)
    ("/api/v1/experiments/", "POST"): Op(
        "define", 201, outsider=400, body=lambda w: w["design"](w, name="Second test")),
    ("/api/v1/experiments/{pk}/", "GET"): Op(V, 200, "experiment"),
    ("/api/v1/experiments/{pk}/", "PUT"): Op(
        "define", 200, "experiment", body=lambda w: w["design"](w, name="Checkout A/B v2")),
    ("/api/v1/experiments/{pk}/", "PATCH"): Op(
        "define", 200, "experiment", body=lambda w: {"mde": 0.1}),
    ("/api/v1/experiments/{pk}/", "DELETE"): Op("define", 204, "experiment"),
    ("/api/v1/experiments/{pk}/analyze/", "POST"): Op("define", 202, "experiment"),
    ("/api/v1/experiments/{pk}/assignments/", "POST"): Op(
        "define", 200, "experiment", multipart=True,
        body=lambda w: {"file": _csv("assign.csv", "user_id,arm,assigned_at\n" + "".join(
            f"u{i},{'control' if i % 2 else 'treatment'},2025-01-01T00:00:00Z\n"
            for i in range(20)))}),
    ("/api/v1/experiments/{pk}/conclude/", "POST"): Op(
        "define", 201, "experiment",
        body=lambda w: {"outcome": "validated", "now_believe": "it works",
                        "decision": "ship it", "override_reason": "if the rule disagrees"}),
    # the workspace's decision rule (read by members, changed by the manage role)
    ("/api/v1/decision-rules/{slug}/", "GET"): Op(V, 200, "workspace"),
    ("/api/v1/decision-rules/{slug}/", "PUT"): Op(
        "manage", 200, "workspace", body=lambda w: {"read": "bayesian"}),
    ("/api/v1/decision-rules/{slug}/", "PATCH"): Op(
        "manage", 200, "workspace", body=lambda w: {"prior_variance": 0.04}),
    # the power calculation stores the design on the experiment
    ("/api/v1/experiments/{pk}/power/", "POST"): Op("define", 200, "experiment",
                                                    body=lambda w: {}),
    ("/api/v1/experiments/{pk}/start/", "POST"): Op("define", 200, "experiment"),
    ("/api/v1/experiments/{pk}/summaries/", "GET"): Op(V, 200, "experiment"),
    ("/api/v1/experiments/{pk}/summaries/", "PUT"): Op(
        "define", 200, "experiment", body=lambda w: {"rows": w["summaries"]}),
    # the metric library
    ("/api/v1/metrics/", "GET"): Op(V, 200, lists="metric"),
    ("/api/v1/metrics/", "POST"): Op(
        "define", 201, body=lambda w: {"workspace": "acme", "name": "orders", "kind": "mean",
                                       "value": "count", "event": "purchase"}),
    ("/api/v1/metrics/{pk}/", "GET"): Op(V, 200, "metric"),
    ("/api/v1/metrics/{pk}/", "PUT"): Op(
        "define", 200, "metric", body=lambda w: {"name": "bought", "kind": "proportion",
                                                 "event": "purchase", "window_days": 14}),
    ("/api/v1/metrics/{pk}/", "PATCH"): Op("define", 200, "metric",
                                           body=lambda w: {"unit": "users"}),
    ("/api/v1/metrics/{pk}/", "DELETE"): Op("define", 204, "metric"),
    # learnings
    ("/api/v1/learnings/", "GET"): Op(V, 200, lists="learning"),
    ("/api/v1/learnings/{pk}/", "GET"): Op(V, 200, "learning"),
    # investments (the backlog)
    ("/api/v1/investments/", "GET"): Op(V, 200, lists="investment"),
    ("/api/v1/investments/", "POST"): Op(
        "define", 201, body=lambda w: {"workspace": "acme", "title": "Bundles",
                                       "roadmap": "core", "cost": 50,
                                       "target_segments": [w["segment"].pk]}),
    ("/api/v1/investments/{pk}/", "GET"): Op(V, 200, "investment"),
    ("/api/v1/investments/{pk}/", "PUT"): Op(
        "define", 200, "investment",
        body=lambda w: {"title": "Checkout v2", "roadmap": "core", "cost": 80}),
    ("/api/v1/investments/{pk}/", "PATCH"): Op(
        "define", 200, "investment", body=lambda w: {"cost": 90}),
    ("/api/v1/investments/{pk}/", "DELETE"): Op("define", 204, "investment"),
    ("/api/v1/investments/{pk}/history/", "GET"): Op(V, 200, "investment"),
    # scenarios and optimizer runs
    ("/api/v1/scenarios/", "GET"): Op(V, 200, lists="scenario"),
    ("/api/v1/scenarios/", "POST"): Op(
        "define", 201, body=lambda w: {"workspace": "acme", "name": "lean", "budget": 50}),
    ("/api/v1/scenarios/{pk}/", "GET"): Op(V, 200, "scenario"),
    ("/api/v1/scenarios/{pk}/", "PUT"): Op(
        "define", 200, "scenario", body=lambda w: {"name": "q3", "budget": 300}),
    ("/api/v1/scenarios/{pk}/", "PATCH"): Op(
        "define", 200, "scenario", body=lambda w: {"budget": 250}),
    ("/api/v1/scenarios/{pk}/", "DELETE"): Op("define", 204, "scenario"),
    ("/api/v1/scenarios/{pk}/run/", "POST"): Op("define", 202, "scenario"),
    ("/api/v1/runs/", "GET"): Op(V, 200, lists="run"),
    ("/api/v1/runs/{pk}/", "GET"): Op(V, 200, "run"),
    ("/api/v1/runs/{pk}/allocations/", "GET"): Op(V, 200, "run"),
    ("/api/v1/runs/{pk}/inputs/", "GET"): Op(V, 200, "run"),
    ("/api/v1/runs/{pk}/roadmap/", "GET"): Op(V, 200, "run"),
    # the world's scenario has no robust draws: the answer is the 400 naming robust_draws
    ("/api/v1/runs/{pk}/value-of-information/", "GET"): Op(V, 400, "run"),
    ("/api/v1/runs/{pk}/decide/", "POST"): Op(
        "decide", 201, "run", body=lambda w: {"investment": w["investment"].pk,
                                              "verdict": "defer", "rationale": "next quarter"}),
    # decisions
    ("/api/v1/decisions/", "GET"): Op(V, 200, lists="decision"),
    ("/api/v1/decisions/{pk}/", "GET"): Op(V, 200, "decision"),
    # the versioned roadmap (a workspace in the query string: acme's, so the outsider gets 404)
    ("/api/v1/roadmap-versions/", "GET"): Op(V, 200, lists="version"),
    ("/api/v1/roadmap-versions/{pk}/", "GET"): Op(V, 200, "version"),
    ("/api/v1/roadmap-versions/{pk}/diff/", "GET"): Op(V, 200, "version"),
    ("/api/v1/roadmap-versions/{pk}/decide/", "POST"): Op(
        "decide", 201, "version", body=lambda w: {"investment": w["investment"].pk,
                                                  "verdict": "defer", "rationale": "later"}),
    ("/api/v1/roadmap-versions/adopt/", "POST"): Op(
        "decide", 201, body=lambda w: {"run": w["run"].pk, "items": [w["investment"].pk]}),
    ("/api/v1/roadmap-versions/current/", "GET"): Op(V, 200, "workspace",
                                                     query="workspace=acme"),
    ("/api/v1/roadmap-versions/export/", "GET"): Op(V, 200, "workspace",
                                                    query="workspace=acme&as=jira"),
    ("/api/v1/runs/{pk}/against-roadmap/", "GET"): Op(V, 200, "run"),
    # audit history: council and admins see entries, other members an empty list
    ("/api/v1/audit/", "GET"): Op(V, 200),
    # webhooks (integrations): members read, admins manage
    ("/api/v1/webhooks/", "GET"): Op(V, 200, lists="webhook"),
    ("/api/v1/webhooks/", "POST"): Op(
        "manage", 201, body=lambda w: {"workspace": "acme", "url": "https://hooks.example.com/b",
                                       "events": ["investment.changed"]}),
    ("/api/v1/webhooks/{pk}/", "GET"): Op(V, 200, "webhook"),
    ("/api/v1/webhooks/{pk}/", "PATCH"): Op("manage", 200, "webhook",
                                            body=lambda w: {"active": False}),
    ("/api/v1/webhooks/{pk}/", "DELETE"): Op("manage", 204, "webhook"),
    ("/api/v1/webhooks/{pk}/deliveries/", "GET"): Op(V, 200, "webhook"),
    # a signed ping, queued on commit (the walk's savepoints roll back: nothing is sent)
    ("/api/v1/webhooks/{pk}/test/", "POST"): Op("manage", 202, "webhook"),
}


def walked_endpoints() -> set[tuple[str, str]]:
    """Every (path, method) of /api/v1/ the URL resolver serves through DRF views."""
    found = {("/api/v1/", "GET")}  # the router's root (not part of the schema)
    for path, _regex, method, _view in EndpointEnumerator().get_api_endpoints():
        if path.startswith(PREFIX) and path not in NOT_WALKED:
            found.add((path, method))
    return found


def test_every_endpoint_has_a_row_in_the_table():
    found = walked_endpoints()
    unknown = sorted(found - EXPECTED.keys())
    gone = sorted(EXPECTED.keys() - found)
    assert not unknown, ("endpoints without a row in EXPECTED (add the role action, success "
                         "status, object and a valid body):\n"
                         + "\n".join(f"  {m} {p}" for p, m in unknown))
    assert not gone, "rows in EXPECTED for endpoints that no longer exist:\n" + "\n".join(
        f"  {m} {p}" for p, m in gone)


class _Rollback(Exception):
    pass


def _lookup(w: dict[str, Any], key: str) -> str:
    obj = w[key]
    return obj.slug if key == "workspace" else str(obj.pk)


def _url(template: str, op: Op, w: dict[str, Any]) -> str:
    url = template if op.obj is None else re.sub(r"\{[^}]+\}", _lookup(w, op.obj), template)
    return f"{url}?{op.query}" if op.query else url


def _call(client: Any, method: str, url: str, op: Op, w: dict[str, Any]) -> Any:
    """One request in a savepoint that is always rolled back (jobs queued on commit never
    run); a server error comes back as a 500 response with its exception."""
    client.raise_request_exception = False
    kwargs: dict[str, Any] = {}
    if method != "GET":
        body = op.body(w) if op.body else {}
        kwargs = {"data": body, "format": "multipart" if op.multipart else "json"}
    result = {}
    try:
        with transaction.atomic():
            result["r"] = getattr(client, method.lower())(url, **kwargs)
            raise _Rollback
    except _Rollback:
        pass
    return result["r"]


def _describe(response: Any) -> str:
    if getattr(response, "exc_info", None):
        return f"{response.status_code} ({response.exc_info[1]!r})"
    text = response.content[:200].decode(errors="replace")
    return f"{response.status_code} {text}"


def _ids(response: Any, key: str) -> set[str]:
    data = response.json()
    rows = data["results"] if isinstance(data, dict) and "results" in data else data
    field = "slug" if key == "workspace" else "id"
    return {str(row[field]) for row in rows}


def test_walk_every_endpoint_as_every_caller(world, team, api):  # type: ignore[no-untyped-def]
    w = world
    endpoints = sorted(walked_endpoints() & EXPECTED.keys())
    clients = {"anonymous": api(None), "outsider": api(team["outsider"]),
               **{role: api(team[role]) for role in ROLES}}
    mismatches: list[str] = []
    checked = 0

    def expect(who: str, method: str, url: str, want: int, response: Any) -> None:
        nonlocal checked
        checked += 1
        if response.status_code != want:
            mismatches.append(f"{who:9} {method:6} {url}: want {want}, got {_describe(response)}")

    for template, method in endpoints:
        op = EXPECTED[template, method]
        url = _url(template, op, w)
        # Anonymous: 401 with a challenge, never 403.
        r = _call(clients["anonymous"], method, url, op, w)
        expect("anonymous", method, url, 401, r)
        if r.status_code == 401 and not r.headers.get("WWW-Authenticate"):
            mismatches.append(f"anonymous {method:6} {url}: 401 without WWW-Authenticate")
        # Another workspace's admin: acme's objects do not exist for them.
        r = _call(clients["outsider"], method, url, op, w)
        if op.obj is not None:
            expect("outsider", method, url, 404, r)
        elif method == "GET":
            expect("outsider", method, url, 200, r)
            if op.lists and r.status_code == 200 and _lookup(w, op.lists) in _ids(r, op.lists):
                mismatches.append(f"outsider  GET    {url}: lists acme's {op.lists}")
        else:
            expect("outsider", method, url, op.outsider, r)
        # Each acme role: reads for all; writes by role, 403 when the role may not.
        for role in ROLES:
            allowed = op.action in ROLE_ACTIONS[role]
            assert method in WRITES or allowed, (template, method, op.action)
            r = _call(clients[role], method, url, op, w)
            expect(role, method, url, op.ok if allowed else 403, r)
            if role == "admin" and op.lists and r.status_code == 200 and \
                    _lookup(w, op.lists) not in _ids(r, op.lists):
                mismatches.append(f"admin     GET    {url}: does not list acme's {op.lists}")

    assert not mismatches, (f"{len(mismatches)} of {checked} calls differ from EXPECTED:\n"
                            + "\n".join(mismatches))
    assert checked == 6 * len(endpoints)


def test_tokens_authenticate_and_bad_ones_get_a_challenge(team, api):  # type: ignore[no-untyped-def]
    from accounts.models import ApiToken

    token, key = ApiToken.issue(user=team["viewer"], name="roadmap tool")
    client = api(None)
    assert client.get("/api/v1/workspaces/", HTTP_AUTHORIZATION=f"Bearer {key}").status_code \
        == 200
    for header in (f"Bearer {key}x", "Bearer", f"Bearer {key} extra"):
        r = client.get("/api/v1/workspaces/", HTTP_AUTHORIZATION=header)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer", header
    token.revoked_at = token.created_at
    token.save()
    r = client.get("/api/v1/workspaces/", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
