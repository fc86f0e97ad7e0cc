from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from .selectors import workspaces_for


def workspaces(request: HttpRequest) -> dict[str, Any]:
    if not request.user.is_authenticated:
        return {}
    # Read only by a template that shows it: no query on every page render.
    return {"my_workspaces": SimpleLazyObject(
        lambda: list(workspaces_for(request.user).order_by("name")))}
