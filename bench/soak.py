"""Soak (issue 16): mixed reads and writes for 10 minutes against the production shape, with
faults; did anything answer 5xx, did every job end, did memory creep? (127.0.0.1 only.)

    .venv/bin/python bench/soak.py                  # 600 s of load (SOAK_SECONDS)
    SOAK_SECONDS=90 .venv/bin/python bench/soak.py  # a short pass
    make soak                                       # the same as the first line

Not a benchmark (no anchor, not named bench_*.py, so ``make bench`` does not run it). Steps:

1. ``seed`` phase (a child process): DROP/CREATE the PostgreSQL database ``sp_soak``
   (``SOAK_DATABASE_URL``), migrate, collectstatic; a workspace, an admin user with an API token
   and a logged-in session, an empty dataset (outcome event ``upgrade``), and the demo data
   (``events.demo.generate_demo``, ``SOAK_USERS`` = 3,000 users) written as CSV files.
2. Servers, each in its own process group: a private ``redis-server`` on 127.0.0.1
   (``SOAK_REDIS_PORT`` = 6390, or a free port when that one is taken; ``--save ""
   --appendonly no``), broker ``redis://127.0.0.1:<port>/6`` purged first; gunicorn
   ``config.wsgi`` (2 workers, gthread, DEBUG=0); a Celery worker (prefork, concurrency 2, as
   the Procfile). Nobody else's Redis is touched.
3. Setup through the API with the token: the demo files imported, segments created, a refresh,
   hypotheses, investments, a scenario and an optimizer run (each job awaited).
4. Load for ``SOAK_SECONDS``: ``SOAK_CLIENTS`` reader threads (API lists and pages), one editor
   thread (investment and hypothesis edits, hypothesis transitions, council decisions) and one
   job thread (a small event file imported, a refresh or an optimizer run every
   ``SOAK_JOB_INTERVAL`` seconds). Every request has a timeout. RSS of the gunicorn workers
   and of the Celery worker (main + pool processes) is sampled every 5 s.
5. Faults, once each, both over before half time (the second half measures memory in steady
   state), each while a job runs if one starts within min(20 s, 10% of the run): at 15% of the
   run the Redis server is stopped, left down 5 s and started again (its data is lost: no
   persistence); at 25% the Celery worker's process group is killed with SIGKILL and a new
   worker is started.
6. When the load stops, wait up to ``SOAK_STUCK_SECONDS`` (120) for every job to end; the ones
   still queued or running are ``stuck``.

Final line (stdout, and appended to ``bench/soak-results.jsonl``): requests by kind and
status, ``server_errors`` (5xx, except a 503 ``broker_unavailable`` while Redis is down or up
to 15 s after it is back), jobs by kind and final state, faults, RSS samples and
``rss_growth_last_half`` (mean of the last 3 samples over the mean of the first 3 samples of
the run's second half, minus 1) for ``web`` and ``worker``; ``passed`` = 0 server errors, 0
stuck jobs, 0 failed jobs without a reason, no unexpected exit (a server that exits on its own
is started again at once, as a process manager would, and recorded with the reason from its
log), and growth < 10% for both. Exit status 1 when not passed. The servers' logs of the last
run are kept in ``bench/data/soak-last/``.

Everything started here (servers, temp folder, database) is removed on exit, Ctrl-C or failure
(``SOAK_KEEP_DB=1`` keeps the database).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # the project: events.demo

from common import (  # noqa: E402
    DATA_DIR,
    ROOT,
    append_jsonl,
    drop_database,
    free_port,
    log,
    login_session,
    phase_main,
    recreate_database,
    run_phase,
    wait_healthz,
)
from soak_support import (  # noqa: E402
    KEEP_ALIVE,
    REQUEST_TIMEOUT,
    Client,
    OwnRedis,
    Processes,
    Sampler,
    Stats,
    Supervisor,
    _percentile,
    growth_last_half,
    log_findings,
    multipart,
)

from events.demo import DEMO_SEGMENTS  # noqa: E402 - pure: no Django

SCRIPT = Path(__file__).resolve()
RESULTS = SCRIPT.parent / "soak-results.jsonl"
LOG_COPY = DATA_DIR / "soak-last"
DB_URL = os.environ.get("SOAK_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sp_soak")
SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
USERS = int(os.environ.get("SOAK_USERS", "3000"))
READERS = int(os.environ.get("SOAK_CLIENTS", "3"))
JOB_INTERVAL = float(os.environ.get("SOAK_JOB_INTERVAL", "6"))
REDIS_DB = int(os.environ.get("SOAK_REDIS_DB", "6"))
REDIS_DOWN = float(os.environ.get("SOAK_REDIS_DOWN_SECONDS", "5"))
STUCK_AFTER = float(os.environ.get("SOAK_STUCK_SECONDS", "120"))
WEB_WORKERS = 2
WEB_THREADS = int(os.environ.get("SOAK_WEB_THREADS", "4"))
WORKER_CONCURRENCY = int(os.environ.get("SOAK_WORKER_CONCURRENCY", "2"))
REDIS_AT, KILL_AT = 0.15, 0.25  # when the faults start, as shares of SOAK_SECONDS
FAULT_WAIT = min(20.0, 0.1 * SECONDS)  # how long a fault waits for a job to be running
OUTAGE_GRACE = 15.0
GROWTH_LIMIT = 0.10
SLUG = "soak"
SECRET = "soak-secret-" + "k" * 50
DEMO_EVENTS = ("session_start", "feature_used", "report_created", "invite_sent", "upgrade",
               "purchase")


def server_env(var_dir: Path, broker: str) -> dict[str, str]:
    """The environment of gunicorn, the worker and the seed: production settings (DEBUG=0)
    on a private database, folder and broker; a throttle no soak client reaches (as
    bench_load); lease and redelivery short enough that a killed job is picked up again
    within the run (the defaults, 120 s and 3600 s, outlast a 90 s soak)."""
    drop = {"ALLOW_INSECURE_KEY", "DEBUG", "CACHE_URL", "CELERY_RESULT_BACKEND", "FANOUT",
            "EVENT_STORE", "CELERY_TASK_ALWAYS_EAGER", "SEGMENT_PLANNER_FAULT"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update({
        "DEBUG": "0", "SECRET_KEY": SECRET, "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": DB_URL, "VAR_DIR": str(var_dir), "CONN_MAX_AGE": "60",
        "CELERY_BROKER_URL": broker, "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
        "API_THROTTLE_USER": "10000000/min", "API_THROTTLE_ANON": "10000000/min",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "JOB_LEASE_SECONDS": os.environ.get("SOAK_JOB_LEASE_SECONDS", "20"),
        "CELERY_VISIBILITY_TIMEOUT": os.environ.get("SOAK_VISIBILITY_TIMEOUT", "30"),
        "CELERY_RESTORE_INTERVAL": "5", "CELERY_RESTORE_THROTTLE": "5",
    })
    return env


# ----- seed (child) ----------------------------------------------------------------------------
def phase_seed(args: list[str]) -> dict[str, Any]:
    var_dir, demo_dir = Path(args[0]), Path(args[1])
    os.environ.update(server_env(var_dir, "memory://"))
    started = time.perf_counter()
    recreate_database(DB_URL)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from accounts.models import ApiToken, Membership, Workspace
    from events.demo import generate_demo, write_demo
    from events.models import Dataset

    call_command("migrate", verbosity=0, interactive=False)
    call_command("collectstatic", verbosity=0, interactive=False)
    user = User.objects.create_user("soak", password=uuid.uuid4().hex)
    workspace = Workspace.objects.create(slug=SLUG, name="Soak")
    Membership.objects.create(workspace=workspace, user=user, role="admin")
    # No API sets the outcome event; create_demo_segments sets it the same way.
    dataset = Dataset.objects.create(workspace=workspace, name="Soak events",
                                     outcome_event="upgrade")
    _, key = ApiToken.issue(user=user, name="soak")
    data = generate_demo(users=USERS, seed=7)
    paths = write_demo(data, demo_dir)
    return {"seconds": time.perf_counter() - started, "token": key,
            "session": login_session(user), "dataset": dataset.pk,
            "events": len(data.events), "users": len(data.users),
            "events_file": str(paths["events"]), "users_file": str(paths["users"])}


def phase_drop(args: list[str]) -> dict[str, Any]:
    drop_database(DB_URL)
    return {"seconds": 0.0}


# ----- setup through the API -------------------------------------------------------------------
# The demo's own segments (events.demo, pure), less two the soak does not need.
SEGMENTS: list[dict[str, Any]] = [
    seg for seg in DEMO_SEGMENTS if seg["name"] not in ("Mobile users", "At risk (RFM)")]
HYPOTHESES = [  # statement, segment, lift, (low, high)
    ("Early report creators upgrade more when nudged to share a report",
     "Early report creators", 0.15, (0.05, 0.25)),
    ("Team-plan accounts expand with admin analytics", "Team plan", 0.08, (0.02, 0.14)),
    ("An onboarding checklist lifts web activation", "Web users", 0.10, (0.06, 0.14)),
]
INVESTMENTS = [  # title, roadmap, cost, effort, segment, hypothesis index, extra
    ("Share-a-report flow", "core", 6000, {"growth": 2, "web": 1}, "Early report creators", 0,
     {}),
    ("Admin analytics dashboard", "core", 13000, {"platform": 3, "web": 2}, "Team plan", 1,
     {"value_basis": "predicted_clv"}),
    ("Onboarding checklist v2 (web)", "core", 4500, {"growth": 1, "web": 1}, "Web users", 2, {}),
    ("Co-branded partner templates", "experimental", 3000, {"growth": 1}, "Partner channel",
     None, {"assumed_lift": 0.04}),
    ("Champions referral programme", "core", 7500, {"growth": 2}, "Champions (RFM)", None,
     {"assumed_lift": 0.06}),
    ("SSO for enterprise pilots", "niche", 2500, {"platform": 1}, "Team plan", None,
     {"assumed_lift": 0.03}),
    ("Pricing page redesign A", "core", 3500, {"web": 1}, "Free plan", None,
     {"assumed_lift": 0.05, "exclusion_group": "pricing page"}),
    ("Pricing page redesign B", "core", 5500, {"web": 2}, "Free plan", None,
     {"assumed_lift": 0.07, "exclusion_group": "pricing page"}),
    ("Pro plan annual billing", "experimental", 2000, {"web": 1}, "Pro plan", None,
     {"assumed_lift": 0.02}),
    ("Faster report exports", "niche", 4000, {"platform": 1, "web": 1}, "Pro plan", None,
     {"assumed_lift": 0.03}),
]
QUARTERS = ["2027Q1", "2027Q2", "2027Q3", "2027Q4"]


class World:
    """What the load knows about the workspace: ids made in setup, jobs it started."""

    def __init__(self, seed: dict[str, Any]) -> None:
        self.dataset: int = seed["dataset"]
        self.segments: list[int] = []
        self.hypotheses: list[int] = []
        self.investments: list[int] = []
        self.scenario: int = 0
        self.lock = threading.Lock()
        self.jobs: dict[int, str] = {}  # job id -> what started it
        self.job_starts: Counter[str] = Counter()  # "import new" / "import reused" ...
        self.imports = 0

    def job_started(self, kind: str, job_id: int | None) -> None:
        """A start answered with job ``job_id``: a new job, or one an identical start made."""
        if job_id is None:
            return
        with self.lock:
            self.job_starts[f"{kind} {'reused' if job_id in self.jobs else 'new'}"] += 1
            self.jobs.setdefault(job_id, kind)


def _check(status: int | None, data: Any, expected: tuple[int, ...], what: str) -> Any:
    if status not in expected:
        raise RuntimeError(f"setup: {what} answered {status}: {str(data)[:500]}")
    return data


def wait_job(client: Client, job_id: int, what: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, job = client.call("setup:job", "GET", f"/api/v1/jobs/{job_id}/")
        if status == 200 and job["state"] in ("succeeded", "failed"):
            if job["state"] != "succeeded":
                raise RuntimeError(f"setup: {what} job {job_id} failed: {job['error'][:500]}")
            return job
        time.sleep(0.5)
    raise RuntimeError(f"setup: {what} job {job_id} did not finish in {timeout:.0f}s")


def setup_workspace(client: Client, world: World, seed: dict[str, Any]) -> None:
    events = Path(seed["events_file"]).read_bytes()
    users = Path(seed["users_file"]).read_bytes()
    form = multipart({"dataset": str(world.dataset)},
                     {"events": ("events.csv", events), "users": ("users.csv", users)})
    status, record = client.call("setup:import", "POST", "/api/v1/imports/", form=form)
    _check(status, record, (202,), "the demo import")
    world.job_started("import", record["job"]["id"])
    wait_job(client, record["job"]["id"], "the demo import")
    log(f"setup: imported {seed['events']:,} events of {seed['users']:,} users")

    names: dict[str, int] = {}
    for spec in SEGMENTS:
        status, seg = client.call("setup:segment", "POST", "/api/v1/segments/", body={
            "dataset": world.dataset, "name": spec["name"], "kind": spec.get("kind", "rule"),
            "definition": spec["definition"]})
        names[spec["name"]] = _check(status, seg, (201,), f"segment {spec['name']}")["id"]
    world.segments = list(names.values())
    status, job = client.call("setup:refresh", "POST", "/api/v1/refreshes/",
                              body={"dataset": world.dataset})
    _check(status, job, (202,), "the first refresh")
    world.job_started("refresh", job["id"])
    wait_job(client, job["id"], "the first refresh")

    for statement, segment, lift, (low, high) in HYPOTHESES:
        status, hyp = client.call("setup:hypothesis", "POST", "/api/v1/hypotheses/", body={
            "workspace": SLUG, "statement": statement, "metric": "ltv_90",
            "mechanism": "soak", "expected_lift": lift, "expected_lift_low": low,
            "expected_lift_high": high, "segments": [names[segment]]})
        world.hypotheses.append(_check(status, hyp, (201,), "a hypothesis")["id"])
    for title, roadmap, cost, effort, segment, hyp_index, extra in INVESTMENTS:
        body = {"workspace": SLUG, "title": title, "roadmap": roadmap, "cost": cost,
                "effort": effort, "target_segments": [names[segment]], "adoption": 0.3,
                "hypotheses": [] if hyp_index is None else [world.hypotheses[hyp_index]],
                **extra}
        status, inv = client.call("setup:investment", "POST", "/api/v1/investments/", body=body)
        world.investments.append(_check(status, inv, (201,), f"investment {title}")["id"])
    capacity = {f"{team}|{q}": cap for q in QUARTERS
                for team, cap in {"growth": 2, "web": 2, "platform": 1}.items()}
    status, scenario = client.call("setup:scenario", "POST", "/api/v1/scenarios/", body={
        "workspace": SLUG, "name": "Soak plan", "budget": 30000, "capacity": capacity,
        "quarters": QUARTERS, "schedule": True, "robust_draws": 50, "frontier_points": 5})
    world.scenario = _check(status, scenario, (201,), "the scenario")["id"]
    status, run = client.call("setup:optimize", "POST", f"/api/v1/scenarios/{world.scenario}/run/")
    _check(status, run, (202,), "the first optimizer run")
    world.job_started("optimize", run["job"])
    wait_job(client, run["job"], "the first optimizer run")
    log(f"setup: {len(world.segments)} segments refreshed, {len(world.hypotheses)} hypotheses, "
        f"{len(world.investments)} investments, scenario {world.scenario} optimized")


# ----- the load --------------------------------------------------------------------------------
def event_file(seq: int) -> bytes:
    """A small, distinct events CSV: ~60-150 rows for existing users in October 2026, and now
    and then a row with a bad timestamp (the quality report counts it)."""
    rng = random.Random(seq * 7919 + int(time.time()))
    width = max(6, len(str(USERS - 1)))
    base = int(datetime(2026, 10, 1, tzinfo=UTC).timestamp())
    lines = ["user_id,event,timestamp,revenue"]
    for _ in range(rng.randrange(60, 150)):
        event = rng.choice(DEMO_EVENTS)
        at = datetime.fromtimestamp(base + rng.randrange(30 * 86400), UTC)
        revenue = str(rng.choice((29.0, 99.0))) if event == "purchase" else ""
        lines.append(f"u{rng.randrange(USERS):0{width}d},{event},"
                     f"{at.strftime('%Y-%m-%dT%H:%M:%SZ')},{revenue}")
    if seq % 4 == 0:
        lines.append(f"u{0:0{width}d},session_start,not-a-time,")
    return ("\n".join(lines) + "\n").encode()


def reader(client: Client, world: World, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    w = f"/w/{SLUG}"
    reads: list[tuple[str, int, Any]] = [
        ("read:investments", 3, lambda: "/api/v1/investments/?page_size=50"),
        ("read:segments", 2, lambda: "/api/v1/segments/"),
        ("read:snapshots", 2, lambda: rng.choice(
            ["/api/v1/snapshots/?page_size=50",
             f"/api/v1/snapshots/?segment={rng.choice(world.segments)}"])),
        ("read:runs", 1, lambda: "/api/v1/runs/?page_size=20"),
        ("read:jobs", 2, lambda: "/api/v1/jobs/?page_size=50"),
        ("read:hypotheses", 1, lambda: "/api/v1/hypotheses/"),
        ("page:backlog", 2, lambda: f"{w}/backlog/"),
        ("page:segments", 2, lambda: f"{w}/segments/"),
        ("page:segment", 2, lambda: f"{w}/segments/{rng.choice(world.segments)}/"),
        ("page:dashboard", 2, lambda: f"{w}/"),
    ]
    weights = [weight for _, weight, _ in reads]
    while not stop.is_set():
        kind, _, path = rng.choices(reads, weights=weights)[0]
        try:
            client.call(kind, "GET", path(), page=kind.startswith("page:"))
        except Exception as exc:  # noqa: BLE001 - a bug here must not end the soak
            client.stats.script_error(kind, exc)
        stop.wait(rng.uniform(0.05, 0.25))


def edit_investment(client: Client, world: World, rng: random.Random) -> None:
    client.call("write:investment", "PATCH",
                f"/api/v1/investments/{rng.choice(world.investments)}/",
                body={"cost": rng.randrange(1500, 15000),
                      "confidence": round(rng.uniform(0.3, 0.9), 2)})


def edit_hypothesis(client: Client, world: World, rng: random.Random) -> None:
    lift = round(rng.uniform(0.03, 0.2), 3)
    client.call("write:hypothesis", "PATCH",
                f"/api/v1/hypotheses/{rng.choice(world.hypotheses)}/",
                body={"expected_lift": lift, "expected_lift_low": round(lift / 2, 3),
                      "expected_lift_high": round(lift * 1.5, 3)})


def transition_hypothesis(client: Client, world: World, rng: random.Random) -> None:
    pk = rng.choice(world.hypotheses)
    status, hyp = client.call("read:hypothesis", "GET", f"/api/v1/hypotheses/{pk}/")
    if status != 200:
        return
    to = {"proposed": "prioritized", "prioritized": "proposed"}.get(hyp["status"])
    if to:
        client.call("write:transition", "POST", f"/api/v1/hypotheses/{pk}/transition/",
                    body={"status": to, "note": "soak"})


def decide(client: Client, world: World, rng: random.Random) -> None:
    status, runs = client.call("read:runs", "GET", "/api/v1/runs/?page_size=10")
    if status != 200:
        return
    done = [r for r in runs["results"] if r["finished_at"] and r["status"] != "failed"]
    if not done:
        return
    run = done[0]["id"]
    status, allocations = client.call("read:allocations", "GET",
                                      f"/api/v1/runs/{run}/allocations/?page_size=50")
    if status != 200 or not allocations["results"]:
        return
    item = rng.choice(allocations["results"])
    client.call("write:decide", "POST", f"/api/v1/runs/{run}/decide/", body={
        "investment": item["investment"], "verdict": rng.choice(["approve", "defer", "reject"]),
        "rationale": f"soak decision on {item['title']}"})


def editor(client: Client, world: World, stop: threading.Event) -> None:
    rng = random.Random(11)
    actions = [(edit_investment, 4), (edit_hypothesis, 2), (transition_hypothesis, 1),
               (decide, 2)]
    while not stop.is_set():
        action = rng.choices([a for a, _ in actions], weights=[w for _, w in actions])[0]
        try:
            action(client, world, rng)
        except Exception as exc:  # noqa: BLE001
            client.stats.script_error(action.__name__, exc)
        stop.wait(rng.uniform(0.5, 1.5))


def start_job(client: Client, world: World, which: str) -> None:
    if which == "import":
        world.imports += 1
        form = multipart({"dataset": str(world.dataset)},
                         {"events": (f"soak-{world.imports}.csv", event_file(world.imports))})
        status, data = client.call("write:import", "POST", "/api/v1/imports/", form=form)
        if status in (200, 202):
            world.job_started("import", data["job"]["id"] if data.get("job") else None)
    elif which == "refresh":
        status, data = client.call("write:refresh", "POST", "/api/v1/refreshes/",
                                   body={"dataset": world.dataset})
        if status == 202:
            world.job_started("refresh", data["id"])
    else:
        status, data = client.call("write:optimize", "POST",
                                   f"/api/v1/scenarios/{world.scenario}/run/")
        if status == 202:
            world.job_started("optimize", data["job"])


def jobs_loop(client: Client, world: World, stop: threading.Event) -> None:
    cycle = ["import", "refresh", "optimize"]
    n = 0
    while not stop.is_set():
        try:
            start_job(client, world, cycle[n % len(cycle)])
        except Exception as exc:  # noqa: BLE001
            client.stats.script_error(f"start {cycle[n % len(cycle)]}", exc)
        n += 1
        stop.wait(JOB_INTERVAL)


# ----- faults ----------------------------------------------------------------------------------
def jobs_in_states(client: Client, *states: str) -> list[int]:
    ids: list[int] = []
    for state in states:
        status, data = client.call("probe:jobs", "GET",
                                   f"/api/v1/jobs/?state={state}&page_size=500")
        if status == 200:
            ids += [j["id"] for j in data["results"]]
    return ids


def wait_for_running(client: Client) -> list[int]:
    """Ids of running jobs, as soon as one runs (at most FAULT_WAIT seconds; maybe none).
    Jobs take 0.3-2 s here: the caller strikes right away, before it asks anything else."""
    deadline = time.monotonic() + FAULT_WAIT
    running = jobs_in_states(client, "running")
    while time.monotonic() < deadline and not running:
        time.sleep(0.1)
        running = jobs_in_states(client, "running")
    return running


def restart_redis(redis: OwnRedis, client: Client, stats: Stats) -> dict[str, Any]:
    """Stop our redis-server while a job runs (its message unacknowledged, as in a busy
    deployment), leave it down REDIS_DOWN seconds, start it again (empty: no persistence)."""
    running = wait_for_running(client)
    stopped_at = stats.now()
    redis.stop()
    queued = jobs_in_states(client, "queued")  # the database still answers
    log(f"FAULT: redis (port {redis.port}) stopped; jobs running {running}, queued {queued}")
    time.sleep(REDIS_DOWN)
    redis.start()
    up_at = stats.now()
    log(f"FAULT: redis back after {up_at - stopped_at:.1f}s")
    return {"stopped_at": stopped_at, "up_at": up_at, "jobs_running_at_stop": running,
            "jobs_queued_at_stop": queued}


def kill_worker(procs: Processes, start_worker: Any, client: Client, stats: Stats,
                ) -> dict[str, Any]:
    running = wait_for_running(client)
    old = procs.get("worker")
    old_pid = old.pid if old else None
    killed_at = stats.now()
    procs.kill("worker")
    log(f"FAULT: worker {old_pid} killed with SIGKILL (running jobs {running}); starting another")
    new = start_worker()
    return {"killed_at": killed_at, "old_pid": old_pid, "new_pid": new.pid,
            "jobs_running_at_kill": running}


# ----- the end ---------------------------------------------------------------------------------
def drain(client: Client, supervisor: Supervisor) -> tuple[list[int], float]:
    """Wait until no job is queued or running, at most STUCK_AFTER seconds."""
    started = time.monotonic()
    waiting = jobs_in_states(client, "queued", "running")
    while waiting and time.monotonic() - started < STUCK_AFTER:
        time.sleep(2)
        supervisor.check()
        waiting = jobs_in_states(client, "queued", "running")
    return waiting, round(time.monotonic() - started, 1)


def all_jobs(client: Client) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    page = 1
    while True:
        status, data = client.call("probe:jobs", "GET", f"/api/v1/jobs/?page_size=500&page={page}")
        if status != 200:
            raise RuntimeError(f"listing jobs answered {status}: {str(data)[:300]}")
        jobs += data["results"]
        if not data.get("next"):
            return jobs
        page += 1


def summarize_jobs(jobs: list[dict[str, Any]], world: World, stuck: list[int],
                   drain_seconds: float) -> dict[str, Any]:
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    reasons: Counter[str] = Counter()
    no_reason = []
    for job in jobs:
        by_kind[job["kind"]][job["state"]] += 1
        if job["state"] == "failed":
            reason = (job["error"] or "").strip().splitlines()
            if reason:
                reasons[reason[0][:140]] += 1
            else:
                no_reason.append(job["id"])
    stuck_jobs = [{k: j[k] for k in ("id", "kind", "state", "attempts", "message", "created_at",
                                     "started_at", "heartbeat_at")}
                  for j in jobs if j["id"] in set(stuck)]
    return {"total": len(jobs), "started_by_soak": len(world.jobs),
            "starts": dict(world.job_starts),
            "by_kind": {k: dict(v) for k, v in sorted(by_kind.items())},
            "failed_reasons": dict(reasons.most_common(10)),
            "failed_without_reason": len(no_reason), "failed_without_reason_ids": no_reason[:10],
            "stuck": len(stuck), "stuck_jobs": stuck_jobs[:10], "drain_seconds": drain_seconds,
            # delivered more than once (a killed worker's job, taken again after its lease)
            "attempts_over_1": {str(j["id"]): j["attempts"] for j in jobs if j["attempts"] > 1}}


def result_line(*, stats: Stats, world: World, sampler: Sampler, faults: dict[str, Any],
                jobs: dict[str, Any], exits: list[dict[str, Any]], findings: dict[str, Any], load_seconds: float,
                setup_seconds: float, seed: dict[str, Any], redis_port: int,
                load_before: float) -> dict[str, Any]:
    outages = [(faults["redis_restart"]["stopped_at"] - 2,
                faults["redis_restart"]["up_at"] + OUTAGE_GRACE)] \
        if "redis_restart" in faults else []
    expected_503 = [e for e in stats.broker_503 if any(a <= e["t"] <= b for a, b in outages)]
    unexpected_503 = [e for e in stats.broker_503 if e not in expected_503]
    server_errors = stats.server_errors + unexpected_503
    web = growth_last_half(sampler.samples, "web_mb", load_seconds)
    worker = growth_last_half(sampler.samples, "worker_mb", load_seconds)
    passed = (not server_errors and jobs["stuck"] == 0 and jobs["failed_without_reason"] == 0
              and not exits and web is not None and web < GROWTH_LIMIT
              and worker is not None and worker < GROWTH_LIMIT)
    load_kinds = {k: v for k, v in stats.counts.items() if not k.startswith(("setup:", "probe:"))}
    total = sum(sum(c.values()) for c in load_kinds.values())

    def series(key: str) -> dict[str, Any]:
        values = [s[key] for s in sampler.samples]
        return {"first": values[0] if values else None,
                "mid": next((s[key] for s in sampler.samples if s["t"] >= load_seconds / 2), None),
                "last": values[-1] if values else None, "max": max(values, default=None)}

    return {
        "bench": "soak", "passed": passed, "seconds": round(load_seconds, 1),
        "planned_seconds": SECONDS,
        "server_errors": len(server_errors),
        "server_error_samples": server_errors[:5],
        "stuck": jobs["stuck"],
        "unexpected_exits": len(exits), "unexpected_exit_details": exits[:5],
        "rss_growth_last_half": {"web": web, "worker": worker},
        "requests_total": total, "req_s": round(total / load_seconds, 1) if load_seconds else 0,
        "requests": {k: dict(sorted(v.items())) for k, v in sorted(stats.counts.items())},
        "latency_ms": {k: {"p50": round(_percentile(v, 0.5) * 1000, 1),
                           "p99": round(_percentile(v, 0.99) * 1000, 1),
                           "max": round(max(v) * 1000, 1)}
                       for k, v in sorted(stats.latency.items()) if k in load_kinds},
        "expected": {"broker_503_during_outage": len(expected_503),
                     "throttled_429": stats.throttled},
        "client_errors": len(stats.client_errors),
        "client_error_samples": stats.client_errors[:5],
        "transport_errors": len(stats.transport_errors),
        "transport_error_samples": stats.transport_errors[:5],
        "script_errors": stats.script_errors[:5],
        "jobs": jobs,
        "faults": faults,
        "rss_mb": {"web": series("web_mb"), "worker": series("worker_mb"),
                   "web_worker_pids_seen": len(sampler.web_pids)},
        "rss_samples": {"t": [s["t"] for s in sampler.samples],
                        "web_mb": [s["web_mb"] for s in sampler.samples],
                        "worker_mb": [s["worker_mb"] for s in sampler.samples]},
        "logs": findings,
        "setup_seconds": round(setup_seconds, 1),
        "dataset": {"users": seed["users"], "events": seed["events"],
                    "imports_during_soak": world.imports},
        "shape": {"gunicorn": f"{WEB_WORKERS} workers x {WEB_THREADS} threads gthread",
                  "celery": f"prefork x {WORKER_CONCURRENCY}", "readers": READERS,
                  "job_interval_s": JOB_INTERVAL, "redis_port": redis_port,
                  "redis_db": REDIS_DB, "database": DB_URL.rsplit("/", 1)[1]},
        "cpus": os.cpu_count(), "loadavg_1m_before": round(load_before, 2),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "python": sys.version.split()[0],
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


# ----- orchestration ---------------------------------------------------------------------------
def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def soak(tmp: Path, procs: Processes, stop: threading.Event) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    var_dir, log_dir = tmp / "var", tmp / "logs"
    var_dir.mkdir()
    (tmp / "redis").mkdir()
    started = time.monotonic()
    log(f"seed: database {DB_URL.rsplit('/', 1)[1]}, demo data of {USERS:,} users")
    seed = run_phase(SCRIPT, "seed", str(var_dir), str(tmp / "demo"), timeout=900)
    log(f"seed: {seed['seconds']:.1f}s")

    redis = OwnRedis(procs, tmp / "redis")
    redis.start()
    redis.purge(REDIS_DB)
    broker = f"redis://127.0.0.1:{redis.port}/{REDIS_DB}"
    env = server_env(var_dir, broker)
    port = free_port()
    log(f"redis-server on 127.0.0.1:{redis.port} (db {REDIS_DB}); gunicorn {WEB_WORKERS} "
        f"workers x {WEB_THREADS} threads on 127.0.0.1:{port}; celery prefork x "
        f"{WORKER_CONCURRENCY}")

    def start_web() -> subprocess.Popen:
        return procs.start("gunicorn", [
            sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
            "--workers", str(WEB_WORKERS), "--threads", str(WEB_THREADS),
            "--worker-class", "gthread", "--timeout", "60", "--keep-alive", str(KEEP_ALIVE),
            "--log-level", "warning"], env, "gunicorn.log")

    web = start_web()
    generation = [0]

    def start_worker() -> subprocess.Popen:
        generation[0] += 1
        n = generation[0]
        return procs.start("worker", [
            sys.executable, "-m", "celery", "-A", "config", "worker",
            "--concurrency", str(WORKER_CONCURRENCY), "--loglevel", "INFO",
            "--without-gossip", "--without-mingle", "-n", f"soak{n}@%h"], env, f"worker-{n}.log")

    start_worker()
    wait_healthz(port, web)

    stats = Stats()
    supervisor = Supervisor(procs, {"gunicorn": start_web, "worker": start_worker,
                                    "redis": redis.start}, stats)
    client = Client(port, stats, seed["token"], seed["session"])
    world = World(seed)
    setup_workspace(client, world, seed)
    setup_seconds = time.monotonic() - started

    log(f"load: {SECONDS:.0f}s, {READERS} readers + 1 editor + 1 job starter "
        f"(a job every {JOB_INTERVAL:.0f}s)")
    stats.t0 = time.monotonic()
    sampler = Sampler(procs, stats)
    threads = [threading.Thread(target=sampler.run, args=(stop,), daemon=True, name="sampler")]
    threads += [threading.Thread(target=reader, args=(client, world, stop, n), daemon=True,
                                 name=f"reader-{n}") for n in range(READERS)]
    threads += [threading.Thread(target=editor, args=(client, world, stop), daemon=True,
                                 name="editor"),
                threading.Thread(target=jobs_loop, args=(client, world, stop), daemon=True,
                                 name="jobs")]
    for thread in threads:
        thread.start()
    faults: dict[str, Any] = {}
    # Both faults end well before half time: the second half measures memory in steady state.
    schedule = [(REDIS_AT * SECONDS, "redis_restart"), (KILL_AT * SECONDS, "worker_kill")]
    next_report = 30.0
    while (elapsed := time.monotonic() - stats.t0) < SECONDS:
        supervisor.check()
        if schedule and elapsed >= schedule[0][0]:
            _, fault = schedule.pop(0)
            if fault == "redis_restart":
                faults[fault] = restart_redis(redis, client, stats)
            else:
                faults[fault] = kill_worker(procs, start_worker, client, stats)
            continue
        if elapsed >= next_report:
            last = sampler.samples[-1] if sampler.samples else {}
            log(f"  {elapsed:5.0f}s: {stats.total()} requests, {len(stats.server_errors)} 5xx, "
                f"{len(stats.broker_503)} broker 503, {len(world.jobs)} jobs started; RSS web "
                f"{last.get('web_mb')} MB, worker {last.get('worker_mb')} MB")
            next_report += 30
        time.sleep(0.2)
    stop.set()
    load_seconds = time.monotonic() - stats.t0
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT + 5)
    log(f"load stopped after {load_seconds:.1f}s; waiting up to {STUCK_AFTER:.0f}s for the jobs")
    stuck, drain_seconds = drain(client, supervisor)
    jobs = summarize_jobs(all_jobs(client), world, stuck, drain_seconds)
    faults["servers_alive_at_end"] = {name: procs.get(name) is not None
                                      and procs.get(name).poll() is None
                                      for name in ("gunicorn", "worker", "redis")}
    procs.stop_all()  # flush and close the logs before reading them
    findings = log_findings(log_dir)
    return result_line(stats=stats, world=world, sampler=sampler, faults=faults, jobs=jobs,
                       exits=supervisor.exits,
                       findings=findings, load_seconds=load_seconds,
                       setup_seconds=setup_seconds, seed=seed, redis_port=redis.port,
                       load_before=load_before)


def keep_logs(log_dir: Path) -> None:
    if not log_dir.is_dir():
        return
    shutil.rmtree(LOG_COPY, ignore_errors=True)
    LOG_COPY.mkdir(parents=True, exist_ok=True)
    for path in log_dir.glob("*.log"):
        shutil.copy2(path, LOG_COPY / path.name)


def main() -> int:
    # Ctrl-C, a kill or a closed terminal: clean up (a shell may start us with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    tmp = Path(tempfile.mkdtemp(prefix="sp-soak-"))
    (tmp / "logs").mkdir()
    procs = Processes(tmp / "logs")
    stop = threading.Event()
    line: dict[str, Any] | None = None
    code = 1
    try:
        line = soak(tmp, procs, stop)
        code = 0 if line["passed"] else 1
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        code = 130
    except Exception as exc:  # noqa: BLE001 - report, clean up, exit 1
        log(f"soak failed: {exc!r}")
        line = {"bench": "soak", "passed": False, "error": repr(exc)[:1000],
                "planned_seconds": SECONDS,
                "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    finally:
        stop.set()
        procs.stop_all()
        keep_logs(tmp / "logs")
        if os.environ.get("SOAK_KEEP_DB") != "1":
            try:
                run_phase(SCRIPT, "drop", timeout=120)
            except Exception as exc:  # noqa: BLE001
                log(f"dropping the database: {exc!r}")
        shutil.rmtree(tmp, ignore_errors=True)
        log(f"cleaned up (servers stopped, {tmp} removed); logs in {LOG_COPY}")
    if line is not None:
        print(json.dumps(line), flush=True)
        append_jsonl(RESULTS, line)
    return code


if __name__ == "__main__":
    if not phase_main({"seed": phase_seed, "drop": phase_drop}):
        sys.exit(main())
