"""The workspace a management command's ``--workspace`` option names (every app's commands)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from accounts.models import Workspace


def workspace_from_options(opts: dict[str, Any], missing: str | None = None) -> Workspace:
    """The workspace whose slug ``--workspace`` gives, or a CommandError saying ``missing``
    (by default: no workspace with that slug)."""
    workspace = Workspace.objects.filter(slug=opts["workspace"]).first()
    if workspace is None:
        raise CommandError(missing or f"no workspace with slug {opts['workspace']!r}")
    return workspace
