from __future__ import annotations

from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Events and datasets"

    def ready(self) -> None:
        # The job kinds this app runs: imports and erasures (registered on import).
        from django.db.models.signals import post_delete, post_save

        from accounts.changes import toucher

        from . import privacy_services, services  # noqa: F401
        from .models import Dataset, Erasure

        # Dataset and erasure writes count in the workspace's "datasets" WorkspaceVersion
        # (the segment pages' cache stamp); the update() calls count themselves.
        receiver = toucher("datasets")
        for model in (Dataset, Erasure):
            for signal in (post_save, post_delete):
                signal.connect(receiver, sender=model, weak=False,
                               dispatch_uid=f"workspace-version-{model.__name__}-{signal is post_save}")
