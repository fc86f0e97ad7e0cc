"""Behaviour retention's parameters: checked (errors name the field) and turned into the pure
core's options. Old requests keep working: every new parameter has a default (start at
signup, return with the dataset's return events, calendar periods, "on")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from events.errors import FieldError
from events.event_kinds import return_label
from events.models import Dataset
from events.retention_services import retention_setup

RETURN_ON = ("on", "on_or_after", "within")


def _whole(params: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    raw = params.get(key)
    value = FieldError.as_float(default if raw in (None, "") else raw, key)
    if not value.is_integer() or not low <= value <= high:
        raise FieldError(key, f"must be a whole number between {low} and {high}")
    return int(value)


def _choice(params: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> str:
    raw = params.get(key)
    value = choices[0] if raw in (None, "") else str(raw)
    if value not in choices:
        raise FieldError(key, f"must be one of {', '.join(choices)}")
    return value


def clean_retention(dataset: Dataset, params: Mapping[str, Any], names: set[str],
                    error: type[FieldError] = FieldError) -> dict[str, Any]:
    """The retention analysis's normalized parameters (the cache key's part)."""
    try:
        return _clean(dataset, params, names)
    except FieldError as exc:
        raise error(exc.field, exc.message) from None


def _clean(dataset: Dataset, params: Mapping[str, Any], names: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out["cohort_by"] = _choice(params, "cohort_by", ("signup", "first_event"))
    start = params.get("start_event")
    if start in (None, ""):
        start = "signup" if out["cohort_by"] == "signup" else None
    elif not isinstance(start, str) or (start != "signup" and start not in names):
        raise FieldError("start_event", f"'{start}' is not an event of this dataset")
    if start not in (None, "signup"):
        out["cohort_by"] = "first_event"
    elif start == "signup":
        out["cohort_by"] = "signup"
    out["start_event"] = start
    returns = params.get("return_events")
    if returns in (None, "", []):
        setup = retention_setup(dataset)
        out["return_events"] = list(setup.definition.return_events or ())
        out["return_set"] = "chosen" if setup.custom_returns else "activity"
    else:
        if isinstance(returns, str):
            returns = [r.strip() for r in returns.split(",") if r.strip()]
        if not isinstance(returns, list):
            raise FieldError("return_events", "must be a list of event names")
        for i, name in enumerate(returns):
            if str(name) not in names:
                raise FieldError(f"return_events[{i}]",
                                 f"'{name}' is not an event of this dataset")
        out["return_events"] = sorted({str(r) for r in returns})
        out["return_set"] = "chosen"
    out["period"] = _choice(params, "period", ("week", "month"))
    out["period_kind"] = _choice(params, "period_kind", ("calendar", "rolling"))
    out["period_days"] = _whole(params, "period_days", 7, 1, 365) \
        if out["period_kind"] == "rolling" else 0
    out["mode"] = _choice(params, "mode", ("recurring", "first_time"))
    out["return_on"] = _choice(params, "return_on", RETURN_ON)
    out["within"] = _whole(params, "within", 7 if out["period_days"] == 1 else 2, 2, 104) \
        if out["return_on"] == "within" else 1
    out["max_periods"] = _whole(params, "max_periods", 12, 1, 400 if out["period_kind"]
                                == "rolling" else 104)
    return out


def retention_kwargs(p: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``cohorts.retention`` / ``RetentionOptions`` (without ``as_of_us``)
    from clean parameters (old cached parameters without the new keys read as before)."""
    returns = p.get("return_events")
    start = p.get("start_event")
    kw: dict[str, Any] = {
        "cohort_by": p["cohort_by"], "period": p["period"], "mode": p["mode"],
        "return_on": p["return_on"], "max_periods": p["max_periods"],
        "period_kind": p.get("period_kind", "calendar"),
        "period_days": int(p.get("period_days") or 7), "within": int(p.get("within") or 1),
        "cohort_event": None if start in (None, "signup") else start,
        "return_events": None if returns is None else tuple(returns),
        "return_label": None if returns is None
        else return_label(returns, p.get("return_set") == "chosen"),
    }
    return kw
