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
