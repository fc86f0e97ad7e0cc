"""Webhooks: signatures, deliveries with retries against a real local receiver, the four
events from the code paths that cause them, the API's roles and the page (with private
targets allowed, as the receiver is local)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from django.utils import timezone

from events.models import Dataset
from experiments.models import Evidence, Hypothesis
from integrations import tasks, webhooks
from integrations.models import WebhookDelivery, WebhookSubscription
from planner import services
from planner.models import Investment, OptimizationRun, Scenario
from segments import segment_services
from segments.models import Refresh

SECRET = "whsec_test-secret"


@pytest.fixture(autouse=True)
def _private_targets_allowed(settings):
    """The receivers here listen on 127.0.0.1: allowed as on a self-hosted install (the refusal
    of private targets, the default, is tested in test_egress.py)."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True


# ----- a real receiver -----------------------------------------------------------------------
class Receiver:
    """An HTTP server on 127.0.0.1 that checks signatures; each path has its own secret and
    may be told to fail its next N requests."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.fail: dict[str, int] = {}
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                secret = receiver.secrets.get(self.path, "")
                valid = webhooks.verify(secret, self.headers["X-SegmentPlanner-Timestamp"],
                                        body, self.headers["X-SegmentPlanner-Signature"])
                receiver.received.append({"path": self.path, "headers": dict(self.headers),
                                          "body": json.loads(body), "valid": valid})
                if receiver.fail.get(self.path, 0) > 0:
                    receiver.fail[self.path] -= 1
                    code, text = 503, b"busy, try later"
                else:
                    code, text = (200, b"ok") if valid else (401, b"bad signature")
                self.send_response(code)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def at(self, path: str) -> list[dict]:
        return [r for r in self.received if r["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def subscribe(receiver: Receiver, workspace, path: str, events: list[str]) -> WebhookSubscription:
    sub = webhooks.subscription_create(workspace=workspace, url=receiver.url(path), events=events)
    receiver.secrets[path] = sub.secret
    return sub


# ----- signing (no database) -----------------------------------------------------------------
def test_signature_is_hmac_sha256_of_timestamp_dot_body_and_verifies():
    body, ts = b'{"event":"ping","data":{"x":1}}', 1_700_000_000
    expected = "sha256=" + hmac.new(SECRET.encode(), b"1700000000." + body,
                                    hashlib.sha256).hexdigest()
    assert webhooks.sign(SECRET, ts, body) == expected
    assert webhooks.sign(SECRET, str(ts), body.decode()) == expected
    assert webhooks.verify(SECRET, ts, body, expected, now=ts + 10)
    assert webhooks.verify(SECRET, str(ts), body, expected, now=ts + 300)  # tolerance inclusive


def test_verification_refuses_tampered_body_wrong_secret_and_stale_timestamps():
    body, ts = b'{"event":"ping"}', 1_700_000_000
    sig = webhooks.sign(SECRET, ts, body)
    assert not webhooks.verify(SECRET, ts, b'{"event":"pong"}', sig, now=ts)
    assert not webhooks.verify("whsec_other", ts, body, sig, now=ts)
    assert not webhooks.verify(SECRET, ts, body, sig, now=ts + 301)  # replayed later
    assert not webhooks.verify(SECRET, ts, body, sig, now=ts - 301)  # from the future
    assert not webhooks.verify(SECRET, ts, body, sig, tolerance_seconds=5, now=ts + 6)
    assert not webhooks.verify(SECRET, ts + 1, body, sig, now=ts)  # timestamp swapped
    assert not webhooks.verify(SECRET, "yesterday", body, sig, now=ts)
    assert not webhooks.verify(SECRET, ts, body, sig.replace("sha256=", "sha1="), now=ts)
    assert not webhooks.verify(SECRET, ts, body, "", now=ts)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://h/",
                                 "javascript:alert(1)", "example.com/hook", "http:///nohost",
                                 "http://exa mple.com/", ""])
def test_only_http_urls_with_a_host_are_accepted(url):
    with pytest.raises(webhooks.WebhookInvalid) as err:
        webhooks.check_url(url)
    assert err.value.field == "url"


def test_loopback_and_https_urls_are_accepted_when_private_targets_are_allowed():
    assert webhooks.check_url(" http://127.0.0.1:8000/hook ") == "http://127.0.0.1:8000/hook"
    assert webhooks.check_url("https://hooks.example.com/p?x=1") == "https://hooks.example.com/p?x=1"


# ----- delivering ----------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_delivery_is_signed_sent_once_and_logged(team, receiver,
                                                   django_capture_on_commit_callbacks):
    sub = subscribe(receiver, team["acme"], "/a", ["investment.changed"])
    with django_capture_on_commit_callbacks(execute=True):
        [delivery] = webhooks.emit(team["acme"], "investment.changed", {"id": 7})
    [hit] = receiver.received
    assert hit["valid"]
    assert hit["headers"]["X-SegmentPlanner-Event"] == "investment.changed"
    assert hit["headers"]["X-SegmentPlanner-Delivery"] == str(delivery.pk)
    assert hit["headers"]["Content-Type"] == "application/json"
    assert hit["body"]["id"] == str(delivery.event_id)
    assert hit["body"]["event"] == "investment.changed"
    assert hit["body"]["workspace"] == "acme" and hit["body"]["data"] == {"id": 7}
    assert hit["body"]["created_at"].startswith(str(delivery.created_at.date()))
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("succeeded", 1, 200)
    assert delivery.last_response == "ok" and delivery.last_error == ""
    assert delivery.next_attempt_at is None and delivery.delivered_at is not None
    [attempt] = delivery.attempt_log.all()
    assert (attempt.number, attempt.status_code, attempt.response_excerpt) == (1, 200, "ok")
    assert attempt.duration_ms >= 0 and attempt.next_attempt_at is None
    # A duplicate task (redelivered message, beat) finds nothing to do: sent once.
    assert webhooks.deliver(delivery.pk) is None
    assert len(receiver.received) == 1 and sub.deliveries.count() == 1


@pytest.mark.django_db
def test_failures_are_retried_on_the_backoff_schedule_then_succeed(team, receiver,
                                                                   django_capture_on_commit_callbacks):
    subscribe(receiver, team["acme"], "/flaky", ["segment.refreshed"])
    receiver.fail["/flaky"] = 3
    with django_capture_on_commit_callbacks(execute=False):  # attempts driven by hand below
        [delivery] = webhooks.emit(team["acme"], "segment.refreshed", {"refresh": 1})
    now = timezone.now()
    schedule = []
    for _ in range(4):
        d = webhooks.deliver(delivery.pk, now=now)
        schedule.append((d.attempts, d.state, d.last_status,
                         (d.next_attempt_at - now).total_seconds() if d.next_attempt_at else None))
        if d.next_attempt_at:
            # Not due before its time (beyond the few seconds' grace for clock skew).
            assert webhooks.deliver(delivery.pk, now=now + timedelta(seconds=10)) is None
            now = d.next_attempt_at
    assert schedule == [(1, "pending", 503, 30.0), (2, "pending", 503, 120.0),
                        (3, "pending", 503, 600.0), (4, "succeeded", 200, None)]
    log = list(delivery.attempt_log.values_list("number", "status_code", "response_excerpt"))
    assert log == [(1, 503, "busy, try later"), (2, 503, "busy, try later"),
                   (3, 503, "busy, try later"), (4, 200, "ok")]
    assert all(r["valid"] for r in receiver.received) and len(receiver.received) == 4
    # Every attempt carries the same event (receivers de-duplicate on its id).
    assert {r["body"]["id"] for r in receiver.received} == {str(delivery.event_id)}


@pytest.mark.django_db
def test_a_delivery_fails_after_the_last_attempt(team, receiver,
                                                 django_capture_on_commit_callbacks):
    subscribe(receiver, team["acme"], "/down", ["segment.refreshed"])
    receiver.fail["/down"] = 100
    with django_capture_on_commit_callbacks(execute=False):
        [delivery] = webhooks.emit(team["acme"], "segment.refreshed", {})
    now = timezone.now()
    while (d := webhooks.deliver(delivery.pk, now=now)) is not None and d.next_attempt_at:
        now = d.next_attempt_at
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.next_attempt_at) == ("failed", 6, None)
    waits = [(a.next_attempt_at - a.started_at).total_seconds() if a.next_attempt_at else None
             for a in delivery.attempt_log.all()]
    assert waits == [30.0, 120.0, 600.0, 3600.0, 21600.0, None]
    assert len(receiver.received) == 6
    assert webhooks.deliver(delivery.pk, now=now + timedelta(days=1)) is None  # final


@pytest.mark.django_db
def test_a_network_error_is_logged_and_retried(team, django_capture_on_commit_callbacks):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    webhooks.subscription_create(workspace=team["acme"], url=f"http://127.0.0.1:{port}/x",
                                 events=["segment.refreshed"])
    with django_capture_on_commit_callbacks(execute=False):
        [delivery] = webhooks.emit(team["acme"], "segment.refreshed", {})
    now = timezone.now()
    d = webhooks.deliver(delivery.pk, now=now)
    assert d.state == "pending" and d.last_status is None
    assert "refused" in d.last_error.lower() or "connection" in d.last_error.lower()
    assert d.next_attempt_at == now + timedelta(seconds=30)


@pytest.mark.django_db
def test_the_beat_task_resends_due_deliveries_only(team, receiver,
                                                   django_capture_on_commit_callbacks):
    subscribe(receiver, team["acme"], "/b", ["segment.refreshed"])
    receiver.fail["/b"] = 1
    with django_capture_on_commit_callbacks(execute=True):  # first attempt at commit: fails
        [first] = webhooks.emit(team["acme"], "segment.refreshed", {"n": 1})
        [second] = webhooks.emit(team["acme"], "segment.refreshed", {"n": 2})
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, first.attempts) == ("pending", 1)
    assert (second.state, second.attempts) == ("succeeded", 1)
    assert tasks.retry_due_webhooks() == 0  # the retry is 30 s away
    WebhookDelivery.objects.filter(pk=first.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert tasks.retry_due_webhooks() == 1
    first.refresh_from_db()
    assert (first.state, first.attempts, first.last_status) == ("succeeded", 2, 200)


@pytest.mark.django_db
def test_a_deactivated_subscription_stops_its_retries(team, receiver,
                                                      django_capture_on_commit_callbacks):
    sub = subscribe(receiver, team["acme"], "/off", ["segment.refreshed"])
    receiver.fail["/off"] = 1
    with django_capture_on_commit_callbacks(execute=True):
        [delivery] = webhooks.emit(team["acme"], "segment.refreshed", {})
    webhooks.subscription_update(subscription=sub, active=False)
    d = webhooks.deliver(delivery.pk, now=timezone.now() + timedelta(seconds=30))
    assert d.state == "failed" and "inactive" in d.last_error
    assert len(receiver.received) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks.emit(team["acme"], "segment.refreshed", {}) == []


# ----- the four events from their code paths -------------------------------------------------
@pytest.fixture
def hooks(team, receiver):
    """In 'acme': /all gets every event, /none gets none of interest (ping-less list of one
    unrelated event per test); 'other' has its own /other subscribed to everything."""
    every = ["roadmap.approved", "investment.changed", "experiment.concluded",
             "segment.refreshed"]
    subscribe(receiver, team["acme"], "/all", every)
    subscribe(receiver, team["other"], "/other", every)
    return receiver


def events_at(receiver: Receiver, path: str, event: str) -> list[dict]:
    return [r for r in receiver.at(path) if r["body"]["event"] == event]


EVENTS = "user_id,event,timestamp,revenue\n" + "".join(
    f"u{i},signup,2025-01-01T00:00:00Z,\nu{i},purchase,2025-01-02T00:00:00Z,{10 * (1 + i % 2)}\n"
    for i in range(40))
USERS = "user_id,signup_time,plan\n" + "".join(
    f"u{i},2025-01-01T00:00:00Z,{'pro' if i % 2 else 'free'}\n" for i in range(40))


@pytest.mark.django_db
def test_a_segment_refresh_emits_segment_refreshed(team, hooks, tmp_path,
                                                   django_capture_on_commit_callbacks):
    subscribe(hooks, team["acme"], "/inv", ["investment.changed"])
    (tmp_path / "e.csv").write_text(EVENTS)
    (tmp_path / "u.csv").write_text(USERS)
    call_command("import_events", workspace="acme", events=tmp_path / "e.csv",
                 users=tmp_path / "u.csv", dataset="app")
    dataset = Dataset.objects.get(name="app")
    for name, plan in (("pro", "pro"), ("free", "free")):
        segment_services.segment_create(dataset=dataset, name=name,
                                        definition={"attribute": "plan", "op": "eq",
                                                    "value": plan})
    with django_capture_on_commit_callbacks(execute=True):
        call_command("refresh_segments", workspace="acme")
    refresh = Refresh.objects.get()
    [hit] = events_at(hooks, "/all", "segment.refreshed")
    assert hit["valid"]
    assert hit["body"]["data"]["refresh"] == refresh.pk
    assert hit["body"]["data"]["dataset"]["id"] == dataset.pk
    assert hit["body"]["data"]["segments"] == 2
    assert hooks.at("/inv") == [] and hooks.at("/other") == []


@pytest.mark.django_db
def test_a_changed_investment_value_emits_investment_changed(team, hooks,
                                                             django_capture_on_commit_callbacks):
    subscribe(hooks, team["acme"], "/approved-only", ["roadmap.approved"])
    inv = Investment.objects.create(workspace=team["acme"], title="A", cost=60,
                                    assumed_reach=100, assumed_value_per_user=10,
                                    assumed_lift=1.0, adoption=1.0)
    with django_capture_on_commit_callbacks(execute=True):
        services.investment_revalue(investment=inv, reason="first look")
        services.investment_revalue(investment=inv, reason="same inputs")  # unchanged: silent
        inv.assumed_value_per_user = 20
        inv.save()
        services.investment_revalue(investment=inv, reason="bigger baskets")
    hits = events_at(hooks, "/all", "investment.changed")
    # 100 users x 1.0 adoption x value/user x 1.0 lift x P(success | assumption) 0.2
    assert [(h["body"]["data"]["expected_value"], h["body"]["data"]["reason"]) for h in hits] == [
        (pytest.approx(200.0), "first look"), (pytest.approx(400.0), "bigger baskets")]
    assert hits[1]["body"]["data"]["id"] == inv.pk and hits[1]["body"]["data"]["title"] == "A"
    assert {"low", "high"} <= set(hits[1]["body"]["data"])
    assert hooks.at("/approved-only") == [] and hooks.at("/other") == []


@pytest.mark.django_db
def test_an_approve_decision_emits_roadmap_approved(api, team, hooks,
                                                    django_capture_on_commit_callbacks):
    subscribe(hooks, team["acme"], "/inv", ["investment.changed"])
    ws = team["acme"]
    a = Investment.objects.create(workspace=ws, title="A", cost=60, assumed_reach=100,
                                  assumed_value_per_user=10, assumed_lift=1.0, adoption=1.0)
    b = Investment.objects.create(workspace=ws, title="B", roadmap="experimental", cost=20,
                                  assumed_reach=100, assumed_value_per_user=2, assumed_lift=1.0,
                                  adoption=1.0)
    with django_capture_on_commit_callbacks(execute=True):
        for inv in (a, b):
            services.investment_revalue(investment=inv)
    scenario = Scenario.objects.create(workspace=ws, name="s", budget=100, frontier_points=2)
    council = api(team["council"])
    with django_capture_on_commit_callbacks(execute=True):
        res = api(team["analyst"]).post(f"/api/v1/scenarios/{scenario.pk}/run/")
    run = OptimizationRun.objects.get(pk=res.json()["id"])
    url = f"/api/v1/runs/{run.pk}/decide/"
    with django_capture_on_commit_callbacks(execute=True):
        assert council.post(url, {"investment": b.pk, "verdict": "defer", "rationale": "later"},
                            format="json").status_code == 201
        assert council.post(url, {"investment": a.pk, "verdict": "approve",
                                  "rationale": "best value per cost"},
                            format="json").status_code == 201
    [hit] = events_at(hooks, "/all", "roadmap.approved")
    data = hit["body"]["data"]
    assert hit["valid"]
    assert data["run"] == run.pk and data["investment"] == {"id": a.pk, "title": "A"}
    assert data["scenario"] == {"id": scenario.pk, "name": "s"}
    assert (data["verdict"], data["rationale"], data["decided_by"]) == (
        "approve", "best value per cost", "council")
    assert data["roadmap_url"] == f"/api/v1/runs/{run.pk}/roadmap/"
    assert council.get(data["roadmap_url"]).status_code == 200
    assert [r["body"]["event"] for r in hooks.at("/inv")] == ["investment.changed"] * 2
    assert hooks.at("/other") == []


@pytest.mark.django_db
def test_concluding_an_experiment_emits_experiment_concluded(api, team, hooks,
                                                             django_capture_on_commit_callbacks):
    subscribe(hooks, team["acme"], "/refresh-only", ["segment.refreshed"])
    hyp = Hypothesis.objects.create(workspace=team["acme"], statement="Checklist lifts web",
                                    metric="onboarded_7d", expected_lift=0.1,
                                    evidence=Evidence.ASSUMPTION)
    client = api(team["analyst"])
    body = {"hypothesis": hyp.pk, "name": "From summaries", "kind": "ab",
            "arms": [{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
            "primary_metric": {"name": "onboarded_7d", "kind": "conversion",
                               "event": "onboarding_completed", "window_days": 7},
            "data_source": "summary"}
    r = client.post("/api/v1/experiments/", body, format="json")
    assert r.status_code == 201, r.content
    xid = r.json()["id"]
    rows = {"rows": [{"arm": "control", "metric": "onboarded_7d", "n": 100, "sum": 40,
                      "sum_sq": 40},
                     {"arm": "treatment", "metric": "onboarded_7d", "n": 100, "sum": 50,
                      "sum_sq": 50}]}
    assert client.put(f"/api/v1/experiments/{xid}/summaries/", rows,
                      format="json").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/api/v1/experiments/{xid}/analyze/").status_code == 202
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(f"/api/v1/experiments/{xid}/conclude/", {
            "outcome": "validated", "now_believe": "the checklist works",
            "decision": "ship it", "override_reason": "three earlier tests agree"},
            format="json")
    assert r.status_code == 201, r.content
    [hit] = events_at(hooks, "/all", "experiment.concluded")
    data = hit["body"]["data"]
    assert hit["valid"]
    assert data["experiment"] == {"id": xid, "name": "From summaries"}
    assert data["hypothesis"]["id"] == hyp.pk
    assert data["hypothesis"]["statement"] == "Checklist lifts web"
    assert data["outcome"] == "validated" and data["learning"] == r.json()["id"]
    # 40/100 vs 50/100: z = 0.1 / 0.0700 = 1.43, the interval holds zero: an override
    assert (data["proposed_outcome"], data["override_reason"]) == (
        "inconclusive", "three earlier tests agree")
    assert data["headline"]["absolute"] == pytest.approx(0.5 - 0.4)
    assert hooks.at("/refresh-only") == [] and hooks.at("/other") == []


# ----- API -----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_api_roles_scoping_and_the_secret_shown_once(api, team, receiver,
                                                     django_capture_on_commit_callbacks):
    admin, viewer, outsider = api(team["admin"]), api(team["viewer"]), api(team["outsider"])
    body = {"workspace": "acme", "url": receiver.url("/api"), "events": ["roadmap.approved"],
            "description": "roadmap tool"}
    assert api().get("/api/v1/webhooks/").status_code == 401
    assert api().post("/api/v1/webhooks/", body, format="json").status_code == 401
    assert viewer.post("/api/v1/webhooks/", body, format="json").status_code == 403
    assert api(team["council"]).post("/api/v1/webhooks/", body, format="json").status_code == 403
    assert outsider.post("/api/v1/webhooks/", body, format="json").status_code == 404

    r = admin.post("/api/v1/webhooks/", body, format="json")
    assert r.status_code == 201, r.content
    created = r.json()
    sub = WebhookSubscription.objects.get(pk=created["id"])
    assert created["secret"] == sub.secret and sub.secret.startswith("whsec_")
    assert created["workspace"] == "acme" and created["created_by"] == "admin"
    receiver.secrets["/api"] = created["secret"]

    listing = viewer.get("/api/v1/webhooks/")
    assert listing.status_code == 200 and listing.json()["count"] == 1
    assert "secret" not in listing.json()["results"][0]
    assert sub.secret not in listing.content.decode()
    assert sub.secret not in viewer.get(f"/api/v1/webhooks/{sub.pk}/").content.decode()
    assert outsider.get("/api/v1/webhooks/").json()["count"] == 0
    for method, path in (("get", ""), ("patch", ""), ("delete", ""), ("get", "deliveries/"),
                         ("post", "test/")):
        res = getattr(outsider, method)(f"/api/v1/webhooks/{sub.pk}/{path}", {}, format="json")
        assert res.status_code == 404, (method, path)
        assert getattr(api(), method)(f"/api/v1/webhooks/{sub.pk}/{path}", {},
                                      format="json").status_code == 401
    assert viewer.patch(f"/api/v1/webhooks/{sub.pk}/", {"active": False},
                        format="json").status_code == 403
    assert api(team["analyst"]).delete(f"/api/v1/webhooks/{sub.pk}/").status_code == 403
    assert viewer.post(f"/api/v1/webhooks/{sub.pk}/test/").status_code == 403

    # A test ping, signed, appears in the delivery log (readable by viewers).
    with django_capture_on_commit_callbacks(execute=True):
        r = admin.post(f"/api/v1/webhooks/{sub.pk}/test/")
    assert r.status_code == 202 and r.json()["event"] == "ping"
    [hit] = receiver.received
    assert hit["valid"] and hit["body"]["event"] == "ping"
    log = viewer.get(f"/api/v1/webhooks/{sub.pk}/deliveries/").json()
    [entry] = log["results"]
    assert (entry["event"], entry["state"], entry["last_status"]) == ("ping", "succeeded", 200)
    assert entry["attempt_log"][0]["status_code"] == 200
    assert viewer.get(f"/api/v1/webhooks/{sub.pk}/deliveries/",
                      {"state": "failed"}).json()["count"] == 0
    assert viewer.get(f"/api/v1/webhooks/{sub.pk}/deliveries/",
                      {"state": "nope"}).status_code == 400

    r = admin.patch(f"/api/v1/webhooks/{sub.pk}/", {"active": False,
                                                     "events": ["segment.refreshed"]},
                    format="json")
    assert r.status_code == 200 and r.json()["active"] is False
    assert r.json()["events"] == ["segment.refreshed"] and "secret" not in r.json()
    assert admin.delete(f"/api/v1/webhooks/{sub.pk}/").status_code == 204
    assert not WebhookSubscription.objects.exists()


@pytest.mark.django_db
def test_api_rejects_non_http_urls_and_unknown_events(api, team):
    admin = api(team["admin"])
    for url in ("ftp://example.com/hook", "file:///etc/passwd", "example.com/hook"):
        r = admin.post("/api/v1/webhooks/", {"workspace": "acme", "url": url,
                                             "events": ["roadmap.approved"]}, format="json")
        assert r.status_code == 400 and "url" in r.json(), (url, r.content)
    r = admin.post("/api/v1/webhooks/", {"workspace": "acme", "url": "https://x.example/h",
                                         "events": ["roadmap.exploded"]}, format="json")
    assert r.status_code == 400 and "events" in r.json()
    r = admin.post("/api/v1/webhooks/", {"workspace": "acme", "url": "https://x.example/h",
                                         "events": []}, format="json")
    assert r.status_code == 400 and "events" in r.json()
    sub = webhooks.subscription_create(workspace=team["acme"], url="https://x.example/h",
                                       events=["roadmap.approved"])
    r = admin.patch(f"/api/v1/webhooks/{sub.pk}/", {"url": "file:///etc/passwd"}, format="json")
    assert r.status_code == 400 and "url" in r.json()
    assert not WebhookSubscription.objects.exclude(pk=sub.pk).exists()


# ----- the page ------------------------------------------------------------------------------
@pytest.mark.django_db
def test_page_lets_admins_manage_and_shows_the_secret_once(client, team, receiver,
                                                           django_capture_on_commit_callbacks):
    client.force_login(team["admin"])
    page = "/w/acme/webhooks/"
    r = client.get(page)
    assert r.status_code == 200 and b"New webhook" in r.content
    r = client.post(page, {"op": "create", "url": "ftp://example.com/x",
                           "events": ["roadmap.approved"]})
    assert r.status_code == 200 and b"only http:// and https://" in r.content
    r = client.post(page, {"op": "create", "url": receiver.url("/page"),
                           "events": ["roadmap.approved", "segment.refreshed"]})
    sub = WebhookSubscription.objects.get()
    assert r.status_code == 200 and sub.secret.encode() in r.content
    assert sub.events == ["roadmap.approved", "segment.refreshed"]
    assert sub.secret.encode() not in client.get(page).content  # shown once
    receiver.secrets["/page"] = sub.secret
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(page, {"op": "test", "subscription": sub.pk})
    assert r.status_code == 302 and receiver.received[0]["valid"]
    assert b"succeeded" in client.get(page).content
    client.post(page, {"op": "toggle", "subscription": sub.pk})
    sub.refresh_from_db()
    assert sub.active is False
    client.post(page, {"op": "delete", "subscription": sub.pk})
    assert not WebhookSubscription.objects.exists()
    assert b"/w/acme/webhooks/" in client.get("/w/acme/").content


@pytest.mark.django_db
def test_page_is_read_only_for_viewers_and_hidden_from_outsiders(client, team):
    sub = webhooks.subscription_create(workspace=team["acme"], url="https://x.example/h",
                                       events=["roadmap.approved"])
    client.force_login(team["viewer"])
    r = client.get("/w/acme/webhooks/")
    assert r.status_code == 200 and b"https://x.example/h" in r.content
    assert b"New webhook" not in r.content and sub.secret.encode() not in r.content
    assert client.post("/w/acme/webhooks/", {"op": "delete",
                                             "subscription": sub.pk}).status_code == 403
    client.force_login(team["outsider"])
    assert client.get("/w/acme/webhooks/").status_code == 404
