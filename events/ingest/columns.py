"""Which column of a file is which: the explicit mapping first, then known aliases."""

from __future__ import annotations

from collections.abc import Mapping

from .errors import ImportRejected

# The user id column's names, alike in event and user files.
USER_ID_ALIASES = ("user_id", "userId", "distinct_id", "userid", "user")
EVENT_ALIASES: dict[str, tuple[str, ...]] = {
    "user_id": USER_ID_ALIASES,
    "event": ("event", "event_type", "event_name", "name"),
    "timestamp": ("timestamp", "time", "event_time", "ts", "datetime"),
    "revenue": ("revenue", "amount", "price"),
    "cost": ("cost", "cost_to_serve"),
    "properties": ("properties", "event_properties"),
}
REQUIRED_EVENT_COLUMNS = ("user_id", "event", "timestamp")
USER_ALIASES: dict[str, tuple[str, ...]] = {
    "user_id": USER_ID_ALIASES,
    "signup_time": ("signup_time", "signup_at", "signed_up_at", "created_at", "signup"),
}


def resolve_columns(
    available: list[str],
    aliases: Mapping[str, tuple[str, ...]],
    mapping: Mapping[str, str],
    required: tuple[str, ...],
) -> dict[str, str]:
    """canonical name -> source column, from the explicit mapping first, then known aliases."""
    resolved: dict[str, str] = {}
    lowered: dict[str, str] = {}
    for c in available:  # "user_id" beats "USER_ID" when a file has both
        if c.lower() not in lowered or c == c.lower():
            lowered[c.lower()] = c
    for canonical, source in mapping.items():
        if canonical not in aliases:
            raise ImportRejected("bad_mapping", f"unknown target column {canonical!r} in the mapping",
                                 f"known: {', '.join(aliases)}")
        if source not in available:
            raise ImportRejected("missing_column", f"mapped column {source!r} is not in the file",
                                 f"columns: {', '.join(available[:20])}")
        resolved[canonical] = source
    for canonical, names in aliases.items():
        if canonical in resolved:
            continue
        for name in names:
            if name.lower() in lowered and lowered[name.lower()] not in resolved.values():
                resolved[canonical] = lowered[name.lower()]
                break
    missing = [c for c in required if c not in resolved]
    if missing and len(available) == 1:
        separator = next((sep for sep in (";", "\t", "|") if sep in available[0]), None)
        if separator is not None:
            raise ImportRejected(
                "missing_column",
                f"the header is one column; the file seems separated by {separator!r}, "
                "not by commas",
                f"line 1: {available[0][:100]}",
            )
    if missing:
        raise ImportRejected(
            "missing_column",
            f"required column {', '.join(missing)} not found",
            f"columns: {', '.join(available[:20]) or '(none)'}; accepted names for "
            + "; ".join(f"{m}: {', '.join(aliases[m])}" for m in missing),
        )
    return resolved
