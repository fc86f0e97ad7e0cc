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
        # Behaviour discovery proposes exploratory hypotheses through this app.
        from behaviour import services as behaviour_services

        behaviour_services.HYPOTHESIS_PROPOSERS.append(
            experiment_services.hypothesis_from_behaviour)
        # A segment refresh changes reach and value per user: re-value the investments.
        segment_services.AFTER_REFRESH.append(
            lambda workspace: services.workspace_revalue(workspace=workspace,
                                                         reason="segment refresh"))
