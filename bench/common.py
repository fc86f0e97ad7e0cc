"""Shared helpers for the benchmarks (stdlib only, so an orchestrating process stays small).

Every ``bench/bench_*.py`` measures our code and an anchor (the simplest thing that does the
same job with a well-known library) in the same run and prints ONE final JSON line with at least
``bench, seconds, peak_mb, anchor, anchor_seconds, ratio, target``.

Each measured phase runs in a fresh child process (``run_phase``) that does only that phase, so
its peak memory (``ru_maxrss``) is its own. The parent must stay small: on Linux a child started
with vfork/posix_spawn inherits the parent's high-water mark into its ``ru_maxrss`` at exec, so
the orchestrator never imports numpy/pandas/pyarrow and never holds data. Children also report
``VmHWM`` from /proc as a cross-check.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "data"
RESULTS = BENCH_DIR / "results.jsonl"

PHASE_FLAG = "--phase"
RESULT_PREFIX = "@@PHASE_RESULT "


@dataclass(frozen=True)
class Scale:
    name: str
    rows: int
    users: int
    repeat: int  # measured runs per phase; seconds = best, peak_mb = worst


SCALES = {
    "small": Scale("small", rows=200_000, users=20_000, repeat=3),
    "medium": Scale("medium", rows=2_000_000, users=200_000, repeat=1),
    "full": Scale("full", rows=10_000_000, users=1_000_000, repeat=1),
}


def current_scale() -> Scale:
    """``BENCH_SCALE`` (small | medium | full, default full); ``BENCH_REPEAT`` overrides repeats."""
    name = os.environ.get("BENCH_SCALE", "full").strip().lower() or "full"
    if name not in SCALES:
        raise SystemExit(f"BENCH_SCALE={name!r}: expected one of {', '.join(SCALES)}")
    scale = SCALES[name]
    if os.environ.get("BENCH_REPEAT"):
        scale = Scale(scale.name, scale.rows, scale.users, max(1, int(os.environ["BENCH_REPEAT"])))
    return scale


def log(message: str) -> None:
    """Progress goes to stderr; stdout is reserved for the final JSON line."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ----- memory --------------------------------------------------------------------------------
def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / (1024 * 1024)


def proc_status_mb(field: str) -> float | None:
    """``VmHWM`` / ``VmRSS`` from /proc/self/status in MiB (None off Linux)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def current_rss_mb() -> float:
    """Current resident memory (cheap: one read of /proc/self/statm)."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1 << 20)
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


class Stopwatch:
    """Wall seconds and CPU seconds (user + system, all threads) of this process for a block.

    CPU seconds are less sensitive than wall time to other load on the machine, but count
    every core a multi-threaded library keeps busy.
    """

    def __enter__(self) -> Stopwatch:
        self._wall = time.perf_counter()
        self._cpu = _cpu_now()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._wall
        self.cpu_seconds = _cpu_now() - self._cpu


def _cpu_now() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ----- phases in child processes -------------------------------------------------------------
def run_phase(script: Path, phase: str, *args: str, timeout: float | None = None) -> dict[str, Any]:
    """Run ``script --phase PHASE ARGS`` in a fresh interpreter; return the phase's result dict.

    The child prints its result as one line prefixed with ``RESULT_PREFIX``; anything else it
    prints (stdout or stderr) is passed through to our stderr.
    """
    cmd = [sys.executable, str(script), PHASE_FLAG, phase, *args]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "PYTHONHASHSEED": "0"}, check=False)
    result: dict[str, Any] | None = None
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX):])
        elif line.strip():
            print(line, file=sys.stderr)
    if proc.returncode != 0 or result is None:
        raise RuntimeError(f"phase {phase!r} failed (exit {proc.returncode}): {' '.join(cmd)}")
    return result


def phase_main(phases: dict[str, Callable[[list[str]], dict[str, Any]]]) -> bool:
    """In a child: if argv names a phase, run it, print its result and return True.

    A phase function does its own setup, times only its work and returns a dict with at least
    ``seconds``; peak memory is added here after it returns.
    """
    if len(sys.argv) < 3 or sys.argv[1] != PHASE_FLAG:
        return False
    name, args = sys.argv[2], sys.argv[3:]
    if name not in phases:
        raise SystemExit(f"unknown phase {name!r}; known: {', '.join(phases)}")
    result = dict(phases[name](args))
    result.setdefault("peak_mb", round(peak_rss_mb(), 1))
    hwm = proc_status_mb("VmHWM")
    if hwm is not None:
        result.setdefault("vm_hwm_mb", round(hwm, 1))
        if peak_rss_mb() > hwm + 64:
            log(f"warning: ru_maxrss {peak_rss_mb():.0f} MB > VmHWM {hwm:.0f} MB: the parent "
                "process was large when it started this phase (its peak leaks into ru_maxrss)")
    print(RESULT_PREFIX + json.dumps(result, default=str), flush=True)
    return True


