"""bench/soak.py's machinery: the processes it starts and supervises (its own Redis, the
web and worker servers), the HTTP client that counts what it saw, the memory sampler and the
log reader."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    ROOT,
    child_pids,
    free_port,
    log,
    port_in_use,
    process_rss_mb,
)

REDIS_PORT = int(os.environ.get("SOAK_REDIS_PORT", "6390"))
REQUEST_TIMEOUT = float(os.environ.get("SOAK_REQUEST_TIMEOUT", "30"))
SAMPLE_EVERY = 5.0
KEEP_ALIVE = 30  # gunicorn --keep-alive
IDLE_REUSE = KEEP_ALIVE / 2  # a client connection idle longer than this is not reused


# ----- processes -------------------------------------------------------------------------------
class Processes:
    """Every server this script starts, each in its own session (process group), so a stop or
    a kill reaches its children (gunicorn's and Celery's workers) and Ctrl-C reaches only us."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Any] = {}

    def start(self, name: str, cmd: list[str], env: dict[str, str] | None,
              log_name: str) -> subprocess.Popen:
        handle = open(self.log_dir / log_name, "ab")  # noqa: SIM115 - closed in _forget
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs[name], self.logs[name] = proc, handle
        return proc

    def get(self, name: str) -> subprocess.Popen | None:
        return self.procs.get(name)

    def log_path(self, name: str) -> Path | None:
        handle = self.logs.get(name)
        return Path(handle.name) if handle is not None else None

    @staticmethod
    def _signal_group(proc: subprocess.Popen, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)  # its own session: the group id is its pid

    def stop(self, name: str, timeout: float = 20) -> None:
        """SIGTERM to the group, SIGKILL after ``timeout``; the group's stragglers too."""
        proc = self.procs.get(name)
        if proc is None:
            return
        self._signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"{name} did not stop in {timeout:.0f}s: SIGKILL")
        self._signal_group(proc, signal.SIGKILL)
        proc.wait()
        self._forget(name)

    def kill(self, name: str) -> None:
        """SIGKILL the whole group at once (a lost machine, the OOM killer)."""
        proc = self.procs.get(name)
        if proc is None:
            return
        self._signal_group(proc, signal.SIGKILL)
        proc.wait()
        self._forget(name)

    def _forget(self, name: str) -> None:
        self.procs.pop(name, None)
        handle = self.logs.pop(name, None)
        if handle is not None:
            handle.close()

    def stop_all(self) -> None:
        for name in reversed(list(self.procs)):
            try:
                self.stop(name)
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                log(f"stopping {name}: {exc!r}")


def redis_command(port: int, *args: str, timeout: float = 2) -> str:
    """One Redis command over RESP (stdlib); the first reply line, e.g. ``+PONG``."""
    payload = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply.decode(errors="replace").strip()


class OwnRedis:
    """A redis-server of our own on a private port (no persistence), so restarting it harms
    nobody else's broker, cache or tests."""

    def __init__(self, procs: Processes, folder: Path) -> None:
        self.procs, self.folder = procs, folder
        self.port = REDIS_PORT if not port_in_use(REDIS_PORT) else free_port()
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.procs.start("redis", ["redis-server", "--port", str(self.port), "--bind",
                                   "127.0.0.1", "--save", "", "--appendonly", "no",
                                   "--dir", str(self.folder), "--daemonize", "no"],
                         None, "redis.log")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            proc = self.procs.get("redis")
            if proc is None or proc.poll() is not None:
                raise RuntimeError(f"redis-server exited (see {self.folder}/../logs/redis.log)")
            try:
                if redis_command(self.port, "PING") == "+PONG":
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING")

    def purge(self, db: int) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(f"*2\r\n$6\r\nSELECT\r\n${len(str(db))}\r\n{db}\r\n"
                         "*1\r\n$7\r\nFLUSHDB\r\n".encode())
            reply = b""
            while reply.count(b"\r\n") < 2:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
        if reply.split() != [b"+OK", b"+OK"]:
            raise RuntimeError(f"purging redis db {db}: {reply!r}")

    def stop(self) -> None:
        self.procs.stop("redis", timeout=10)


