"""Benchmark: gunicorn + PostgreSQL under concurrent clients (issue 8, Load; 127.0.0.1 only).

Requirement: the ranked backlog (10k investments), the API backlog list, the segment list and a
segment page under concurrent clients for 60 s. Print requests/s, p50/p99 and errors per
endpoint. Target on a 2-core machine: 0 errors; backlog page of 100 at >= 300 req/s with p99
under 100 ms.

    .venv/bin/python bench/bench_load.py              # full: 60 s of load (15 s per endpoint)
    BENCH_SCALE=small .venv/bin/python bench/bench_load.py   # 10 s of load, same data
    BENCH_LOAD_SECONDS=20 BENCH_LOAD_CLIENTS=8 BENCH_WEB_WORKERS=4 ...   # overrides

Steps (the orchestrator imports only the standard library):

1. ``seed`` phase (child): drop and create the PostgreSQL database ``segment_planner_bench``
   (``BENCH_DATABASE_URL``), migrate, ``collectstatic``, then bulk-create one workspace with
   10,000 investments (value fields set: expected value and interval, reach, effort, RICE/ICE
   inputs; each with a target segment and a hypothesis), 30 segments with 10 snapshots each, a
   user and a logged-in session (its cookie is what the clients send).
2. gunicorn (``config.wsgi``, gthread, ``BENCH_WEB_WORKERS`` = 2 x cores workers x
   ``BENCH_WEB_THREADS`` = 2 threads, DEBUG=0, ``CONN_MAX_AGE=60``) on a free 127.0.0.1 port.
   Requests carry ``X-Forwarded-Proto: https`` as a TLS-terminating proxy would.
3. ``drive`` phase (child): ``BENCH_LOAD_CLIENTS`` threads, each with one keep-alive
   ``http.client`` connection, hammer one endpoint at a time for its share of the duration:
   the anchor ``/healthz`` (a trivial view: one ``SELECT 1``), the backlog page (100 rows),
   ``/api/v1/investments/?page_size=100``, the segment list, one segment page. A warm-up of
   1 s per endpoint precedes each measured window. Any non-200 or socket error counts as an
   error.

Final line: ``seconds`` = the measured load duration (all endpoints), ``peak_mb`` = the sum of
the gunicorn processes' peak RSS (VmHWM), ``anchor_seconds`` = 1 / (anchor requests/s), and
``ratio`` = (1 / backlog page req/s) / anchor_seconds = anchor req/s / backlog req/s: what one
backlog page costs in trivial requests on the same server (lower is better).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    ROOT,
    child_pids,
    emit,
    fingerprint,
    free_port,
    log,
    phase_main,
    process_hwm_mb,
    run_phase,
)

SCRIPT = Path(__file__).resolve()
DB_URL = os.environ.get("BENCH_DATABASE_URL",
                        "postgres://postgres@127.0.0.1:5432/segment_planner_bench")
VAR = Path(os.environ.get("BENCH_VAR_DIR", "/tmp/segment-planner-bench-load"))
INVESTMENTS = int(os.environ.get("BENCH_INVESTMENTS", "10000"))
SEGMENTS, SNAPSHOTS = 30, 10
SECRET = "bench-load-secret-key-" + "x" * 40
TARGET = "0 errors; backlog page of 100 at >= 300 req/s with p99 < 100 ms"
TARGETS = {"api_backlog": ">= 300 req/s, p99 < 100 ms", "segment_list": ">= 300 req/s",
           "segment_page": ">= 200 req/s"}
MEASURED_CODE = ("planner/views.py", "planner/selectors.py", "templates/planner/backlog.html",
                 "planner/api/views.py", "segments/segment_views.py", "segments/selectors.py",
                 "planner/api_cache.py", "segments/page_cache.py")


def server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"ALLOW_INSECURE_KEY", "DEBUG"}}
    env.update({"DEBUG": "0", "SECRET_KEY": SECRET, "ALLOWED_HOSTS": "127.0.0.1",
                "DATABASE_URL": DB_URL, "VAR_DIR": str(VAR), "CONN_MAX_AGE": "60",
                "CELERY_BROKER_URL": "memory://", "LOG_LEVEL": "WARNING",
                # One user drives the API at full speed: measure throughput, not the throttle.
                "API_THROTTLE_USER": "10000000/min", "API_THROTTLE_ANON": "10000000/min",
                "DJANGO_SETTINGS_MODULE": "config.settings"})
    return env


# ----- seed (child) ----------------------------------------------------------------------------
def phase_seed(args: list[str]) -> dict[str, Any]:
    os.environ.update(server_env())
    import psycopg

    name = DB_URL.rsplit("/", 1)[1]
    admin_url = DB_URL.rsplit("/", 1)[0] + "/postgres"
    started = time.perf_counter()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from datetime import timedelta

    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.utils import timezone

    from accounts.models import Membership, Workspace
    from events.models import Dataset
    from experiments.models import Hypothesis
    from planner.models import Investment
    from segments.models import Refresh, Segment, SegmentSnapshot

    call_command("migrate", verbosity=0, interactive=False)
    call_command("collectstatic", verbosity=0, interactive=False)
    user = User.objects.create_user("bench", password="bench-pass-2026")
    ws = Workspace.objects.create(slug="bench", name="Bench")
    Membership.objects.create(workspace=ws, user=user, role="analyst")
    dataset = Dataset.objects.create(workspace=ws, name="events")
    segments = Segment.objects.bulk_create([
        Segment(workspace=ws, dataset=dataset, name=f"Segment {i:02d}", owner=user,
                definition={"all": [{"attr": "plan", "op": "eq", "value": f"p{i}"},
                                    {"event": "purchase", "min_count": 1, "last_days": 30}]})
        for i in range(SEGMENTS)])
    hypotheses = Hypothesis.objects.bulk_create([
        Hypothesis(workspace=ws, statement=f"hypothesis {i}", expected_lift=0.1,
                   expected_lift_low=0.05, expected_lift_high=0.2, owner=user)
        for i in range(20)])
    now = timezone.now()
    for r in range(SNAPSHOTS):
        at = now - timedelta(days=SNAPSHOTS - r)
        refresh = Refresh.objects.create(workspace=ws, dataset=dataset, dataset_version=r + 1,
                                         as_of=at, finished_at=at, baseline={})
        SegmentSnapshot.objects.bulk_create([
            SegmentSnapshot(
                workspace=ws, segment=s, refresh=refresh, dataset_version=r + 1, computed_at=at,
                size=1000 + 37 * i + r, share=0.01 * (i + 1),
                signals={name: {"estimate": 10.0 + i + r, "low": 8.0 + i, "high": 12.0 + i + r,
                                "n": 1000}
                         for name in ("ltv_30", "ltv_90", "conversion", "retention_d7",
                                      "revenue_per_active_user")},
                retention={"d1": 0.5, "d7": 0.3, "d30": 0.1},
                drift={"values": {"ltv_90": {"relative_change": 0.05, "significant": r % 2 == 0}}},
                warnings=["small sample"] if i % 7 == 0 else [])
            for i, s in enumerate(segments)])
    roadmaps = ["core", "core", "core", "experimental", "exploratory"]
    investments = Investment.objects.bulk_create([
        Investment(workspace=ws, title=f"Investment {i:05d}", roadmap=roadmaps[i % 5],
                   cost=1000 + (i * 7919) % 50000, effort={"web": 1 + i % 5},
                   owner=user, status="proposed", adoption=0.2, impact=1 + i % 3,
                   confidence=0.3 + (i % 7) / 10, ease=1 + i % 10,
                   expected_value=5000 + (i * 104729) % 400000,
                   value_low=1000 + (i * 104729) % 200000,
                   value_high=10000 + (i * 104729) % 800000, reach_users=100 + i % 5000,
                   effort_total=1 + i % 5, value_computed_at=now,
                   value_sources={"reach": {"source": f"segment {i % SEGMENTS}",
                                            "stale": i % 11 == 0},
                                  "value_per_user": {"source": "ltv_90"},
                                  "lift": {"source": "hypothesis"}})
        for i in range(INVESTMENTS)], batch_size=2000)
    seg_through = Investment.target_segments.through
    hyp_through = Investment.hypotheses.through
    seg_through.objects.bulk_create([
        seg_through(investment_id=inv.pk, segment_id=segments[n % SEGMENTS].pk)
        for n, inv in enumerate(investments)], batch_size=5000)
    hyp_through.objects.bulk_create([
        hyp_through(investment_id=inv.pk, hypothesis_id=hypotheses[n % 20].pk)
        for n, inv in enumerate(investments)], batch_size=5000)
    from django.db import connection

    with connection.cursor() as cursor:
        # VACUUM too: the visibility map lets the stamps count from the index alone, as
        # autovacuum would have it in a database that has been up for a minute.
        cursor.execute("VACUUM ANALYZE")
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return {"seconds": time.perf_counter() - started, "session": session.session_key,
            "workspace": ws.slug, "segment": segments[0].pk, "investments": len(investments)}


def phase_drop(args: list[str]) -> dict[str, Any]:
    import psycopg

    name = DB_URL.rsplit("/", 1)[1]
    with psycopg.connect(DB_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return {"seconds": 0.0}


# ----- drive (child, stdlib only) --------------------------------------------------------------
def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _hammer(port: int, path: str, cookie: str, clients: int, seconds: float,
            ) -> dict[str, Any]:
    import http.client

    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    samples: dict[str, str] = {}
    stop_at = time.perf_counter() + seconds
    headers = {"Host": "127.0.0.1", "X-Forwarded-Proto": "https", "Cookie": cookie,
               "Accept": "text/html,application/json"}

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                break
            try:
                conn.request("GET", path, headers=headers)
                res = conn.getresponse()
                body = res.read()
                t1 = time.perf_counter()
                if res.status != 200:
                    errors[n] += 1
                    samples.setdefault(str(res.status), body[:300].decode(errors="replace"))
                else:
                    latencies[n].append(t1 - t0)
                if res.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            except (OSError, http.client.HTTPException) as exc:
                errors[n] += 1
                samples.setdefault(type(exc).__name__, str(exc)[:300])
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    flat = [x for per in latencies for x in per]
    return {"requests": len(flat), "errors": sum(errors), "seconds": round(elapsed, 3),
            "req_s": round(len(flat) / elapsed, 1) if elapsed else 0.0,
            "p50_ms": round(_percentile(flat, 0.50) * 1000, 1),
            "p99_ms": round(_percentile(flat, 0.99) * 1000, 1),
            "max_ms": round(max(flat, default=float("nan")) * 1000, 1),
            "error_samples": samples}


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes (all their threads), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / tick


def phase_drive(args: list[str]) -> dict[str, Any]:
    port, cookie, endpoints_json, window, clients = (int(args[0]), args[1], args[2],
                                                     float(args[3]), int(args[4]))
    server_pids = [int(p) for p in args[5].split(",")] if len(args) > 5 and args[5] else []
    endpoints: dict[str, str] = json.loads(endpoints_json)
    results = {}
    started = time.perf_counter()
    measured = 0.0
    for name, path in endpoints.items():
        _hammer(port, path, cookie, clients, 1.0)  # warm-up: connections, caches, plans
        cpu_before = _cpu_seconds(server_pids)
        results[name] = _hammer(port, path, cookie, clients, window)
        r = results[name]
        # What one request costs the web server in CPU: steadier than req/s on a shared
        # machine (PostgreSQL's share is not in it).
        r["server_cpu_ms"] = round((_cpu_seconds(server_pids) - cpu_before) * 1000
                                   / max(1, r["requests"] + r["errors"]), 3)
        measured += r["seconds"]
        log(f"  {name:14s} {r['req_s']:7.1f} req/s  p50 {r['p50_ms']:6.1f} ms  "
            f"p99 {r['p99_ms']:6.1f} ms  errors {r['errors']}  "
            f"server CPU {r['server_cpu_ms']:.2f} ms/req  ({path})")
    return {"seconds": measured, "wall_seconds": time.perf_counter() - started,
            "endpoints": results}


# ----- orchestration ---------------------------------------------------------------------------
def _wait_ready(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz", headers={"Host": "127.0.0.1"})
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not become ready")


def main() -> None:
    scale = os.environ.get("BENCH_SCALE", "full").strip().lower() or "full"
    total = float(os.environ.get("BENCH_LOAD_SECONDS", "10" if scale == "small" else "60"))
    clients = int(os.environ.get("BENCH_LOAD_CLIENTS", "8"))
    cores = os.cpu_count() or 2
    workers = int(os.environ.get("BENCH_WEB_WORKERS", str(2 * cores)))
    threads = int(os.environ.get("BENCH_WEB_THREADS", "2"))
    code = fingerprint(*MEASURED_CODE)
    load_before = os.getloadavg()[0]

    log(f"seed: database {DB_URL.rsplit('/', 1)[1]}, {INVESTMENTS:,} investments, "
        f"{SEGMENTS} segments x {SNAPSHOTS} snapshots")
    seed = run_phase(SCRIPT, "seed", timeout=900)
    log(f"seed: {seed['seconds']:.1f}s")
    slug, seg = seed["workspace"], seed["segment"]
    measured = {
        "backlog_page": f"/w/{slug}/backlog/",
        "api_backlog": "/api/v1/investments/?page_size=100",
        "segment_list": f"/w/{slug}/segments/",
        "segment_page": f"/w/{slug}/segments/{seg}/",
    }
    endpoints = {"anchor_healthz": "/healthz", **measured}
    window = total / len(measured)

    port = free_port()
    log(f"gunicorn: {workers} workers x {threads} threads (gthread) on 127.0.0.1:{port}; "
        f"{clients} keep-alive clients; {window:.1f}s per endpoint")
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
         "--keep-alive", "30", "--timeout", "60", "--log-level", "warning"],
        cwd=ROOT, env=server_env(), start_new_session=True)
    try:
        _wait_ready(port, web)
        server = ",".join(str(p) for p in [web.pid, *child_pids(web.pid)])
        drive = run_phase(SCRIPT, "drive", str(port), f"sessionid={seed['session']}",
                          json.dumps(endpoints), str(window), str(clients), server,
                          timeout=total * 3 + 120)
        pids = [web.pid, *child_pids(web.pid)]
        peak_mb = sum(process_hwm_mb(p) for p in pids)
    finally:
        web.send_signal(signal.SIGTERM)
        try:
            web.wait(timeout=30)
        except subprocess.TimeoutExpired:
            web.kill()
            web.wait()
    if os.environ.get("BENCH_KEEP_DB") != "1":
        run_phase(SCRIPT, "drop")

    res = drive["endpoints"]
    anchor = res["anchor_healthz"]
    backlog = res["backlog_page"]
    errors = sum(r["errors"] for r in res.values())
    for name, r in res.items():
        if r["error_samples"]:
            log(f"errors on {name}: {r['error_samples']}")
    passed = errors == 0 and backlog["req_s"] >= 300 and backlog["p99_ms"] < 100
    # Issue 17, item 3: the API list, the segment list and a segment page too.
    api, seg_list, seg_page = res["api_backlog"], res["segment_list"], res["segment_page"]
    targets_met = {
        "backlog_page": passed,
        "api_backlog": api["errors"] == 0 and api["req_s"] >= 300 and api["p99_ms"] < 100,
        "segment_list": seg_list["errors"] == 0 and seg_list["req_s"] >= 300,
        "segment_page": seg_page["errors"] == 0 and seg_page["req_s"] >= 200,
    }
    anchor_s = 1 / anchor["req_s"] if anchor["req_s"] else float("inf")
    backlog_s = 1 / backlog["req_s"] if backlog["req_s"] else float("inf")
    extra: dict[str, Any] = {}
    if fingerprint(*MEASURED_CODE) != code:
        extra["code_changed_during_run"] = True
    emit("load", seconds=sum(r["seconds"] for n, r in res.items() if n in measured),
         peak_mb=peak_mb, anchor="GET /healthz (trivial view, one SELECT 1) on the same gunicorn",
         anchor_seconds=anchor_s, target=TARGET, passed=passed,
         ratio=round(backlog_s / anchor_s, 3),
         scale=scale, investments=seed["investments"], errors=errors,
         backlog_req_s=backlog["req_s"], backlog_p50_ms=backlog["p50_ms"],
         backlog_p99_ms=backlog["p99_ms"],
         endpoints={n: {k: r[k] for k in ("req_s", "p50_ms", "p99_ms", "max_ms", "requests",
                                          "errors", "server_cpu_ms")} for n, r in res.items()},
         gunicorn={"workers": workers, "threads": threads, "worker_class": "gthread"},
         targets_met=targets_met, targets=TARGETS, clients=clients,
         loadavg_1m_before=round(load_before, 2), code=code, **extra)


if __name__ == "__main__":
    if not phase_main({"seed": phase_seed, "drive": phase_drive, "drop": phase_drop}):
        main()
