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
