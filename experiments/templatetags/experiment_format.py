"""Template filters of the experiment pages."""

from __future__ import annotations

import math

from django import template

register = template.Library()


@register.filter
def percent_sig(value: object) -> str:
    """A small share as a percentage with 3 significant digits: 0.000123 -> '0.0123%'."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(v):
        return "n/a"
    return f"{v * 100:.3g}%"


@register.filter
def confidence(alpha: object) -> str:
    """The interval's level from its alpha: 0.05 -> '95%'."""
    try:
        a = float(alpha)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    return f"{(1 - a) * 100:g}%"
