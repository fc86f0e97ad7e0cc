"""Number domains: every number a user (or the data) can store has a range, held three times:
by the model field's validators (pages' forms, and the API, whose serializers and OpenAPI schema
take ``minimum`` / ``maximum`` from them), and by a database check constraint, so nothing out of
range is ever stored (README "Number domains").

    cost = models.FloatField(validators=within(0.01, 1e12))
    class Meta:
        constraints = [in_range("cost", 0.01, 1e12, name="investment_cost_range")]

PostgreSQL orders NaN above every number, so a range check refuses NaN and infinities too;
SQLite stores NaN as NULL, which a NOT NULL column refuses.
"""

from __future__ import annotations

import math
from typing import Any

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


def within(low: float, high: float) -> list[Any]:
    """The validators of a number from ``low`` to ``high`` (both included)."""
    return [MinValueValidator(low), MaxValueValidator(high)]


def in_range(field: str, low: float, high: float, *, name: str,
             null: bool = False) -> models.CheckConstraint:
    """A check constraint: ``low <= field <= high`` (or NULL when ``null``)."""
    condition = models.Q(**{f"{field}__gte": low, f"{field}__lte": high})
    if null:
        condition |= models.Q(**{f"{field}__isnull": True})
    return models.CheckConstraint(condition=condition, name=name)


def is_number(value: object) -> bool:
    """A finite JSON number: an int or a float, not true or false (bool is an int in Python)."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def is_whole(value: object) -> bool:
    """A whole JSON number (3 or 3.0), not true or false."""
    return is_number(value) and float(value) == int(value)  # type: ignore[arg-type]


def clamp_rows(model: Any, ranges: dict[str, tuple[float, float]]) -> None:
    """Move stored values into their ranges (a migration's step before it adds the check
    constraints: rows written before the domains existed must not stop the upgrade). The
    migration ends the step with ``checks_now``."""
    for field, (low, high) in ranges.items():
        model.objects.filter(**{f"{field}__gt": high}).update(**{field: high})
        model.objects.filter(**{f"{field}__lt": low}).update(**{field: low})


def checks_now(schema_editor: Any) -> None:
    """Run the deferred foreign-key checks of the rows just updated: PostgreSQL cannot alter a
    table (add a constraint) while such checks are pending in the transaction."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
