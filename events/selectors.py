"""Dataset and import reads, scoped to the user's workspaces."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from accounts.selectors import workspaces_for

from .models import Dataset, Import


def datasets_for(user: object) -> QuerySet[Dataset]:
    return Dataset.objects.filter(workspace__in=workspaces_for(user)).select_related("workspace")


def dataset_get(user: object, pk: int) -> Dataset:
    """The dataset by id if it is in one of the user's workspaces, else 404."""
    dataset = datasets_for(user).filter(pk=pk).first()
    if dataset is None:
        raise Http404("No such dataset")
    return dataset


def imports_for(user: object) -> QuerySet[Import]:
    return Import.objects.filter(workspace__in=workspaces_for(user)).select_related(
        "dataset", "job", "workspace")


def catalog_matching(dataset: Dataset, text: str = "") -> list[dict[str, Any]]:
    """The dataset's event catalog (most frequent first), only the names that hold ``text``
    (case-insensitive) when it is given."""
    events = dataset.event_catalog or []
    needle = text.strip().casefold()
    if not needle:
        return list(events)
    return [e for e in events if needle in str(e.get("event", "")).casefold()]