def _summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = min(runs, key=lambda r: r["seconds"])
    return {
        **best,
        "peak_mb": max(r["peak_mb"] for r in runs),
        "all_seconds": [round(r["seconds"], 3) for r in runs],
        "cpu_seconds": min((r["cpu_seconds"] for r in runs if "cpu_seconds" in r), default=None),
    }


def measure(script: Path, phase: str, *args: str, repeat: int = 1) -> dict[str, Any]:
    """Run a phase ``repeat`` times (each in a fresh process): best seconds, worst peak memory."""
    return _summarize([run_phase(script, phase, *args) for _ in range(max(1, repeat))])


def measure_interleaved(script: Path, phases: dict[str, tuple[str, ...]], repeat: int = 1,
                        ) -> dict[str, dict[str, Any]]:
    """Like ``measure`` for several phases, alternating them (A B A B ...) so that load from
    other processes on the machine hits ours and the anchor alike."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in phases}
    for i in range(max(1, repeat)):
        for name, args in phases.items():
            result = run_phase(script, name, *args)
            log(f"  {name} run {i + 1}/{repeat}: {result['seconds']:.2f}s, "
                f"peak {result['peak_mb']:.0f} MB")
            runs[name].append(result)
    return {name: _summarize(r) for name, r in runs.items()}


def fingerprint(*relative: str) -> dict[str, str]:
    """Short content hashes of the measured source files (they change under concurrent edits)."""
    out = {}
    for rel in relative:
        path = ROOT / rel
        out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.exists() else "-"
    return out


# ----- the final line ------------------------------------------------------------------------
def emit(bench: str, *, seconds: float, peak_mb: float, anchor: str, anchor_seconds: float,
         target: str, passed: bool, **extra: Any) -> dict[str, Any]:
    """Print the one final JSON line (the required keys first) and return it."""
    line = {
        "bench": bench,
        "seconds": round(seconds, 3),
        "peak_mb": round(peak_mb, 1),
        "anchor": anchor,
        "anchor_seconds": round(anchor_seconds, 3),
        "ratio": round(seconds / anchor_seconds, 3) if anchor_seconds > 0 else None,
        "target": target,
        "passed": passed,
        **extra,
        "cpus": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": sys.version.split()[0],
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    print(json.dumps(line), flush=True)
    return line


def emit_vs_anchor(bench: str, ours: dict[str, Any], anchor: dict[str, Any], *, anchor_name: str,
                   target: str, passed: bool, scale: Scale, code: dict[str, str],
                   load_before: float, **extra: Any) -> dict[str, Any]:
    """``emit`` for a bench that ran ours and the anchor with ``measure_interleaved``: the
    required keys from their summaries, ``scale``, the bench's own keys, then what every such
    bench reports about the run (the anchor's peak, repeats, each run's seconds, the measured
    code's fingerprint and the load average before the run)."""
    return emit(bench, seconds=ours["seconds"], peak_mb=ours["peak_mb"], anchor=anchor_name,
                anchor_seconds=anchor["seconds"], target=target, passed=passed,
                scale=scale.name, **extra, anchor_peak_mb=anchor["peak_mb"],
                repeat=scale.repeat, seconds_runs=ours["all_seconds"],
                anchor_seconds_runs=anchor["all_seconds"], code=code,
                loadavg_1m_before=round(load_before, 2))


# ----- servers on 127.0.0.1 (the load benchmark and the soak) ---------------------------------
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    """True when something accepts connections on 127.0.0.1:``port``."""
    import socket

    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def child_pids(pid: int) -> list[int]:
    """The direct children of a process (Linux /proc; empty when it is gone)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(x) for x in handle.read().split()]
    except OSError:
        return []


def _process_status_mb(pid: int, field: str) -> float:
    """A memory field of another process's /proc status in MiB; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def process_rss_mb(pid: int) -> float:
    """Current resident memory (VmRSS) of another process in MiB; 0 when it is gone."""
    return _process_status_mb(pid, "VmRSS")


def process_hwm_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of another process in MiB; 0 when it is gone."""
    return _process_status_mb(pid, "VmHWM")


def wait_healthz(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until ``GET /healthz`` on 127.0.0.1:``port`` answers 200 (the server is ``proc``)."""
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz", headers={"Host": "127.0.0.1"})
            ok = conn.getresponse().status == 200
            conn.close()
            if ok:
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server on port {port} did not answer /healthz in {timeout:.0f}s")


def recreate_database(url: str) -> None:
    """DROP (with FORCE) and CREATE the PostgreSQL database named at the end of ``url``.

    Imports psycopg: call it from a child phase, not from an orchestrator."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    """DROP (with FORCE) the PostgreSQL database named at the end of ``url`` (child phase)."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def login_session(user: Any) -> str:
    """A logged-in Django session for ``user`` (its key is the ``sessionid`` cookie).

    Imports Django: call it from a child phase after ``django.setup()``."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def append_jsonl(path: Path, line: dict[str, Any]) -> None:
    """Append one JSON line to a results file (e.g. ``bench/soak-results.jsonl``)."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")
