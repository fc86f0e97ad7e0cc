from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .selectors import workspaces_for


def workspaces(request: HttpRequest) -> dict[str, Any]:
    if not request.user.is_authenticated:
        return {}
    return {"my_workspaces": list(workspaces_for(request.user).order_by("name"))}
