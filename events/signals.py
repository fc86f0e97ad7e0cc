"""What the events app tells the apps above it (they subscribe; events imports none of them)."""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

log = logging.getLogger(__name__)

# Sent once an import has published a new dataset version: keyword arguments ``import_id``,
# ``dataset_id`` and ``version``. Segments subscribes (refresh after each import, a workspace
# setting), and behaviour (re-read the saved insights). Subscribers only queue jobs.
import_succeeded = Signal()


def send_import_succeeded(*, import_id: int, dataset_id: int, version: int) -> None:
    """Tell the subscribers; a failing subscriber is logged and never fails the import."""
    from .models import Import

    for receiver, result in import_succeeded.send_robust(
            sender=Import, import_id=import_id, dataset_id=dataset_id, version=version):
        if isinstance(result, Exception):
            log.error("after import %s: %r failed: %s", import_id, receiver, result,
                      exc_info=(type(result), result, result.__traceback__))


__all__: list[Any] = ["import_succeeded", "send_import_succeeded"]
