"""A dataset's event kinds and retention definition: read them resolved, change them checked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import FieldError
from .event_kinds import (
    ACTIVITY,
    RetentionDefinition,
    activity_events,
    check_overrides,
    default_kind,
    default_reason,
    describe_return_set,
    event_kinds,
    return_label,
)
from .models import Dataset


class RetentionInvalid(FieldError):
    """A refused event-kind or retention setting; ``field`` names it."""


@dataclass(frozen=True)
class RetentionSetup:
    """A dataset's retention definition with everything resolved: the kinds of its events,
    the start and return events and what that leaves out."""

    definition: RetentionDefinition
    kinds: dict[str, str] = field(default_factory=dict)
    custom_returns: bool = False
    provenance: dict[str, Any] = field(default_factory=dict)


def _names(dataset: Dataset) -> list[str]:
    return [str(e.get("event")) for e in (dataset.event_catalog or [])]


def retention_setup(dataset: Dataset) -> RetentionSetup:
    """The dataset's retention definition (defaults: signup; every activity event)."""
    kinds = event_kinds(dataset.event_catalog or [], dataset.event_kinds or {})
    custom = bool(dataset.retention_return_events)
    returns = sorted(dataset.retention_return_events) if custom else activity_events(kinds)
    start = dataset.retention_start_event or None
    definition = RetentionDefinition(start_event=start, return_events=tuple(returns),
                                     label=return_label(returns, custom))
    provenance = {"start_event": start or "signup", "label": definition.label,
                  "return_set": "chosen" if custom else "activity events (default)",
                  **describe_return_set(returns, kinds)}
    return RetentionSetup(definition=definition, kinds=kinds, custom_returns=custom,
                          provenance=provenance)


def catalog_with_kinds(dataset: Dataset, entries: Sequence[Mapping[str, Any]]
                       ) -> list[dict[str, Any]]:
    """Catalog entries with their kind, the default kind and why, and whether overridden."""
    overrides = dataset.event_kinds or {}
    out = []
    for entry in entries:
        name = str(entry.get("event"))
        revenue = int(entry.get("revenue_events") or 0)
        default = default_kind(name, revenue)
        out.append({**entry, "kind": overrides.get(name, default), "default_kind": default,
                    "kind_reason": default_reason(name, revenue),
                    "kind_overridden": name in overrides and overrides[name] != default})
    return out


def dataset_retention_update(*, dataset: Dataset, event_kinds: Any = None,
                             start_event: Any = None, return_events: Any = None) -> Dataset:
    """Change the event kinds and/or the retention definition (None leaves one as it is).
    Overrides equal to the default kind are dropped; an empty return list means the activity
    events; an empty start event means signup."""
    names = set(_names(dataset))
    fields: list[str] = []
    if event_kinds is not None:
        try:
            checked = check_overrides(event_kinds, names)
        except ValueError as exc:
            raise RetentionInvalid("event_kinds", str(exc)) from None
        revenue = {str(e.get("event")): int(e.get("revenue_events") or 0)
                   for e in dataset.event_catalog or []}
        merged = {**(dataset.event_kinds or {}), **checked}
        dataset.event_kinds = {n: k for n, k in sorted(merged.items())
                               if k != default_kind(n, revenue.get(n, 0))}
        fields.append("event_kinds")
    if start_event is not None:
        if not isinstance(start_event, str):
            raise RetentionInvalid("retention_start_event", "must be an event name or empty")
        if start_event not in ("", "signup") and start_event not in names:
            raise RetentionInvalid("retention_start_event",
                                   f"'{start_event}' is not an event of this dataset")
        dataset.retention_start_event = "" if start_event == "signup" else start_event
        fields.append("retention_start_event")
    if return_events is not None:
        if not isinstance(return_events, list) or not all(isinstance(n, str)
                                                          for n in return_events):
            raise RetentionInvalid("retention_return_events", "must be a list of event names")
        for i, name in enumerate(return_events):
            if name not in names:
                raise RetentionInvalid(f"retention_return_events[{i}]",
                                       f"'{name}' is not an event of this dataset")
        dataset.retention_return_events = sorted(set(return_events))
        fields.append("retention_return_events")
    if fields:
        dataset.save(update_fields=[*fields, "updated_at"])
    return dataset


__all__ = ["ACTIVITY", "RetentionInvalid", "RetentionSetup", "catalog_with_kinds",
           "dataset_retention_update", "retention_setup", "return_label"]
