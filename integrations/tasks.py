"""Celery tasks: thin. Each hands a delivery id (or the clock) to the webhook service."""

from __future__ import annotations

from celery import shared_task

from . import webhooks


@shared_task(acks_late=True)
def deliver_webhook(delivery_id: int) -> None:
    """One attempt at a webhook delivery (a no-op unless it is pending and due)."""
    webhooks.deliver(delivery_id)


@shared_task(acks_late=True)
def retry_due_webhooks() -> int:
    """Beat: send the deliveries whose next attempt is due."""
    return webhooks.retry_due()
