from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_production_settings_pass_check_deploy():
    env = {k: v for k, v in os.environ.items()
           if k not in {"DEBUG", "ALLOW_INSECURE_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update({"DEBUG": "0", "SECRET_KEY": "x" * 20 + "a-long-random-production-key-0987654321!",
                "ALLOWED_HOSTS": "planner.example.com"})
    out = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in os.environ.items()
           if k not in {"DEBUG", "ALLOW_INSECURE_KEY", "SECRET_KEY"}}
    env["DEBUG"] = "0"
    out = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "SECRET_KEY must be set" in out.stderr
