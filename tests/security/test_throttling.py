"""API throttles and failed-login limits, counted in the shared cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db
LOCKED = "Too many failed sign-ins"


@pytest.fixture
def tiny_rates(settings):  # type: ignore[no-untyped-def]
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"anon": "2/min", "user": "3/min"}}


def test_the_api_answers_429_after_the_user_rate_and_counts_per_user(team, api, tiny_rates):
    viewer = api(team["viewer"])
    assert [viewer.get("/api/v1/workspaces/").status_code for _ in range(3)] == [200] * 3
    r = viewer.get("/api/v1/workspaces/")
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) > 0 and "throttled" in r.json()["detail"].lower()
    # writes count too, and another user has a budget of their own
    assert viewer.post("/api/v1/datasets/", {}, format="json").status_code == 429
    assert api(team["analyst"]).get("/api/v1/workspaces/").status_code == 200


def test_tokens_are_throttled_like_sessions(team, api, tiny_rates):
    from accounts.models import ApiToken

    _, key = ApiToken.issue(user=team["viewer"], name="t")
    client = api(None)
    codes = [client.get("/api/v1/workspaces/", HTTP_AUTHORIZATION=f"Bearer {key}").status_code
             for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_anonymous_callers_are_throttled_per_address(db, api, tiny_rates):
    client = api(None)
    codes = [client.get("/api/v1/schema/").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    other = api(None)
    assert other.get("/api/v1/schema/", REMOTE_ADDR="10.0.0.9").status_code == 200


def test_the_rates_come_from_the_environment_with_sane_defaults():
    env = {k: v for k, v in os.environ.items()
           if k not in ("API_THROTTLE_USER", "API_THROTTLE_ANON", "CACHE_URL")}
    code = ("from django.conf import settings; import django; django.setup(); "
            "print(settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']); "
            "print(settings.CACHES['default']['BACKEND'])")
    root = Path(__file__).resolve().parents[2]
    base = {**env, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=base, cwd=root, check=True,
                         capture_output=True, text=True).stdout
    assert "'anon': '60/min'" in out and "'user': '1200/min'" in out and "LocMemCache" in out
    out = subprocess.run([sys.executable, "-c", code], cwd=root, check=True, text=True,
                         capture_output=True, env={**base, "API_THROTTLE_USER": "50/min",
                                                   "CACHE_URL": "redis://127.0.0.1:6379/3"}
                         ).stdout
    assert "'user': '50/min'" in out and "RedisCache" in out


def _login(client, username: str, password: str, ip: str = "127.0.0.1"):  # type: ignore[no-untyped-def]
    return client.post("/accounts/login/", {"username": username, "password": password},
                       REMOTE_ADDR=ip)


def test_failed_logins_lock_the_username_from_that_address(team, client, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        r = _login(client, "analyst", "wrong")
        assert r.status_code == 200 and LOCKED not in r.content.decode()
    # Locked: even the right password is refused, with a clear message.
    r = _login(client, "analyst", "pw-for-tests-123")
    assert r.status_code == 200 and LOCKED in r.content.decode()
    assert "15 minutes" in r.content.decode()
    assert "_auth_user_id" not in client.session
    # The limit is per username and per address.
    assert _login(client, "viewer", "pw-for-tests-123").status_code == 302
    client.logout()
    assert _login(client, "analyst", "pw-for-tests-123", ip="10.1.2.3").status_code == 302


def test_the_count_is_per_username_case_insensitive_and_a_success_resets_it(team, client,
                                                                               settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    _login(client, "analyst", "wrong")
    _login(client, "ANALYST", "wrong")
    assert _login(client, "analyst", "pw-for-tests-123").status_code == 302
    client.logout()
    for _ in range(2):
        _login(client, "analyst", "wrong")
    assert _login(client, "analyst", "pw-for-tests-123").status_code == 302  # reset by success
    client.logout()
    for _ in range(3):
        _login(client, "Analyst", "wrong")
    assert LOCKED in _login(client, "analyst", "pw-for-tests-123").content.decode()


def test_the_window_expires(team, client, settings):
    from django.core.cache import cache

    from security.throttling import login_failure_key

    settings.LOGIN_FAILURE_LIMIT = 1
    _login(client, "analyst", "wrong")
    assert LOCKED in _login(client, "analyst", "pw-for-tests-123").content.decode()
    cache.delete(login_failure_key("analyst", "127.0.0.1"))  # what the timeout does
    assert _login(client, "analyst", "pw-for-tests-123").status_code == 302


def test_the_admin_login_shares_the_limit(team, client, settings):
    from django.contrib.auth import get_user_model

    staff = get_user_model().objects.create_user("boss", password="pw-for-tests-123",
                                                  is_staff=True, is_superuser=True)
    settings.LOGIN_FAILURE_LIMIT = 2
    for _ in range(2):
        client.post("/admin/login/", {"username": "boss", "password": "wrong"})
    r = client.post("/admin/login/", {"username": "boss", "password": "pw-for-tests-123"})
    assert r.status_code == 200 and LOCKED in r.content.decode()
    # the two forms count together: the main login is locked for this user too
    assert LOCKED in _login(client, "boss", "pw-for-tests-123").content.decode()
    assert staff.pk and "_auth_user_id" not in client.session
