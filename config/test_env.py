"""pytest plugin (loaded with -p before pytest-django reads settings): test defaults.

Worker tests talk to a real broker: Redis when reachable (CELERY_TEST_BROKER_URL, default
redis://127.0.0.1:6379/15). Every other test runs its tasks eagerly (tests/conftest.py).
"""

from __future__ import annotations

import os
import socket

os.environ.setdefault("ALLOW_INSECURE_KEY", "1")
os.environ.setdefault("DEBUG", "1")
# The suite fires far more requests a minute than a client would; tests/security sets its own.
os.environ.setdefault("API_THROTTLE_USER", "1000000/min")
os.environ.setdefault("API_THROTTLE_ANON", "1000000/min")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


if "CELERY_BROKER_URL" not in os.environ and _reachable("127.0.0.1", 6379):
    os.environ["CELERY_BROKER_URL"] = os.environ.get("CELERY_TEST_BROKER_URL",
                                                     "redis://127.0.0.1:6379/15")
