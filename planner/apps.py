from __future__ import annotations

from django.apps import AppConfig


class PlannerConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "planner"
    verbose_name = "Planner"

    def ready(self) -> None:
        from segments import segment_services

        from . import experiment_services, page_cache, services  # noqa: F401 - handlers, signals

        experiment_services.register_erasure_hook()
        # A segment refresh changes reach and value per user: re-value the investments.
        segment_services.AFTER_REFRESH.append(
            lambda workspace: services.workspace_revalue(workspace=workspace,
                                                         reason="segment refresh"))
