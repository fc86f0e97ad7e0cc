"""Trends as a behaviour analysis: the parameters checked (errors name the field, e.g.
``series[1].event``) and the pure kernel (``behaviour.analytics.trends``) run on the frame."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from behaviour.analytics import trends as kernel
from events.frame import US_PER_DAY
from events.models import Dataset
from segments.models import Segment

DEFAULT_DAYS = 90
MAX_TOP = 20
BREAKDOWNS = ("", "attribute", "property", "segments")


def _invalid(field: str, message: str) -> Exception:
    from behaviour.services import AnalysisInvalid

    return AnalysisInvalid(field, message)


def _date(value: Any, field: str) -> str | None:
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise _invalid(field, f"'{value}' is not a date (YYYY-MM-DD)") from None


def clean_trends(dataset: Dataset, params: dict[str, Any]) -> dict[str, Any]:
    """Validated, normalized trends parameters (part of the cache key)."""
    names = {str(e.get("event")) for e in (dataset.event_catalog or [])}
    attributes = {str(a.get("attribute")) for a in (dataset.attribute_catalog or [])}
    series = params.get("series")
    if not isinstance(series, list) or not 1 <= len(series) <= len(kernel.LETTERS):
        raise _invalid("series", f"give 1 to {len(kernel.LETTERS)} series, each an event and "
                                 "a measure")
    out_series = []
    for i, item in enumerate(series):
        if not isinstance(item, dict):
            raise _invalid(f"series[{i}]", "must be an object with event and measure")
        event = str(item.get("event") or "").strip()
        if not event:
            raise _invalid(f"series[{i}].event", "choose an event or 'any'")
        if event != "any" and event not in names:
            raise _invalid(f"series[{i}].event", f"'{event}' is not an event of this dataset")
        measure = str(item.get("measure") or "count")
        if measure not in kernel.MEASURES:
            raise _invalid(f"series[{i}].measure",
                           f"must be one of {', '.join(kernel.MEASURES)}")
        out_series.append({"event": event, "measure": measure})
    interval = str(params.get("interval") or "day")
    if interval not in kernel.INTERVALS:
        raise _invalid("interval", f"must be one of {', '.join(kernel.INTERVALS)}")
    date_from = _date(params.get("date_from"), "date_from")
    date_to = _date(params.get("date_to"), "date_to")
    if date_from and date_to and date_from > date_to:
        raise _invalid("date_to", "must be on or after date_from")
    by = str(params.get("breakdown_by") or "")
    if by not in BREAKDOWNS:
        raise _invalid("breakdown_by", "must be attribute, property, segments or empty")
    key = str(params.get("breakdown_key") or "").strip()
    seg_ids: list[int] = []
    if by == "attribute" and key not in attributes:
        raise _invalid("breakdown_key", f"'{key}' is not a user attribute" if key
                       else "choose a user attribute")
    if by == "property":
        keys = {k for e in (dataset.event_catalog or []) for k in (e.get("property_keys") or [])}
        if not key:
            raise _invalid("breakdown_key", "choose an event property")
        if key not in keys:
            raise _invalid("breakdown_key", f"'{key}' is not a property of this dataset's events")
    if by == "segments":
        raw = params.get("breakdown_segments") or []
        if not isinstance(raw, list) or not raw:
            raise _invalid("breakdown_segments", "choose one or more segments")
        for i, seg in enumerate(raw):
            try:
                pk = int(seg)
            except (TypeError, ValueError):
                raise _invalid(f"breakdown_segments[{i}]", f"'{seg}' is not a segment id") from None
            if not Segment.objects.filter(pk=pk, dataset=dataset).exists():
                raise _invalid(f"breakdown_segments[{i}]",
                               f"{seg} is not a segment of this dataset")
            seg_ids.append(pk)
        key = ""
    if by in ("", "segments"):
        key = ""
    try:
        raw_top = params.get("top")
        top = 5 if raw_top in (None, "") else int(raw_top)
    except (TypeError, ValueError):
        raise _invalid("top", "must be a whole number") from None
    if not 1 <= top <= MAX_TOP:
        raise _invalid("top", f"must be between 1 and {MAX_TOP}")
    formula = str(params.get("formula") or "").strip()
    if formula:
        if len(formula) > 200:
            raise _invalid("formula", "at most 200 characters")
        try:
            kernel.parse_formula(formula, kernel.LETTERS[:len(out_series)])
        except kernel.FormulaError as exc:
            raise _invalid("formula", str(exc)) from None
    compare = params.get("compare", False)
    if isinstance(compare, str):
        compare = compare.lower() in ("1", "true", "on", "yes")
    return {"series": out_series, "interval": interval, "date_from": date_from,
            "date_to": date_to, "breakdown_by": by, "breakdown_key": key,
            "breakdown_segments": sorted(seg_ids), "top": top, "formula": formula,
            "compare": bool(compare)}


def _day_us(day: str) -> int:
    return int(np.datetime64(day, "D").astype("datetime64[us]").astype(np.int64))


def trends_range(p: dict[str, Any], last_event_us: int | None) -> tuple[int, int]:
    """[from, to) in µs: the given dates (inclusive days, UTC); by default the last 90 days of
    data (ending with the day of the latest event)."""
    last_day = int(last_event_us // US_PER_DAY) * US_PER_DAY if last_event_us is not None \
        else 0
    to_us = _day_us(p["date_to"]) + US_PER_DAY if p.get("date_to") else last_day + US_PER_DAY
    from_us = _day_us(p["date_from"]) if p.get("date_from") else \
        to_us - DEFAULT_DAYS * US_PER_DAY
    return from_us, to_us


def trends_compute(p: dict[str, Any], ue: Any, users: np.ndarray | None,
                   segment_masks: list[tuple[str, np.ndarray]]) -> dict[str, Any]:
    """Run the trends kernel with the analysis's parameters."""
    from_us, to_us = trends_range(p, ue.time_max())
    breakdown = None
    by = p.get("breakdown_by") or ""
    if by == "attribute":
        labels = ue.attributes[p["breakdown_key"]].to_numpy(dtype=object) \
            if p["breakdown_key"] in ue.attributes.columns else \
            np.full(ue.n_users, kernel.NONE_LABEL, dtype=object)
        breakdown = kernel.Breakdown(by=by, key=p["breakdown_key"], labels=labels, top=p["top"])
    elif by == "property":
        breakdown = kernel.Breakdown(by=by, key=p["breakdown_key"],
                                     labels=kernel.property_values(ue, p["breakdown_key"]),
                                     top=p["top"])
    elif by == "segments":
        breakdown = kernel.Breakdown(by=by, masks=tuple((f"segment: {n}", m)
                                                        for n, m in segment_masks),
                                     top=p["top"])
    series = [kernel.Series(event=None if s["event"] == "any" else s["event"],
                            measure=s["measure"]) for s in p["series"]]
    return kernel.trends(ue, series, interval=p["interval"], from_us=from_us, to_us=to_us,
                         users=users, breakdown=breakdown, formula=p.get("formula") or "",
                         compare=bool(p.get("compare")))


def trends_form_params(post: Any) -> dict[str, Any]:
    """The behaviour page's trends fields as analysis parameters (series rows 0..3)."""
    series = []
    for i in range(4):
        event = (post.get(f"trend_event_{i}") or "").strip()
        if event:
            series.append({"event": event, "measure": post.get(f"trend_measure_{i}") or "count"})
    breakdown = post.get("trend_breakdown") or ""
    by, _, key = breakdown.partition(":")
    return {"series": series, "interval": post.get("trend_interval") or "day",
            "date_from": post.get("trend_from") or None, "date_to": post.get("trend_to") or None,
            "breakdown_by": by, "breakdown_key": key,
            "breakdown_segments": post.getlist("trend_segments") if by == "segments" else [],
            "top": post.get("trend_top") or 5, "formula": post.get("trend_formula") or "",
            "compare": bool(post.get("trend_compare"))}
