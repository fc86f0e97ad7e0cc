"""API throttles and failed-login limits, counted in Django's cache (Redis when CACHE_URL is
set, so every web process shares the counts)."""

from __future__ import annotations

import hashlib
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
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


class LoginThrottleMixin:
    """Refuses a username from an address after too many failed sign-ins (any login form)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": "Too many failed sign-ins for this username from your address. "
                     "Try again in %(minutes)s minutes.",
    }

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""  # type: ignore[attr-defined]
        key = login_failure_key(username, _client_ip(self.request))  # type: ignore[attr-defined]
        limit, window = settings.LOGIN_FAILURE_LIMIT, settings.LOGIN_FAILURE_WINDOW
        if username and (cache.get(key) or 0) >= limit:
            # Locked: the password is not even checked, so guessing gains nothing.
            minutes = max(1, round(window / 60))
            raise forms.ValidationError(self.error_messages["throttled"] % {"minutes": minutes},
                                        code="throttled")
        try:
            cleaned = super().clean()  # type: ignore[misc]
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


class ThrottledAuthenticationForm(LoginThrottleMixin, AuthenticationForm):
    """Django's login form with the failed sign-in limit."""


class ThrottledAdminAuthenticationForm(LoginThrottleMixin, AdminAuthenticationForm):
    """The admin site's login form with the same limit (it would be a way around it)."""

    error_messages = {**AdminAuthenticationForm.error_messages,
                      "throttled": LoginThrottleMixin.error_messages["throttled"]}
