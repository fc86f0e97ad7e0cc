"""pytest plugin (loaded with -p before pytest-django reads settings): local test defaults."""

from __future__ import annotations

import os

os.environ.setdefault("ALLOW_INSECURE_KEY", "1")
os.environ.setdefault("DEBUG", "1")
