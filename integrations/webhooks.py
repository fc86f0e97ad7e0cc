"""Webhooks: subscriptions, the events the app emits, signed deliveries with retries.

Wire format: a POST with a JSON body, the envelope
``{"id": <event uuid>, "event": <name>, "created_at": <ISO 8601>, "workspace": <slug>,
"data": {...}}``, and the headers ``X-SegmentPlanner-Event``, ``-Delivery`` (the delivery's id
in the API log), ``-Timestamp`` (Unix seconds of this attempt) and ``-Signature``:
``sha256=`` + hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` keyed with the subscription's
secret. Any 2xx answer is success; anything else (3xx included: redirects are not followed),
a network error or a timeout is retried after 30 s, 2 min, 10 min, 1 h and 6 h, then the
delivery fails. Every attempt is logged.

Targets are public addresses only (``egress``), checked when a subscription is saved and again
at every attempt, unless ``settings.WEBHOOK_ALLOW_PRIVATE_TARGETS`` (a self-hosted install
whose receivers are on its own network).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import secrets
import ssl
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from accounts.models import Workspace
from accounts.selectors import workspaces_for
from events.errors import FieldError
from segments.models import Refresh

from . import egress
from .models import (
    PING,
    DeliveryState,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)

# Wait after attempt n (1-based) before attempt n + 1; after the last attempt: failed.
BACKOFF_SECONDS = (30, 120, 600, 3600, 21600)
MAX_ATTEMPTS = len(BACKOFF_SECONDS) + 1
TIMEOUT_SECONDS = 10
# A claimed attempt whose worker died is due again after this (longer than any request).
LEASE = timedelta(seconds=120)
# A retry task may arrive a little before its time (clocks of web and worker differ).
GRACE = timedelta(seconds=5)
EXCERPT_BYTES = 2048
EXCERPT_CHARS = 500
ALLOWED_SCHEMES = ("http", "https")
HEADER_EVENT = "X-SegmentPlanner-Event"
HEADER_DELIVERY = "X-SegmentPlanner-Delivery"
HEADER_TIMESTAMP = "X-SegmentPlanner-Timestamp"
HEADER_SIGNATURE = "X-SegmentPlanner-Signature"
USER_AGENT = "SegmentPlanner-Webhooks/1"


class WebhookInvalid(FieldError):
    """A subscription was refused; ``field`` names the input at fault."""


# ----- signing (pure) ------------------------------------------------------------------------
def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def sign(secret: str, timestamp: int | str, body: bytes | str) -> str:
    """The signature header value: ``sha256=`` + HMAC-SHA256 of ``"{timestamp}.{body}"``."""
    message = f"{timestamp}.".encode() + _bytes(body)
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: int | str, body: bytes | str, signature: str,
           tolerance_seconds: int = 300, now: float | None = None) -> bool:
    """True when ``signature`` signs this body and timestamp and the timestamp is recent."""
    try:
        sent = int(str(timestamp))
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance_seconds:
        return False  # a replayed or very late message
    return hmac.compare_digest(sign(secret, sent, body), str(signature or ""))


def encode_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed)."""
    return json.dumps(payload, separators=(",", ":"), cls=DjangoJSONEncoder).encode()


def signed_headers(*, secret: str, event: str, delivery_id: int, body: bytes,
                   timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        HEADER_EVENT: event,
        HEADER_DELIVERY: str(delivery_id),
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: sign(secret, timestamp, body),
    }


# ----- subscriptions -------------------------------------------------------------------------
def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def allow_private_targets() -> bool:
    """``WEBHOOK_ALLOW_PRIVATE_TARGETS``: loopback and private receivers are allowed."""
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE_TARGETS", False))


def _default_port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme.lower() == "https" else 80)


