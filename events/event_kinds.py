"""Event kinds: which events are user activity and which are billing or system events. Pure.

Retention asks "did the user come back?"; a monthly charge or an assignment written by the
server is not the user coming back. Each event name of a dataset is ``activity`` or ``system``:

* ``system`` by default when the event carries revenue somewhere in the data (the catalog's
  ``revenue_events``), or when its name holds a billing or system word (``SYSTEM_WORDS``:
  purchase, payment, invoice, renewal, charge, refund, subscription, experiment_assigned,
  email, notification, ...);
* ``activity`` otherwise.

A dataset may override the default per name (``Dataset.event_kinds``); the default return set
of retention is the activity events.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ACTIVITY = "activity"
SYSTEM = "system"
KINDS = (ACTIVITY, SYSTEM)
LABEL_NAMES = 4  # names listed in a label before "and N more"
SYSTEM_WORDS = ("purchase", "payment", "paid", "invoice", "renewal", "renew", "charge",
                "refund", "subscription", "billing", "experiment_assigned", "assigned",
                "email", "notification", "push_sent", "webhook", "system")
_WORD = re.compile("|".join(re.escape(w) for w in SYSTEM_WORDS))


def default_kind(name: str, revenue_events: int = 0) -> str:
    """``system`` for revenue-carrying events and billing/system names, else ``activity``."""
    if revenue_events > 0:
        return SYSTEM
    return SYSTEM if _WORD.search(str(name).lower()) else ACTIVITY


def default_reason(name: str, revenue_events: int = 0) -> str:
    """Why ``default_kind`` chose what it chose, in words."""
    if revenue_events > 0:
        return "carries revenue"
    found = _WORD.search(str(name).lower())
    return f"name holds '{found.group(0)}'" if found else "user action"


def event_kinds(catalog: Iterable[Mapping[str, Any]],
                overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{event name: kind}`` for every event of a catalog: the override, else the default."""
    overrides = overrides or {}
    out: dict[str, str] = {}
    for entry in catalog:
        name = str(entry.get("event"))
        kind = overrides.get(name)
        out[name] = kind if kind in KINDS else default_kind(
            name, int(entry.get("revenue_events") or 0))
    return out


def activity_events(kinds: Mapping[str, str]) -> list[str]:
    """The activity events (sorted): the default return set of retention."""
    return sorted(n for n, k in kinds.items() if k == ACTIVITY)


def check_overrides(value: Any, names: Iterable[str] | None = None) -> dict[str, str]:
    """Validated overrides: a mapping of event name to 'activity' or 'system'. Raises
    ``ValueError`` with a message naming the offending entry."""
    if not isinstance(value, Mapping):
        raise ValueError("must be an object of event name to 'activity' or 'system'")
    known = set(names) if names is not None else None
    out: dict[str, str] = {}
    for name, kind in value.items():
        if kind not in KINDS:
            raise ValueError(f"'{name}': the kind must be 'activity' or 'system', not {kind!r}")
        if known is not None and str(name) not in known:
            raise ValueError(f"'{name}' is not an event of this dataset")
        out[str(name)] = str(kind)
    return out


def return_label(return_events: Sequence[str], custom: bool) -> str:
    """"any activity event" for the default set, else the names (the first few)."""
    if not custom:
        return "any activity event"
    names = sorted(return_events)
    shown = ", ".join(names[:LABEL_NAMES])
    more = f" and {len(names) - LABEL_NAMES} more" if len(names) > LABEL_NAMES else ""
    return f"any of: {shown}{more}" if len(names) > 1 else f"{shown or 'no event'}"


def describe_return_set(return_events: Sequence[str], kinds: Mapping[str, str],
                        shown: int = 12, kept: int = 200) -> dict[str, Any]:
    """What a retention definition counts and leaves out, for provenance: the return events
    and the excluded ones (the first ``kept`` of each, with their counts) and one sentence
    naming the first ``shown`` of each."""
    chosen = sorted(set(return_events))
    excluded = sorted(n for n in kinds if n not in set(chosen))

    def listed(names: list[str], word: Any) -> str:
        text = ", ".join(word(n) for n in names[:shown])
        return text + (f" and {len(names) - shown} more" if len(names) > shown else "")

    text = f"returned with: {listed(chosen, str) or 'no event'}"
    reason = lambda n: f"{n} ({'billing/system' if kinds.get(n) == SYSTEM else 'not chosen'})"  # noqa: E731
    text += f"; excluded: {listed(excluded, reason)}" if excluded else "; excluded: none"
    return {"return_events": chosen[:kept], "return_count": len(chosen),
            "excluded": excluded[:kept], "excluded_count": len(excluded), "text": text}


@dataclass(frozen=True)
class RetentionDefinition:
    """Who starts a retention clock and what counts as coming back.

    ``start_event``: None starts at the user's signup; an event name starts at the user's first
    such event. ``return_events``: None counts any event as a return (the old behaviour);
    a tuple counts only those names. ``label`` says it in words for the pages."""

    start_event: str | None = None
    return_events: tuple[str, ...] | None = None
    label: str = "any event"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (provenance and partial metadata)."""
        return {"start_event": self.start_event or "signup",
                "return_events": None if self.return_events is None
                else list(self.return_events), "label": self.label}
