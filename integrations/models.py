"""Webhook subscriptions per workspace and the log of every delivery and attempt."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from accounts.models import Workspace, user_link


class WebhookEvent(models.TextChoices):
    ROADMAP_APPROVED = "roadmap.approved", "Roadmap approved (a council approve decision)"
    ROADMAP_ADOPTED = "roadmap.adopted", "Roadmap version adopted from a run"
    ROADMAP_DECISION = "roadmap.decision", ("Roadmap decision (approve, reject, defer or "
                                            "revoke an item of the current version)")
    INVESTMENT_CHANGED = "investment.changed", "Investment value changed"
    EXPERIMENT_CONCLUDED = "experiment.concluded", "Experiment concluded"
    SEGMENT_REFRESHED = "segment.refreshed", "Segments refreshed"


# Sent only by "send test"; never subscribed to.
PING = "ping"


class DeliveryState(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookSubscription(models.Model):
    """An endpoint that receives a workspace's events, signed with its own secret.

    The secret is stored as given to the subscriber (not hashed): signing with HMAC needs the
    raw key. It is shown once, in the response that creates the subscription.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="webhooks")
    url = models.CharField(max_length=2000, help_text="http:// or https:// endpoint")
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, help_text="event names this endpoint receives")
    secret = models.CharField(max_length=100)
    active = models.BooleanField(default=True)
    created_by = user_link()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"webhook #{self.pk} -> {self.url}"


class WebhookDelivery(models.Model):
    """One event for one subscription: its payload, state and retry schedule."""

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE,
                                     related_name="deliveries")
    event = models.CharField(max_length=50)
    event_id = models.UUIDField(default=uuid.uuid4, db_index=True)
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=16, choices=DeliveryState.choices,
                             default=DeliveryState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_response = models.TextField(blank=True, help_text="excerpt of the last response body")
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="webhook_due")]

    def __str__(self) -> str:
        return f"{self.event} #{self.pk} ({self.state})"


class WebhookAttempt(models.Model):
    """One HTTP attempt of a delivery, as it happened."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE,
                                 related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True,
                                           help_text="when the next attempt is due, if any")

    class Meta:
        ordering = ["number", "id"]
