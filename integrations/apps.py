from __future__ import annotations

from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations (webhooks)"

    def ready(self) -> None:
        from segments import segment_services

        from . import webhooks

        # After every segment refresh, tell the workspace's subscribers (segment.refreshed).
        segment_services.AFTER_REFRESH.append(webhooks.notify_segment_refreshed)
