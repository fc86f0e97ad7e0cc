"""An ordered map over a few threads, for numpy work that releases the GIL. Pure.

The analytic kernels spend their time in numpy scatters, gathers, sorts and reductions, which
run without the GIL; two independent pieces (two store partitions placed into one frame, two
segments of a refresh) then use both cores of a small machine. Results come back in the
items' order and do not depend on which thread ran what.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

#: Threads for the per-process analytic work; ``SP_ANALYTIC_THREADS`` overrides (1 = none).
DEFAULT_THREADS = max(1, min(2, os.cpu_count() or 1))


def analytic_threads() -> int:
    value = os.environ.get("SP_ANALYTIC_THREADS", "")
    return max(1, int(value)) if value.strip().isdigit() else DEFAULT_THREADS


def map_in_threads[T](fn: Callable[[Any], T], items: Iterable[Any],
                      workers: int | None = None) -> list[T]:
    """``[fn(item) for item in items]`` on ``workers`` threads (default ``analytic_threads``),
    in order. At most ``workers`` items are taken ahead of the results (an item may be a
    partition held in memory until it is used). The first exception is raised."""
    workers = analytic_threads() if workers is None else workers
    if workers <= 1:
        return [fn(item) for item in items]
    results: list[T] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Any] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= workers:
                results.append(pending.popleft().result())
        results.extend(f.result() for f in pending)
    return results
