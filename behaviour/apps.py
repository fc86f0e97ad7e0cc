from __future__ import annotations

from django.apps import AppConfig


class BehaviourConfig(AppConfig):
    name = "behaviour"
    verbose_name = "Behaviour analyses"

    def ready(self) -> None:
        from . import fanout_services, insights, job_labels, services  # register the job kinds

        fanout_services.register()
        job_labels.register()
        insights.register()
        services.register_erasure_hook()