class Supervisor:
    """What a process manager (systemd ``Restart=always``, a platform's dyno manager) does for
    the Procfile's processes: a server that exits on its own is started again. Each such exit
    is recorded (time, exit status, the log's last CRITICAL/ERROR line): the soak does not pass
    with one."""

    def __init__(self, procs: Processes, starters: dict[str, Any], stats: Stats) -> None:
        self.procs, self.starters, self.stats = procs, starters, stats
        self.exits: list[dict[str, Any]] = []

    def check(self) -> None:
        for name, start in self.starters.items():
            proc = self.procs.get(name)
            if proc is None or proc.poll() is None:
                continue
            path = self.procs.log_path(name)
            reason = ""
            if path is not None and path.exists():
                lines = path.read_text(errors="replace").splitlines()
                marked = ([ln for ln in lines if "CRITICAL" in ln]
                          or [ln for ln in lines if "ERROR/" in ln or " ERROR " in ln]
                          or lines[-1:])
                reason = marked[-1] if marked else ""
            exit_ = {"t": self.stats.now(), "process": name, "pid": proc.pid,
                     "returncode": proc.returncode, "log": path.name if path else None,
                     "reason": reason[:400]}
            self.exits.append(exit_)
            log(f"UNEXPECTED EXIT of {name} {proc.pid} (status {proc.returncode}): "
                f"{reason[:300]}; starting it again")
            self.procs.kill(name)  # reap it and any of its group left behind
            start()


