"""API throttles and failed-login limits, counted in Django's cache (Redis when CACHE_URL is
set, so every web process shares the counts)."""

from __future__ import annotations

import hashlib
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


class _RateAtRequestTime:
    """DRF reads the rates once, at import; these read them per request (settings may change,
    e.g. in tests)."""

    scope: str

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class AnonThrottle(_RateAtRequestTime, AnonRateThrottle):
    """Anonymous callers, per IP address."""


class UserThrottle(_RateAtRequestTime, UserRateThrottle):
    """Authenticated callers, per user (session or token)."""


def _client_ip(request: Any) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is spoofable unless a trusted proxy rewrites it.
    return (getattr(request, "META", {}) or {}).get("REMOTE_ADDR", "") or "unknown"


def login_failure_key(username: str, ip: str) -> str:
    digest = hashlib.sha256(f"{username.strip().lower()}|{ip}".encode()).hexdigest()[:32]
    return f"login-failures:{digest}"


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's login form, refusing a username from an address after too many failures."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": "Too many failed sign-ins for this username from your address. "
                     "Try again in %(minutes)s minutes.",
    }

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        key = login_failure_key(username, _client_ip(self.request))
        limit, window = settings.LOGIN_FAILURE_LIMIT, settings.LOGIN_FAILURE_WINDOW
        if username and (cache.get(key) or 0) >= limit:
            # Locked: the password is not even checked, so guessing gains nothing.
            minutes = max(1, round(window / 60))
            raise forms.ValidationError(self.error_messages["throttled"] % {"minutes": minutes},
                                        code="throttled")
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            if username:
                cache.add(key, 0, timeout=window)
                try:
                    cache.incr(key)
                except ValueError:  # expired in between
                    cache.set(key, 1, timeout=window)
            raise
        cache.delete(key)
        return cleaned
