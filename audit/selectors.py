"""Reads of the audit history, scoped to the workspaces where the user may read it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Q, QuerySet

from accounts.models import ROLE_ACTIONS, Membership
from accounts.selectors import filter_given

from .models import AuditEntry

# Council members and admins read the history (the roles that decide or manage).
AUDIT_ROLES = tuple(r for r, acts in ROLE_ACTIONS.items() if {"decide", "manage"} & acts)


def can_read(membership: Membership) -> bool:
    return membership.role in AUDIT_ROLES


def entries_for(user: Any) -> QuerySet[AuditEntry]:
    """Entries of every workspace where the user is council or admin (none elsewhere)."""
    if not getattr(user, "is_authenticated", False):
        return AuditEntry.objects.none()
    spaces = Membership.objects.filter(user=user, role__in=AUDIT_ROLES).values("workspace_id")
    return AuditEntry.objects.filter(workspace_id__in=spaces).select_related("workspace")


def filtered(entries: QuerySet[AuditEntry], *, object_type: str = "", object_id: str = "",
             actor: str = "", since: dt.date | None = None, until: dt.date | None = None,
             action: str = "") -> QuerySet[AuditEntry]:
    """Narrow by object type ("planner.investment" or just "investment"), object, actor
    (username), action and inclusive UTC dates."""
    if object_type:
        entries = entries.filter(
            Q(object_type=object_type) if "." in object_type
            else Q(object_type=object_type) | Q(object_type__endswith=f".{object_type}"))
    day = dt.timedelta(days=1)
    return filter_given(
        entries, object_id=object_id, actor_name=actor, action=action,
        created_at__gte=dt.datetime.combine(since, dt.time.min, dt.UTC) if since else None,
        created_at__lt=dt.datetime.combine(until + day, dt.time.min, dt.UTC) if until else None)
