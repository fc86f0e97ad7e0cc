"""Run every bench/bench_*.py, each as its own subprocess, and collect their final JSON lines.

    .venv/bin/python bench/run_all.py                      # full scale (make bench)
    BENCH_SCALE=small .venv/bin/python bench/run_all.py    # quick pass
    .venv/bin/python bench/run_all.py import               # only bench_import.py
    .venv/bin/python bench/run_all.py catalog              # only bench_catalog.py (item 7)
    .venv/bin/python bench/run_all.py voi                  # only bench_voi.py (value of information)
    .venv/bin/python bench/run_all.py scale                # the 100M-user fan-out run (hours;
                                                           # skipped unless named)

Each benchmark's last stdout line (one JSON object) is appended to bench/results.jsonl and
printed. Progress of the benchmarks goes to stderr. Exit status 1 when a benchmark crashes,
prints no valid final line or lacks a required key; a missed target is reported, not an error
(pass --strict to make it one).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BENCH_DIR, RESULTS, ROOT  # noqa: E402

REQUIRED_KEYS = ("bench", "seconds", "peak_mb", "anchor", "anchor_seconds", "ratio", "target")


def discover(names: list[str]) -> list[Path]:
    scripts = sorted(BENCH_DIR.glob("bench_*.py"))
    if names:
        wanted = {n.removeprefix("bench_").removesuffix(".py") for n in names}
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in wanted]
        missing = wanted - {s.stem.removeprefix("bench_") for s in scripts}
        if missing:
            raise SystemExit(f"no benchmark named {', '.join(sorted(missing))}")
    return scripts


def run_one(script: Path, timeout: float) -> dict | None:
    print(f"== {script.name} (BENCH_SCALE={os.environ.get('BENCH_SCALE', 'full')})",
          file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        print(f"!! {script.name}: timed out after {timeout:.0f}s", file=sys.stderr)
        return None
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    for line in lines[:-1]:
        print(line, file=sys.stderr)
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict):
        print(f"!! {script.name}: exit {proc.returncode}, no JSON final line", file=sys.stderr)
        return None
    missing = [k for k in REQUIRED_KEYS if k not in result]
    if missing:
        print(f"!! {script.name}: final line lacks {', '.join(missing)}", file=sys.stderr)
        return None
    with open(RESULTS, "a") as handle:
        handle.write(json.dumps(result) + "\n")
    if proc.returncode != 0:
        print(f"!! {script.name}: exit {proc.returncode} (result recorded)", file=sys.stderr)
        result["_failed"] = True
    print(f"== {script.name}: {time.perf_counter() - started:.0f}s wall", file=sys.stderr)
    return result


def main(argv: list[str]) -> int:
    strict = "--strict" in argv
    names = [a for a in argv if not a.startswith("--")]
    timeout = float(os.environ.get("BENCH_TIMEOUT", "3600"))
    scripts = discover(names)
    # Benchmarks too long for every run (bench_scale) run in full only when named.
    os.environ["BENCH_ONLY"] = ",".join(n.removeprefix("bench_").removesuffix(".py")
                                        for n in names)
    if not scripts:
        print("no bench/bench_*.py found", file=sys.stderr)
        return 1
    errors = misses = 0
    printed: list[str] = []
    for script in scripts:
        result = run_one(script, timeout)
        if result is None or result.pop("_failed", False):
            errors += 1
            if result is None:
                continue
        if result.get("passed") is False:
            misses += 1
        printed.append(json.dumps(result))
    print(f"== {len(scripts)} benchmark(s), {errors} error(s), {misses} missed target(s); "
          f"results appended to {RESULTS.relative_to(ROOT)}", file=sys.stderr)
    for line in printed:
        print(line)
    return 1 if errors or (strict and misses) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
