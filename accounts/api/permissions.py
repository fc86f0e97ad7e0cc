"""Role checks for API writes: 404 outside the user's workspaces, 403 for a role that may not."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from rest_framework.exceptions import PermissionDenied

from ..models import Membership
from ..selectors import VIEWER_READ_ONLY


def require_role(user: object, workspace_id: int, action_name: str) -> Membership:
    membership = Membership.objects.filter(user=user, workspace_id=workspace_id).first()
    if membership is None:
        raise Http404("No such workspace")
    if not membership.can(action_name):
        why = f": {VIEWER_READ_ONLY}" if membership.role == "viewer" else ""
        raise PermissionDenied(
            f"role {membership.role!r} may not {action_name} in this workspace{why}")
    return membership


def checked_object(view: Any, action_name: str) -> Any:
    """The view's object (404 outside the caller's workspaces), once the caller's role in its
    workspace allows ``action_name`` (403 otherwise)."""
    obj = view.get_object()
    require_role(view.request.user, obj.workspace_id, action_name)
    return obj
