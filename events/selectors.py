"""Dataset and import reads, scoped to the user's workspaces."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.selectors import workspaces_for

from .models import Dataset, Import


def datasets_for(user: object) -> QuerySet[Dataset]:
    return Dataset.objects.filter(workspace__in=workspaces_for(user)).select_related("workspace")


def imports_for(user: object) -> QuerySet[Import]:
    return Import.objects.filter(workspace__in=workspaces_for(user)).select_related(
        "dataset", "job", "workspace")
