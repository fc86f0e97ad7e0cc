"""Analysis parameters as a line a person reads ("Segment: Team plan · Window: 14 days · Mode:
in order") instead of a raw dict with segment ids. One helper for every page that lists
analyses (the analysis page, the behaviour page, the jobs list)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SEP = " · "

MODES = {"ordered": "in order", "strict": "strictly in order (nothing between)",
         "any_order": "any order", "recurring": "recurring", "first_time": "first time"}
RETURN_ON = {"on": "on the period", "on_or_after": "on or after the period"}
OPS = {"eq": "=", "neq": "≠", "in": "in", "contains": "contains"}
# Known keys, in the order shown, with their labels; other keys follow, humanized.
LABELS = {
    "segment": "Segment", "steps": "Steps", "window_days": "Window", "mode": "Mode",
    "exclusions": "Excluding", "breakdown": "Breakdown", "breakdown_segments": "Compared with",
    "start_event": "After", "end_event": "Before", "outcome_event": "Outcome",
    "outcome_days": "Outcome within", "top": "Top paths", "cohort_by": "Cohort by",
    "period": "Period", "return_on": "Return", "max_periods": "Periods", "events": "Events",
    "thresholds": "At least", "windows": "Early windows",
}


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _days(value: Any) -> str:
    text = _number(value)
    return f"{text} day" if text == "1" else f"{text} days"


def _step(step: Any) -> str:
    if not isinstance(step, Mapping):
        return str(step)
    text = str(step.get("event"))
    spec = step.get("filter")
    if isinstance(spec, Mapping):
        value = spec.get("value")
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        text += f" [{spec.get('key')} {OPS.get(str(spec.get('op')), spec.get('op'))} {shown}]"
    return text


def _segment(value: Any, segments: Mapping[int, str]) -> str:
    try:
        key = int(value)
    except (TypeError, ValueError):
        return str(value)
    return segments.get(key, f"#{key} (deleted)")


def _value(key: str, value: Any, segments: Mapping[int, str], params: Mapping[str, Any]) -> str:
    if key == "segment":
        return _segment(value, segments)
    if key == "breakdown_segments" or key.endswith("_segments"):
        return ", ".join(_segment(v, segments) for v in value)
    if key == "steps" and isinstance(value, list):
        return " → ".join(_step(s) for s in value)
    if key == "steps":
        return _number(value)
    if key in ("window_days", "outcome_days"):
        return _days(value)
    if key == "windows":
        return ", ".join(_number(v) for v in value) + " days"
    if key == "thresholds":
        return ", ".join(_number(v) for v in value) + " events"
    if key == "mode":
        return MODES.get(str(value), str(value))
    if key == "return_on":
        return RETURN_ON.get(str(value), str(value))
    if key == "outcome_event" and value and value == params.get("end_event"):
        return f"{value} (the end event: rates are 1 by construction)"
    if key == "events" and isinstance(value, list) and len(value) > 6:
        return f"{len(value)} events"
    if isinstance(value, list):
        return ", ".join(_step(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return _number(value) if isinstance(value, int | float) else str(value)


MEASURES = {"count": "events", "unique_users": "unique users", "sum_revenue": "revenue"}
LETTERS = "ABCDEFGHIJ"
# Keys folded into another key's line (retention's periods, trends' breakdown) or implied.
FOLDED = {"period_kind", "period_days", "within", "return_set", "breakdown_key"}
# Reading order of the kinds told by their keys (trends: "series"; retention: "period_kind").
TRENDS_ORDER = ("series", "interval", "date_from", "date_to", "breakdown_by",
                "breakdown_segments", "top", "formula", "compare")
RETENTION_ORDER = ("start_event", "cohort_by", "return_events", "period", "return_on", "mode",
                   "max_periods")


def _series(value: Any) -> str:
    """[{"event": "any", "measure": "count"}, ...] -> 'A: events of any event, B: ...'."""
    out = []
    for letter, item in zip(LETTERS, value, strict=False):
        if not isinstance(item, Mapping):
            out.append(f"{letter}: {item}")
            continue
        event = str(item.get("event"))
        measure = MEASURES.get(str(item.get("measure")), str(item.get("measure")))
        out.append(f"{letter}: {measure} of {'any event' if event == 'any' else event}")
    return ", ".join(out)


def _retention_periods(params: Mapping[str, Any]) -> str:
    if params.get("period_kind") == "rolling":
        return f"rolling {_days(params.get('period_days') or 7)} from each user's start"
    period = str(params.get("period") or "week")
    return f"calendar {period}s (UTC)"


def _special(key: str, value: Any, params: Mapping[str, Any]) -> tuple[str, str] | None:
    """The keys whose line depends on the kind (told by the keys it has), or None."""
    trends = "series" in params
    retention = "period_kind" in params
    if key == "series":
        return "Series", _series(value)
    if key == "top" and trends:
        return "Top groups", f"{_number(value)} (+ other)"
    if key == "compare" and trends:
        return "Previous period", "overlaid" if value else ""
    if key == "breakdown_by" and trends:
        what = params.get("breakdown_key") if value in ("attribute", "property") else ""
        return "Breakdown", f"{value} {what}".strip()
    if key == "interval":
        return "Per", f"{value} (UTC)"
    if key in ("date_from", "date_to"):
        return ("From" if key == "date_from" else "To"), str(value)
    if retention and key == "start_event":
        return "Start", str(value)
    if retention and key == "period":
        return "Periods", _retention_periods(params)
    if retention and key == "max_periods":
        return "Periods shown", _number(value)
    if retention and key == "cohort_by":  # said by the start event when there is one
        return ("Start", "") if params.get("start_event") else \
            ("Start", "first event" if value == "first_event" else "signup")
    if retention and key == "return_on" and value == "within":
        return "Return", f"within {_number(params.get('within'))} periods"
    if retention and key == "return_events" and params.get("return_set") == "activity":
        return "Return events", f"every activity event ({len(value)}: " \
                                f"{', '.join(map(str, value))})" if len(value) <= 6 \
            else f"every activity event ({len(value)})"
    return None


def describe_parts(params: Mapping[str, Any] | None,
                   segments: Mapping[int, str] | Iterable[Any] | None = None,
                   ) -> list[tuple[str, str]]:
    """The parameters as (label, value) pairs in reading order (see ``describe_params``)."""
    params = dict(params or {})
    names: dict[int, str] = {}
    if isinstance(segments, Mapping):
        names = {int(k): str(v) for k, v in segments.items()}
    elif segments is not None:
        names = {int(s.pk): str(s.name) for s in segments}
    parts = [("Segment", _segment(params["segment"], names) if params.get("segment")
              else "All users")]
    if "start_event" in params and not params.get("start_event") \
            and not params.get("end_event") and "period_kind" not in params:
        parts.append(("From", "session start"))
    order = TRENDS_ORDER if "series" in params else RETENTION_ORDER \
        if "period_kind" in params else tuple(LABELS)
    keys = [k for k in order if k in params] + [k for k in LABELS if k in params
                                                and k not in order]
    keys += [k for k in params if k not in keys]
    for key in keys:
        value = params[key]
        if key == "segment" or value in (None, "", [], {}):
            continue
        if "period_kind" in params and key in FOLDED:
            continue
        if "series" in params and key == "breakdown_key":
            continue
        special = _special(key, value, params)
        if special is not None:
            if special[1]:
                parts.append(special)
            continue
        label = LABELS.get(key, key.replace("_", " ").capitalize())
        if key == "steps" and not isinstance(value, list):
            label = "Path length"
        parts.append((label, _value(key, value, names, params)))
    return parts


def describe_params(params: Mapping[str, Any] | None,
                    segments: Mapping[int, str] | Iterable[Any] | None = None) -> str:
    """A human summary of an analysis's parameters. ``segments``: id -> name, or segment
    objects (with ``pk`` and ``name``). Empty values are left out; a missing segment reads
    "All users"."""
    parts = describe_parts(params, segments)
    head = parts[0][1] if parts[0][1] == "All users" else f"{parts[0][0]}: {parts[0][1]}"
    return SEP.join([head] + [f"{label}: {value}" for label, value in parts[1:]])


def segment_names_for(params_list: Iterable[Mapping[str, Any]]) -> set[int]:
    """The segment ids a list of parameter dicts mentions (to fetch their names at once)."""
    ids: set[int] = set()
    for params in params_list:
        for key, value in (params or {}).items():
            values = value if isinstance(value, list) else [value]
            if key == "segment" or key.endswith("_segments"):
                for v in values:
                    try:
                        ids.add(int(v))
                    except (TypeError, ValueError):
                        continue
    return ids
