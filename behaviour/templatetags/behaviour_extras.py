"""Template filters for behaviour pages."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def duration(seconds: object) -> str:
    """Seconds as a person reads them: '45 s', '12.5 min', '3.2 h', '4.1 d' (the exact
    seconds go in a title attribute beside it); '—' when missing."""
    try:
        s = float(seconds)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "—"
    if s != s:
        return "—"
    if s < 60:
        return f"{s:g} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    if s < 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"