# ----- HTTP clients and what they saw ----------------------------------------------------------
class Stats:
    """Every request's kind, status and latency; the 5xx and the surprises, with samples."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.server_errors: list[dict[str, Any]] = []
        self.broker_503: list[dict[str, Any]] = []
        self.client_errors: list[dict[str, Any]] = []
        self.transport_errors: list[dict[str, Any]] = []
        self.script_errors: list[str] = []
        self.throttled = 0

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 2)

    def record(self, kind: str, method: str, path: str, status: int, body: bytes,
               seconds: float) -> None:
        entry = {"t": self.now(), "kind": kind, "method": method, "path": path,
                 "status": status, "body": body[:400].decode(errors="replace")}
        with self.lock:
            self.counts[kind][str(status)] += 1
            self.latency[kind].append(seconds)
            if status == 503 and _json_code(body) == "broker_unavailable":
                self.broker_503.append(entry)
            elif status >= 500:
                self.server_errors.append(entry)
                if len(self.server_errors) <= 5:
                    log(f"SERVER ERROR {status} {method} {path}: {entry['body'][:200]}")
            elif status == 429:
                self.throttled += 1
            elif status >= 400:
                self.client_errors.append(entry)

    def transport(self, kind: str, method: str, path: str, exc: BaseException) -> None:
        with self.lock:
            self.counts[kind][type(exc).__name__] += 1
            self.transport_errors.append({"t": self.now(), "kind": kind, "method": method,
                                          "path": path, "error": repr(exc)[:300]})

    def script_error(self, where: str, exc: BaseException) -> None:
        with self.lock:
            self.script_errors.append(f"{where}: {exc!r}"[:300])
        log(f"script error in {where}: {exc!r}")

    def total(self) -> int:
        with self.lock:
            return sum(sum(c.values()) for c in self.counts.values())


def _json_code(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data.get("code") if isinstance(data, dict) else None


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = "soak-" + uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
             f"{value}\r\n".encode() for name, value in fields.items()]
    for name, (filename, data) in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                     f'filename="{filename}"\r\nContent-Type: text/csv\r\n\r\n'.encode()
                     + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class Client:
    """Keep-alive ``http.client`` connections to 127.0.0.1 (one per thread), as a TLS proxy
    would forward them; the API with the bearer token, pages with the session cookie."""

    def __init__(self, port: int, stats: Stats, token: str, session: str) -> None:
        self.port, self.stats = port, stats
        self.api_headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.page_headers = {"Cookie": f"sessionid={session}", "Accept": "text/html"}
        self.local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is not None and time.monotonic() - self.local.used_at > IDLE_REUSE:
            self._drop()  # gunicorn closes idle keep-alive connections after 30 s
            conn = None
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
            self.local.conn = conn
        self.local.used_at = time.monotonic()
        return conn

    def _drop(self) -> None:
        conn = getattr(self.local, "conn", None)
        if conn is not None:
            conn.close()
        self.local.conn = None

    def call(self, kind: str, method: str, path: str, *, body: Any = None,
             form: tuple[bytes, str] | None = None, page: bool = False) -> tuple[int | None, Any]:
        """(status, parsed JSON or raw bytes); (None, None) on a socket error or timeout."""
        headers = {"Host": "127.0.0.1", "X-Forwarded-Proto": "https",
                   **(self.page_headers if page else self.api_headers)}
        data = None
        if form is not None:
            data, headers["Content-Type"] = form
        elif body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        started = time.perf_counter()
        try:
            conn = self._conn()
            conn.request(method, path, body=data, headers=headers)
            res = conn.getresponse()
            raw = res.read()
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            self.stats.transport(kind, method, path, exc)
            return None, None
        self.stats.record(kind, method, path, res.status, raw, time.perf_counter() - started)
        if res.will_close:
            self._drop()
        if (res.getheader("Content-Type") or "").startswith("application/json"):
            try:
                return res.status, json.loads(raw)
            except ValueError:
                return res.status, raw
        return res.status, raw


# ----- memory ----------------------------------------------------------------------------------
class Sampler:
    """RSS of the gunicorn workers (not the master) and of the Celery worker (main process and
    its pool), every 5 s while the load runs."""

    def __init__(self, procs: Processes, stats: Stats) -> None:
        self.procs, self.stats = procs, stats
        self.samples: list[dict[str, Any]] = []
        self.web_pids: set[int] = set()

    def sample(self) -> None:
        web = self.procs.get("gunicorn")
        worker = self.procs.get("worker")
        web_pids = child_pids(web.pid) if web else []
        self.web_pids.update(web_pids)
        worker_pids = ([worker.pid, *child_pids(worker.pid)] if worker else [])
        self.samples.append({
            "t": self.stats.now(),
            "web_mb": round(sum(process_rss_mb(p) for p in web_pids), 1),
            "worker_mb": round(sum(process_rss_mb(p) for p in worker_pids), 1),
            "worker_pid": worker.pid if worker else None,
        })

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.sample()
            stop.wait(SAMPLE_EVERY)


def growth_last_half(samples: list[dict[str, Any]], key: str, duration: float) -> float | None:
    """Mean of the last 3 samples over the mean of the first 3 samples of the second half,
    minus 1 (one sample is noisy; three are 15 s)."""
    half = [s[key] for s in samples if s["t"] >= duration / 2]
    if len(half) < 4:
        return None
    start = statistics.fmean(half[:3])
    end = statistics.fmean(half[-3:])
    return round(end / start - 1, 4) if start else None


def log_findings(log_dir: Path) -> dict[str, Any]:
    """Count tracebacks and worker timeouts in the servers' logs; print the first few."""
    found: dict[str, Any] = {}
    for path in sorted(log_dir.glob("*.log")):
        text = path.read_text(errors="replace")
        lines = text.splitlines()
        blocks = [i for i, line in enumerate(lines) if line.startswith("Traceback")]
        found[path.stem] = {"tracebacks": len(blocks),
                            "error_lines": sum(" ERROR" in ln or ln.startswith("ERROR")
                                               or "Internal Server Error" in ln for ln in lines),
                            "worker_timeouts": text.count("WORKER TIMEOUT")}
        for i in blocks[:3]:
            start = max(0, i - 2)
            end = i + 1
            while end < len(lines) and end - i < 60 and (lines[end].startswith((" ", "\t"))
                                                         or not lines[end].strip()
                                                         or end == i + 1):
                end += 1
            log(f"{path.name}: traceback at line {i + 1}:\n" + "\n".join(
                lines[start:min(len(lines), end + 1)]))
    return found


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")
