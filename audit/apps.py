from __future__ import annotations

from django.apps import AppConfig


class AuditConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "audit"
    verbose_name = "Audit history"

    def ready(self) -> None:
        from . import signals

        signals.connect()
        from . import recorder

        recorder.register_erasure_hook()
