from __future__ import annotations

from django.apps import AppConfig


class PlannerConfig(AppConfig):
    name = "planner"
    verbose_name = "Planner"

    def ready(self) -> None:
        from experiments import services as experiment_services
        from segments import segment_services

        from . import page_cache, services  # noqa: F401 - the optimizer job kind, cache signals

        # A segment refresh changes reach and value per user: re-value the investments.
        segment_services.AFTER_REFRESH.append(
            lambda workspace: services.workspace_revalue(workspace=workspace,
                                                         reason="segment refresh"))
        # A hypothesis's edit, status change or concluded experiment moves the value of the
        # investments resting on it: re-value them (in the writing transaction).
        experiment_services.HYPOTHESIS_CHANGED.append(services.revalue_hypothesis_investments)
