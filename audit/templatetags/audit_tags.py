from __future__ import annotations

import json
from typing import Any

from django import template

register = template.Library()


@register.filter
def get_item_json(mapping: Any, key: str) -> str:
    """One field's recorded value as short JSON text (for the history table)."""
    if not isinstance(mapping, dict) or key not in mapping:
        return "-"
    text = json.dumps(mapping[key], sort_keys=True, default=str)
    return text if len(text) <= 300 else text[:297] + "..."