def check_url(url: str, *, allow_private: bool | None = None) -> str:
    """An http(s) URL with a host on a public address, or WebhookInvalid on ``url``.

    A loopback, private, link-local or other non-public address (in any spelling),
    ``localhost``, or a name that resolves now to such an address is refused
    (``egress.check_target``), unless
    private targets are allowed (the setting, or ``allow_private``). A name that does not
    resolve yet is accepted: every delivery resolves and checks it again.
    """
    url = (url or "").strip()
    if not url:
        raise WebhookInvalid("url", "give the endpoint's URL")
    if len(url) > 2000:
        raise WebhookInvalid("url", "at most 2000 characters")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise WebhookInvalid("url", "the URL may not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise WebhookInvalid("url", f"not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise WebhookInvalid("url", "only http:// and https:// URLs are accepted "
                                    f"(got {parts.scheme + ':' if parts.scheme else 'no scheme'})")
    if not host:
        raise WebhookInvalid("url", "the URL needs a host")
    allow = allow_private_targets() if allow_private is None else allow_private
    try:
        egress.check_target(host, _default_port(parts), allow_private=allow)
    except egress.EgressRefused as exc:
        raise WebhookInvalid("url", str(exc)) from None
    return url


def check_events(events: Any) -> list[str]:
    if not isinstance(events, list | tuple) or not events:
        raise WebhookInvalid("events", "choose at least one event")
    unknown = [str(e) for e in events if e not in WebhookEvent.values]
    if unknown:
        raise WebhookInvalid("events", f"unknown event {unknown[0]!r}; one of "
                                       f"{', '.join(WebhookEvent.values)}")
    return sorted(set(events))


def subscription_create(*, workspace: Workspace, url: str, events: list[str],
                        user: object | None = None, description: str = "",
                        active: bool = True) -> WebhookSubscription:
    """A new subscription with a fresh secret (readable on the returned object only once)."""
    return WebhookSubscription.objects.create(
        workspace=workspace, url=check_url(url), events=check_events(events),
        description=(description or "").strip()[:200], active=active, secret=new_secret(),
        created_by=user if getattr(user, "is_authenticated", False) else None)


def subscription_update(*, subscription: WebhookSubscription, url: str | None = None,
                        events: list[str] | None = None, description: str | None = None,
                        active: bool | None = None) -> WebhookSubscription:
    """Change the URL, events, description or active flag (the secret stays)."""
    if url is not None:
        subscription.url = check_url(url)
    if events is not None:
        subscription.events = check_events(events)
    if description is not None:
        subscription.description = description.strip()[:200]
    if active is not None:
        subscription.active = active
    subscription.save()
    return subscription


def subscription_delete(*, subscription: WebhookSubscription) -> None:
    """Remove a subscription and its delivery log."""
    subscription.delete()


def subscriptions_for(user: object) -> QuerySet[WebhookSubscription]:
    """Subscriptions in the user's workspaces (nothing for anonymous users)."""
    return (WebhookSubscription.objects.filter(workspace__in=workspaces_for(user))
            .select_related("workspace", "created_by"))


# ----- emitting ------------------------------------------------------------------------------
def emit(workspace: Workspace, event: str, data: dict[str, Any], *,
         subscriptions: list[WebhookSubscription] | None = None) -> list[WebhookDelivery]:
    """Queue ``event`` for each active subscription of the workspace that asked for it.

    Deliveries are rows written in the caller's transaction; they are sent once it commits
    (nothing is sent for a rolled-back change).
    """
    if subscriptions is None:
        # Filtered in Python: JSON "contains" is not available on SQLite.
        subscriptions = [s for s in WebhookSubscription.objects.filter(workspace=workspace,
                                                                       active=True)
                         if event in (s.events or [])]
    if not subscriptions:
        return []
    now = timezone.now()
    event_id = uuid.uuid4()
    envelope = {"id": str(event_id), "event": event, "created_at": now.isoformat(),
                "workspace": workspace.slug, "data": data}
    payload = json.loads(json.dumps(envelope, cls=DjangoJSONEncoder))
    deliveries = []
    for subscription in subscriptions:
        # Due at once: if the task is lost, the beat task sends it.
        delivery = WebhookDelivery.objects.create(
            subscription=subscription, event=event, event_id=event_id, payload=payload,
            next_attempt_at=now, created_at=now)
        transaction.on_commit(partial(_dispatch, delivery.pk))
        deliveries.append(delivery)
    return deliveries


def send_test(*, subscription: WebhookSubscription) -> WebhookDelivery:
    """A ``ping`` event to this subscription only, whatever its events."""
    return emit(subscription.workspace, PING,
                {"message": "test delivery from Segment Planner",
                 "subscription": subscription.pk},
                subscriptions=[subscription])[0]


def notify_decision(*, decision: Any) -> None:
    """``roadmap.approved`` when a council decision approves an item of a run."""
    if decision.verdict != "approve":
        return
    run, investment = decision.run, decision.investment
    emit(decision.workspace, WebhookEvent.ROADMAP_APPROVED, {
        "run": run.pk,
        "scenario": {"id": run.scenario_id, "name": run.scenario.name},
        "investment": {"id": investment.pk, "title": investment.title},
        "decision": decision.pk,
        "verdict": decision.verdict,
        "rationale": decision.rationale,
        "decided_by": getattr(decision.decided_by, "username", None),
        "decided_at": decision.decided_at,
        "roadmap_url": f"/api/v1/runs/{run.pk}/roadmap/",
    })


def absolute(base_url: str | None, path: str) -> str:
    """``path`` on the app's address: the request's own (``base_url``), else
    ``settings.PUBLIC_BASE_URL``."""
    base = (base_url or getattr(settings, "PUBLIC_BASE_URL", "")).rstrip("/")
    return f"{base}{path}"


def _version_links(workspace: Workspace, version: Any, base_url: str | None) -> dict[str, str]:
    return {
        "version_url": absolute(base_url, f"/api/v1/roadmap-versions/{version.pk}/"),
        "current_url": absolute(base_url,
                                f"/api/v1/roadmap-versions/current/?workspace={workspace.slug}"),
        "page_url": absolute(base_url, f"/w/{workspace.slug}/roadmap/v/{version.number}/"),
    }


def notify_roadmap_adopted(*, version: Any, items: list[Any], base_url: str | None) -> None:
    """``roadmap.adopted``: the council adopted a run (or chosen items) as a new version."""
    workspace = version.workspace
    previous = version.number - 1
    emit(workspace, WebhookEvent.ROADMAP_ADOPTED, {
        "version": {"id": version.pk, "number": version.number, "note": version.note,
                    "adopted_at": version.adopted_at,
                    "adopted_by": getattr(version.adopted_by, "username", None)},
        "run": version.adopted_from_id,
        "items": [{"investment": i.investment_id, "title": i.title, "state": i.state,
                   "roadmap": i.roadmap, "start_quarter": i.start_quarter, "value": i.value,
                   "cost": i.cost} for i in items],
        **_version_links(workspace, version, base_url),
        "diff_url": absolute(base_url, f"/api/v1/roadmap-versions/{version.pk}/diff/")
        if previous >= 1 else None,
        "run_url": absolute(base_url, f"/w/{workspace.slug}/runs/{version.adopted_from_id}/")
        if version.adopted_from_id else None,
    })


def notify_roadmap_decision(*, decision: Any, state: str, base_url: str | None) -> None:
    """``roadmap.decision`` for every council decision on an item of the current version."""
    version, investment = decision.version, decision.investment
    workspace = version.workspace
    emit(workspace, WebhookEvent.ROADMAP_DECISION, {
        "decision": decision.pk, "verdict": decision.verdict, "state": state,
        "rationale": decision.rationale,
        "decided_by": getattr(decision.decided_by, "username", None),
        "decided_at": decision.decided_at,
        "version": {"id": version.pk, "number": version.number},
        "investment": {"id": investment.pk, "title": investment.title,
                       "external_ref": investment.external_ref,
                       "url": absolute(base_url, f"/api/v1/investments/{investment.pk}/")},
        **_version_links(workspace, version, base_url),
    })


def notify_investment_changed(*, investment: Any, reason: str) -> None:
    """``investment.changed`` when a re-valuation moved an investment's value."""
    emit(investment.workspace, WebhookEvent.INVESTMENT_CHANGED, {
        "id": investment.pk, "title": investment.title, "status": investment.status,
        "roadmap": investment.roadmap, "expected_value": investment.expected_value,
        "low": investment.value_low, "high": investment.value_high, "reason": reason,
    })


def _compact(row: dict[str, Any] | None) -> dict[str, Any]:
    # The headline of a quasi-experiment is its whole result (series, charts): keep scalars
    # and short intervals only.
    out: dict[str, Any] = {}
    for key, value in (row or {}).items():
        if value is None or isinstance(value, str | int | float | bool):
            out[key] = value
        elif isinstance(value, list | tuple) and len(value) <= 2 and all(
                v is None or isinstance(v, int | float) for v in value):
            out[key] = list(value)
    return out


def notify_experiment_concluded(*, learning: Any) -> None:
    """``experiment.concluded`` with the outcome, the headline estimate and the learning."""
    experiment, hypothesis = learning.experiment, learning.hypothesis
    emit(learning.workspace, WebhookEvent.EXPERIMENT_CONCLUDED, {
        "experiment": {"id": experiment.pk, "name": experiment.name},
        "hypothesis": {"id": hypothesis.pk, "statement": hypothesis.statement,
                       "status": hypothesis.status},
        "outcome": learning.outcome,
        "proposed_outcome": learning.proposed_outcome,
        "override_reason": learning.override_reason,
        "scope": (learning.estimates or {}).get("scope"),
        "headline": _compact((learning.estimates or {}).get("headline")),
        "learning": learning.pk,
        "decision": learning.decision,
    })


def notify_segment_refreshed(workspace: Workspace) -> None:
    """``segment.refreshed`` for the workspace's refresh that just finished (AFTER_REFRESH)."""
    refresh = (Refresh.objects.filter(workspace=workspace, finished_at__isnull=False)
               .select_related("dataset").order_by("-finished_at", "-id").first())
    if refresh is None:
        return
    emit(workspace, WebhookEvent.SEGMENT_REFRESHED, {
        "dataset": {"id": refresh.dataset_id, "name": refresh.dataset.name,
                    "version": refresh.dataset_version},
        "refresh": refresh.pk,
        "as_of": refresh.as_of,
        "segments": refresh.snapshots.count(),
        "snapshots_url": f"/api/v1/snapshots/?refresh={refresh.pk}",
    })


# ----- delivering ----------------------------------------------------------------------------
@dataclass(frozen=True)
class AttemptResult:
    status: int | None
    excerpt: str
    error: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _excerpt(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")[:EXCERPT_CHARS]


def connection_for(url: str, *, timeout: float = TIMEOUT_SECONDS,
                   allow_private: bool | None = None,
                   ssl_context: ssl.SSLContext | None = None) -> http.client.HTTPConnection:
    """An unopened connection for ``url``, to the address its host resolves to now.

    The host is resolved once and every address checked (EgressRefused: nothing is opened);
    the connection goes to those addresses, never looking the name up again (no DNS
    rebinding), with the URL's host in the ``Host`` header, the TLS SNI and the certificate
    check.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    allow = allow_private_targets() if allow_private is None else allow_private
    addresses = egress.resolve_all(host, _default_port(parts), allow_private=allow)
    if parts.scheme.lower() == "https":
        return egress.PinnedHTTPSConnection(host, addresses, parts.port, timeout=timeout,
                                            context=ssl_context or ssl.create_default_context())
    return egress.PinnedHTTPConnection(host, addresses, parts.port, timeout=timeout)


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = TIMEOUT_SECONDS, *,
         allow_private: bool | None = None,
         ssl_context: ssl.SSLContext | None = None) -> AttemptResult:
    """POST once; never raises: the outcome is the status, a body excerpt or an error.

    http.client directly: header names go out exactly as documented, and a redirect is an
    answer like any other non-2xx (following it could lead anywhere). A host that is (or
    resolves to) a non-public address is an error naming it, and nothing is connected.
    """
    started = time.monotonic()
    status, excerpt, error = None, "", ""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ALLOWED_SCHEMES or not parts.hostname:
        return AttemptResult(None, "", "refused: only http(s) URLs are sent to", 0)
    try:
        connection = connection_for(url, timeout=timeout, allow_private=allow_private,
                                    ssl_context=ssl_context)
        try:
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            connection.request("POST", target, body=body,
                               headers={**headers, "Content-Length": str(len(body))})
            response = connection.getresponse()
            status = response.status
            excerpt = _excerpt(response.read(EXCERPT_BYTES))
            if not 200 <= status < 300:
                error = f"HTTP {status} {response.reason}"
        finally:
            connection.close()
    except egress.EgressRefused as exc:
        error = str(exc)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    return AttemptResult(status, excerpt, error[:1000],
                         int((time.monotonic() - started) * 1000))


def _dispatch(delivery_id: int, countdown: int | None = None) -> None:
    from celery import current_app

    from .tasks import deliver_webhook

    if countdown is not None and current_app.conf.task_always_eager:
        # In-process (tests, eager mode) a countdown cannot wait: the schedule is in
        # next_attempt_at and retry_due / deliver(now=...) drive the next attempt.
        return
    if countdown is None:
        deliver_webhook.delay(delivery_id)
    else:
        deliver_webhook.apply_async((delivery_id,), countdown=countdown)


def deliver(delivery_id: int, *, now: datetime | None = None) -> WebhookDelivery | None:
    """Make one attempt at a pending delivery that is due; log it; schedule the next one.

    Returns None when there is nothing to do (not pending, not due, or another worker holds
    it): the claim is a conditional UPDATE, so a duplicate task never sends twice.
    """
    now = now or timezone.now()
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + GRACE)
    claimed = (WebhookDelivery.objects.filter(due, pk=delivery_id, state=DeliveryState.PENDING)
               .update(attempts=F("attempts") + 1, next_attempt_at=now + LEASE))
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)
    subscription = delivery.subscription
    give_up = False
    if not subscription.active and delivery.event != PING:
        result, give_up = AttemptResult(None, "", "not sent: the subscription is inactive", 0), True
    else:
        body = encode_body(delivery.payload)
        # The signed timestamp is the real sending time (receivers compare it to their clock).
        headers = signed_headers(secret=subscription.secret, event=delivery.event,
                                 delivery_id=delivery.pk, body=body, timestamp=int(time.time()))
        result = post(subscription.url, body, headers)
        # A URL that is not http(s) never will be; a non-public address is retried on the
        # schedule like any failure (a name's addresses can change), then fails.
        give_up = result.error.startswith("refused:")
    delay: int | None = None
    if result.ok:
        delivery.state, delivery.delivered_at = DeliveryState.SUCCEEDED, now
    elif give_up or delivery.attempts >= MAX_ATTEMPTS:
        delivery.state = DeliveryState.FAILED
    else:
        delay = BACKOFF_SECONDS[delivery.attempts - 1]
    delivery.next_attempt_at = now + timedelta(seconds=delay) if delay is not None else None
    delivery.last_status = result.status
    delivery.last_error = result.error
    delivery.last_response = result.excerpt
    delivery.last_duration_ms = result.duration_ms
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery, number=delivery.attempts, started_at=now,
            status_code=result.status, response_excerpt=result.excerpt, error=result.error,
            duration_ms=result.duration_ms, next_attempt_at=delivery.next_attempt_at)
        delivery.save(update_fields=["state", "delivered_at", "next_attempt_at", "last_status",
                                     "last_error", "last_response", "last_duration_ms"])
        if delay is not None:
            transaction.on_commit(partial(_dispatch, delivery.pk, delay))
    return delivery


def retry_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """Send again the pending deliveries whose next attempt is due (retries, lost tasks)."""
    now = now or timezone.now()
    ids = list(WebhookDelivery.objects.filter(state=DeliveryState.PENDING,
                                              next_attempt_at__lte=now)
               .order_by("next_attempt_at", "id").values_list("pk", flat=True)[:limit])
    for pk in ids:
        _dispatch(pk)
    return len(ids)
