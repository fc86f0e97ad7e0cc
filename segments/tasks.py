"""Celery tasks of the segments app: thin."""

from __future__ import annotations

from celery import shared_task

from . import segment_services


@shared_task(acks_late=True)
def refresh_due_segments() -> int:
    """Beat: queue the scheduled refreshes whose time has come."""
    return len(segment_services.refresh_due())
