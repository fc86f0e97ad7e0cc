"""`check --deploy` stays clean in production settings, and secrets come only from the
environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROD = {"DEBUG": "0", "SECRET_KEY": "k" * 10 + "-a-long-random-production-key-1234567890!?",
        "ALLOWED_HOSTS": "planner.example.com"}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"DEBUG", "ALLOW_INSECURE_KEY", "SECRET_KEY", "CACHE_URL",
                        "DJANGO_ALLOW_ASYNC_UNSAFE", "WEBHOOK_ALLOW_PRIVATE_TARGETS"}}
    return {**env, **PROD, **extra}


def _check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level",
                           "WARNING"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_check_deploy_is_clean_with_redis_cache_and_throttles():
    out = _check(_env(CACHE_URL="redis://127.0.0.1:6379/4", API_THROTTLE_USER="600/min"))
    assert out.returncode == 0 and "no issues" in out.stdout, out.stdout + out.stderr


def test_check_deploy_flags_the_development_key():
    env = _env(ALLOW_INSECURE_KEY="1")
    env.pop("SECRET_KEY")
    out = _check(env)
    assert out.returncode != 0 and "segment_planner.W001" in out.stderr + out.stdout


def test_check_deploy_flags_private_webhook_targets():
    out = _check(_env(WEBHOOK_ALLOW_PRIVATE_TARGETS="1"))
    assert out.returncode != 0, out.stdout + out.stderr
    assert "segment_planner.W002" in out.stderr + out.stdout
    assert "WEBHOOK_ALLOW_PRIVATE_TARGETS is on" in out.stderr + out.stdout
    out = _check(_env(WEBHOOK_ALLOW_PRIVATE_TARGETS="0"))
    assert out.returncode == 0 and "no issues" in out.stdout, out.stdout + out.stderr


def test_private_webhook_targets_warn_only_when_debug_is_off(settings):
    from security.checks import check_webhook_targets

    settings.DEBUG, settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False, True
    [warning] = check_webhook_targets()
    assert warning.id == "segment_planner.W002" and "WEBHOOK_ALLOW_PRIVATE_TARGETS" in warning.msg
    settings.DEBUG = True  # local development, the demo
    assert check_webhook_targets() == []
    settings.DEBUG, settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False, False
    assert check_webhook_targets() == []


def test_webhook_targets_are_public_only_by_default():
    code = ("import django; from django.conf import settings; django.setup(); "
            "print(settings.WEBHOOK_ALLOW_PRIVATE_TARGETS)")
    env = _env(DJANGO_SETTINGS_MODULE="config.settings")
    run = [sys.executable, "-c", code]
    assert subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
                          check=True).stdout.strip() == "False"
    env["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "1"
    assert subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
                          check=True).stdout.strip() == "True"


def test_settings_take_secrets_and_services_from_the_environment():
    code = ("import django; from django.conf import settings; django.setup(); "
            "print(settings.SECRET_KEY); print(settings.DATABASES['default']['NAME']); "
            "print(settings.CACHES['default']['LOCATION']); print(settings.CELERY_BROKER_URL)")
    env = _env(DATABASE_URL="postgres://u:pw-from-env@db.example:5432/planner",
               CACHE_URL="redis://cache.example:6379/1",
               CELERY_BROKER_URL="redis://broker.example:6379/0",
               DJANGO_SETTINGS_MODULE="config.settings")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    assert out == [PROD["SECRET_KEY"], "planner", "redis://cache.example:6379/1",
                   "redis://broker.example:6379/0"]


# Shapes of real credentials; none may be committed in the application's code or config.
CREDENTIALS = [
    re.compile(r"AKIA[0-9A-Z]{16}"),  # AWS access key
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\b(sk|rk)_live_[0-9a-zA-Z]{10,}"),  # Stripe
    re.compile(r"\bgh[pousr]_[0-9A-Za-z]{30,}"),  # GitHub
    re.compile(r"\bxox[abpr]-[0-9A-Za-z-]{10,}"),  # Slack
    re.compile(r"\bspk_[0-9A-Za-z_-]{20,}"),  # this app's own API tokens
    re.compile(r"\bwhsec_[0-9A-Za-z_-]{16,}"),  # this app's webhook secrets
    re.compile(r"""(?i)\b(SECRET_KEY|PSEUDONYMIZATION_KEY|PASSWORD)\s*=\s*["'][^"']{8,}["']"""),
    # credentials in a URL, other than documentation placeholders (user:pass, <password>)
    re.compile(r"://[^/\s:@<]*:(?!pass@|password@|secret@|\*+@|<|\$)[^/\s@]{4,}@"
               r"(?!db\.example)"),
]
SCANNED = ("config", "accounts", "jobs", "events", "segments", "behaviour", "experiments",
           "planner", "integrations", "audit", "security", "templates",
           "static", "Makefile", "Procfile", "pyproject.toml", "docs")


def test_no_credentials_are_committed_in_the_application():
    hits = []
    for top in SCANNED:
        base = ROOT / top
        files = [base] if base.is_file() else (
            [p for p in base.rglob("*") if p.is_file()] if base.exists() else [])
        for path in files:
            if path.suffix in {".png", ".jpg", ".parquet", ".pyc", ".gz", ".sqlite3"}:
                continue
            text = path.read_text(errors="ignore")
            for pattern in CREDENTIALS:
                for m in pattern.finditer(text):
                    hits.append(f"{path.relative_to(ROOT)}: {m.group(0)[:60]}")
    assert hits == []
