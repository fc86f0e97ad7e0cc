"""Workspace reads: always scoped to the requesting user's memberships (404 outside them)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from .models import Membership, Workspace

# Why a viewer's POST is refused, said on the 403 page and in the API's 403: reading is every
# member's, changing things and starting work (computations) are not.
VIEWER_READ_ONLY = ("viewers read every result but neither change anything nor start "
                    "computations (refreshes, analyses, optimizer runs, imports); an analyst, "
                    "council member or admin of this workspace can")


def filter_given(queryset: QuerySet, **lookups: object) -> QuerySet:
    """``queryset`` narrowed by each lookup whose value is given (truthy); the others are
    left out, as an empty search field is."""
    return queryset.filter(**{key: value for key, value in lookups.items() if value})


def workspaces_for(user: object) -> QuerySet[Workspace]:
    if not getattr(user, "is_authenticated", False):
        return Workspace.objects.none()
    return Workspace.objects.filter(memberships__user=user)


def membership_for(user: object, workspace: Workspace) -> Membership | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Membership.objects.filter(user=user, workspace=workspace).first()


def workspace_get(user: object, slug: str,
                  action: str | None = None) -> tuple[Workspace, Membership]:
    """The workspace by slug if the user is a member, else 404 (never 403: no existence leak);
    with ``action``, 403 (PermissionDenied) unless the member's role allows it there."""
    membership = (
        Membership.objects.select_related("workspace")
        .filter(user=user, workspace__slug=slug).first()
        if getattr(user, "is_authenticated", False) else None
    )
    if membership is None:
        raise Http404("No such workspace")
    if action is not None and not membership.can(action):
        raise PermissionDenied
    return membership.workspace, membership
