from __future__ import annotations

from django.apps import AppConfig


class BehaviourConfig(AppConfig):
    name = "behaviour"
    verbose_name = "Behaviour analyses"

    def ready(self) -> None:
        from . import fanout_services, services  # services registers the "behaviour" job kind

        fanout_services.register()
        services.register_erasure_hook()
