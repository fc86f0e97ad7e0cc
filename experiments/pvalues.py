"""p-values in words by the pages' rule, for text built outside templates (the verdict's
checks, the readout line): "p < 0.0001" when tiny (never 0.0000 or 1.2e-07), else four
decimals, "p = 0.0432". Pure: no Django (the templates use the ``pvalue`` filter, same rule)."""

from __future__ import annotations

import math

TINY = 0.0001


def p_shown(p: float | None) -> str:
    """The value alone: '< 0.0001', '0.0432', 'n/a' for a missing or NaN value."""
    if p is None:
        return "n/a"
    p = float(p)
    if math.isnan(p):
        return "n/a"
    return f"< {TINY}" if p < TINY else f"{p:.4f}"


def p_text(p: float | None, name: str = "p") -> str:
    """'p < 0.0001', 'adjusted p = 0.0432', 'p = n/a'."""
    shown = p_shown(p)
    return f"{name} {shown}" if shown.startswith("<") else f"{name} = {shown}"
