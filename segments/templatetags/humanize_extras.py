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


@register.filter
def pvalue(value: object) -> str:
    """A p-value as people read it: '< 0.0001' when tiny (never '0.0000'), 4 decimals
    otherwise; '' when missing."""
    try:
        p = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    if p != p:  # NaN
        return "n/a"
    if p < 0.0001:
        return "< 0.0001"
    return f"{p:.4f}"


@register.filter
def signed_percent(value: object, digits: int = 1) -> str:
    """A relative change as a signed percentage: 0.0523 -> '+5.2%'."""
    try:
        return f"{float(value) * 100:+.{int(digits)}f}%"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
