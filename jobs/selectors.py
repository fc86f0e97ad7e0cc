"""Job reads, scoped to the user's workspaces."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.selectors import workspaces_for

from .models import Job


def jobs_for(user: object) -> QuerySet[Job]:
    return Job.objects.filter(workspace__in=workspaces_for(user)).select_related("workspace")
