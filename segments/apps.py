from __future__ import annotations

from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "Segments and data"

    def ready(self) -> None:
        # The job kinds this app runs (each module registers its handlers on import).
        from . import fanout_services, segment_services

        fanout_services.register()
        segment_services.register_erasure_hook()
        from events.signals import import_succeeded

        import_succeeded.connect(segment_services.refresh_after_import,
                                 dispatch_uid="segments.refresh_after_import")

        from django.db.models.signals import post_delete, post_save

        from accounts.changes import toucher

        from .models import Refresh, Segment, SegmentSnapshot

        # Segment, snapshot and refresh writes count in the workspace's "segments"
        # WorkspaceVersion (segments.page_cache's stamp).
        receiver = toucher("segments")
        for model in (Segment, SegmentSnapshot, Refresh):
            for signal in (post_save, post_delete):
                signal.connect(receiver, sender=model, weak=False,
                               dispatch_uid=f"workspace-version-{model.__name__}-{signal is post_save}")
