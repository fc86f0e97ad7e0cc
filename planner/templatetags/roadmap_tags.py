"""Template tags for the roadmap partials, so the run page and the brief include them with
one line each (their views stay as they are)."""

from __future__ import annotations

from typing import Any

from django import template

from .. import roadmap
from ..roadmap_views import timeline_context

register = template.Library()


@register.simple_tag
def run_against_roadmap(run: Any) -> dict[str, Any]:
    """A finished run against the current roadmap version: its changes and whether it can be
    adopted."""
    if run.finished_at is None or (run.plan or {}).get("error"):
        return {"ready": False}
    current = roadmap.current_version(run.workspace_id)
    return {"ready": True, "current": current, "changes": roadmap.diff_run(run, current),
            "stale": roadmap.run_is_stale(run),
            "base_label": f"v{current.number}" if current else "no roadmap yet"}


@register.simple_tag
def current_timeline(workspace: Any) -> dict[str, Any]:
    """The timeline of the workspace's current roadmap version."""
    return timeline_context(roadmap.current_version(workspace))
