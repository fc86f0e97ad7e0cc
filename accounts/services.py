"""Writes for workspaces' own settings."""

from __future__ import annotations

from .models import Workspace


def workspace_settings_update(*, workspace: Workspace,
                              auto_refresh_segments: bool | None = None) -> Workspace:
    """Change a workspace's settings (only the ones given)."""
    fields = []
    if auto_refresh_segments is not None:
        workspace.auto_refresh_segments = bool(auto_refresh_segments)
        fields.append("auto_refresh_segments")
    if fields:
        workspace.save(update_fields=fields)
    return workspace
