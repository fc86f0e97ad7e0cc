"""The production shape end to end: gunicorn (2 workers) + PostgreSQL + a Celery worker on Redis.

Production-like settings (DEBUG=0, a real SECRET_KEY, ALLOWED_HOSTS=127.0.0.1, collected static
files served by WhiteNoise). Runs in the PostgreSQL + Redis pass; skipped elsewhere.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from accounts.models import ApiToken
from planner.models import Investment, Scenario

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_url() -> str:
    s = connection.settings_dict
    return (f"postgres://{s.get('USER') or 'postgres'}@{s.get('HOST') or '127.0.0.1'}:"
            f"{s.get('PORT') or 5432}/{s['NAME']}")


@pytest.fixture
def production_env(tmp_path):  # type: ignore[no-untyped-def]
    if connection.vendor != "postgresql":
        pytest.skip("the deployment test needs PostgreSQL (DATABASE_URL=postgres://...)")
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("the deployment test needs Redis (CELERY_BROKER_URL=redis://...)")
    from config.celery import app

    app.control.purge()
    env = {k: v for k, v in os.environ.items() if k not in {"ALLOW_INSECURE_KEY", "DEBUG"}}
    env.update({
        "DEBUG": "0",
        "SECRET_KEY": "deploy-test-" + "k" * 50,
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": _pg_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "VAR_DIR": str(tmp_path / "var"),
        "EVENT_STORE": settings.EVENT_STORE,
        "PYTHONUNBUFFERED": "1",
    })
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
                   cwd=ROOT, env=env, check=True, timeout=120)
    return env


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = open(log, "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Client:
    def __init__(self, port: int, token: str = "") -> None:
        self.port, self.token = port, token

    def request(self, method: str, path: str, body: dict | None = None,
                ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        # TLS ends at the reverse proxy, which says so (SECURE_PROXY_SSL_HEADER).
        headers = {"Host": "127.0.0.1", "X-Forwarded-Proto": "https"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            res = conn.getresponse()
            return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
        finally:
            conn.close()

    def json(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        status, _, raw = self.request(method, path, body)
        return status, json.loads(raw or b"{}")


def _wait_up(client: Client, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"gunicorn exited: {log.read_text()[-2000:]}")
        try:
            if client.request("GET", "/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"gunicorn did not answer /healthz: {log.read_text()[-2000:]}")


def test_gunicorn_postgres_redis_worker_run_a_job_end_to_end(production_env, tmp_path, team):
    ws = team["acme"]
    for i, (cost, value) in enumerate([(60, 200.0), (20, 40.0), (50, 180.0)]):
        Investment.objects.create(workspace=ws, title=f"inv {i}", cost=cost,
                                  roadmap="experimental" if i == 1 else "core",
                                  expected_value=value, value_low=value / 2, value_high=value * 2)
    scenario = Scenario.objects.create(workspace=ws, name="deploy", budget=100, frontier_points=0)
    _, key = ApiToken.issue(user=team["analyst"], name="deploy test")

    port = _free_port()
    web_log, worker_log = tmp_path / "gunicorn.log", tmp_path / "worker.log"
    web = _start([sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
                  "--workers", "2", "--threads", "2", "--worker-class", "gthread",
                  "--timeout", "30"], production_env, web_log)
    worker = _start([sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
                     "--without-gossip", "--without-mingle", "--without-heartbeat",
                     "-n", "deploy@%h", "--loglevel=INFO"], production_env, worker_log)
    try:
        anonymous, client = Client(port), Client(port, key)
        _wait_up(anonymous, web, web_log)

        # Production settings: authentication required, security headers on every response.
        status, headers, _ = anonymous.request("GET", "/api/v1/jobs/")
        assert status in (401, 403)
        status, headers, _ = anonymous.request("GET", "/accounts/login/")
        assert status == 200
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["strict-transport-security"].startswith("max-age=31536000")
        assert "referrer-policy" in headers and "cross-origin-opener-policy" in headers
        # Plain HTTP (no proxy header) is redirected to HTTPS, except the health check.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/accounts/login/", headers={"Host": "127.0.0.1"})
        assert conn.getresponse().status == 301
        conn.close()
        # A host not in ALLOWED_HOSTS is refused.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/healthz", headers={"Host": "evil.example"})
        assert conn.getresponse().status == 400
        conn.close()

        # Static files: collected and served by WhiteNoise with a long cache lifetime.
        status, headers, body = anonymous.request("GET", "/static/app.css")
        assert status == 200 and body == (ROOT / "static" / "app.css").read_bytes()
        assert headers["content-type"].startswith("text/css")
        assert "max-age" in headers.get("cache-control", "")

        # The API token logs in; the optimizer runs on the worker; the job tells the truth.
        status, me = client.json("GET", "/api/v1/jobs/")
        assert status == 200, me
        status, run = client.json("POST", f"/api/v1/scenarios/{scenario.pk}/run/")
        assert status == 202, run
        deadline, job = time.monotonic() + 45, {}
        while time.monotonic() < deadline:
            status, job = client.json("GET", f"/api/v1/jobs/{run['job']}/")
            assert status == 200, job
            if job["state"] in ("succeeded", "failed"):
                break
            time.sleep(0.3)
        assert job.get("state") == "succeeded", (job, worker_log.read_text()[-3000:])
        status, run = client.json("GET", f"/api/v1/runs/{run['id']}/")
        assert status == 200 and run["status"] == "optimal", run
        # Two gunicorn workers served all of this (master + 2 children).
        assert "Booting worker" in web_log.read_text()
    finally:
        _stop(web)
        _stop(worker)
