from __future__ import annotations

from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Events and datasets"

    def ready(self) -> None:
        # The job kinds this app runs: imports and erasures (registered on import).
        from . import privacy_services, services  # noqa: F401
