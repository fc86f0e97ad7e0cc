"""Deployment checks (`manage.py check --deploy`) beyond Django's own."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register

DEV_KEY_PREFIX = "dev-only-insecure-key"


@register(Tags.security, deploy=True)
def check_secret_key_source(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """The development key is public (it is in the source): Django's own W009 misses it
    because it is long and varied."""
    if str(settings.SECRET_KEY).startswith(DEV_KEY_PREFIX):
        return [Warning("SECRET_KEY is the development key from the source code",
                        hint="set SECRET_KEY in the environment to a long random value",
                        id="segment_planner.W001")]
    return []


@register(Tags.security, deploy=True)
def check_webhook_targets(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """Private webhook targets let a workspace admin make the worker call internal services
    (SSRF) and read their answers in the delivery log."""
    if getattr(settings, "WEBHOOK_ALLOW_PRIVATE_TARGETS", False) and not settings.DEBUG:
        return [Warning("WEBHOOK_ALLOW_PRIVATE_TARGETS is on: webhooks may reach loopback, "
                        "private and link-local addresses (internal services, cloud metadata)",
                        hint="unset it in production unless every workspace admin may reach "
                             "the worker's network; receivers must then be on public addresses",
                        id="segment_planner.W002")]
    return []
