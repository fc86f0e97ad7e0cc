from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def thousands(value: object) -> str:
    """12345 -> '12,345'."""
    try:
        return f"{int(value):,}"  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return "" if value is None else str(value)


@register.filter
def percent(value: object) -> str:
    try:
        return f"{float(value) * 100:.1f}%"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""


@register.filter
def get_item(mapping: object, key: object) -> object:
    """{{ dict|get_item:key }}."""
    try:
        return mapping.get(key)  # type: ignore[attr-defined]
    except AttributeError:
        return None


@register.filter
def split(value: str, sep: str = " ") -> list[str]:
    return value.split(sep)
