from __future__ import annotations

from django.apps import AppConfig


class PlannerConfig(AppConfig):
    name = "planner"
    verbose_name = "Planner"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save, pre_delete

        from accounts.models import Workspace
        from experiments import services as experiment_services
        from experiments.models import Hypothesis
        from segments import segment_services
        from segments.models import Segment

        from . import changes, page_cache, services  # noqa: F401 - the optimizer job kind, cache signals
        from .models import Investment, ValueModel

        # Every write to an investment counts in its workspace's BacklogVersion (the API list
        # cache's stamp); bulk update() calls count themselves (planner.changes).
        for signal in (post_save, post_delete):
            signal.connect(changes.investment_written, sender=Investment,
                           dispatch_uid=f"backlog-version-{signal is post_save}")
        post_save.connect(changes.workspace_created, sender=Workspace,
                          dispatch_uid="backlog-version-workspace")

        # A deleted hypothesis, segment or value model leaves the items listing it changed.
        for model in (Hypothesis, Segment, ValueModel):
            pre_delete.connect(changes.linked_deleted, sender=model,
                               dispatch_uid=f"investments-linked-{model.__name__}")

        # A segment refresh changes reach and value per user: re-value the investments.
        segment_services.AFTER_REFRESH.append(
            lambda workspace: services.workspace_revalue(workspace=workspace,
                                                         reason="segment refresh"))
        # A hypothesis's edit, status change or concluded experiment moves the value of the
        # investments resting on it: re-value them (in the writing transaction).
        experiment_services.HYPOTHESIS_CHANGED.append(services.revalue_hypothesis_investments)
