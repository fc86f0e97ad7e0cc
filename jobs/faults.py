"""Fault injection for the crash tests: a named point where a worker can be killed on purpose.

Set ``SEGMENT_PLANNER_FAULT=<point>:<marker file>`` in a worker's environment: the first time
the worker reaches ``fault_point("<point>")`` it writes the marker and kills itself with
SIGKILL (as a lost machine would), so a test can check that the redelivered job finishes
exactly once. Without the variable a fault point does nothing.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

FAULT_ENV = "SEGMENT_PLANNER_FAULT"


def fault_point(name: str) -> None:
    """SIGKILL this process once, if the environment asks for a fault at ``name``."""
    spec = os.environ.get(FAULT_ENV, "")
    if not spec.startswith(name + ":"):
        return
    marker = Path(spec.split(":", 1)[1])
    if marker.exists():
        return
    marker.write_text("fired")
    os.kill(os.getpid(), signal.SIGKILL)
