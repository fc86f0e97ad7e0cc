from __future__ import annotations

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit history"

    def ready(self) -> None:
        from . import signals

        signals.connect()
        from . import recorder

        recorder.register_erasure_hook()
