"""Query filters that answer 400, not 500, to values the database cannot hold."""

from __future__ import annotations

import datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django_filters import fields, filters
from django_filters.rest_framework import FilterSet
from rest_framework.exceptions import ValidationError

ID_RANGE = range(-(2**63), 2**63)  # 64-bit keys; SQLite raises OverflowError beyond them


class _BoundedIdsField(fields.ModelMultipleChoiceField):
    def _check_values(self, value: Any) -> Any:
        for item in value:
            try:
                number = int(item)
            except (TypeError, ValueError):
                continue  # the parent names it as an invalid choice
            if number not in ID_RANGE:
                raise DjangoValidationError(self.error_messages["invalid_choice"],
                                            code="invalid_choice", params={"value": item})
        return super()._check_values(value)


def _utc(value: datetime.datetime) -> datetime.datetime:
    """PostgreSQL takes offsets up to +-15:59 only; the filters compare in UTC."""
    if timezone.is_naive(value):
        value = timezone.make_aware(value, datetime.UTC)
    try:
        return value.astimezone(datetime.UTC)
    except OverflowError:
        raise DjangoValidationError("out of range", code="invalid") from None


class _UtcIsoDateTimeField(fields.IsoDateTimeField):
    def to_python(self, value: Any) -> Any:
        value = super().to_python(value)
        return _utc(value) if value is not None else None


class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    """An ISO 8601 time filter that compares in UTC (any valid offset, no 500)."""

    field_class = _UtcIsoDateTimeField


class UpdatedAtFilterSet(FilterSet):
    """A FilterSet with ``?updated_at__gte=`` in UTC: an offset PostgreSQL cannot store is a 400,
    not a 500 (list ``"updated_at": ["gte"]`` in the Meta's fields where it belongs)."""

    updated_at__gte = UtcDateTimeFilter(field_name="updated_at", lookup_expr="gte")


class BoundedIdsFilter(filters.ModelMultipleChoiceFilter):
    """A many-to-many filter by ids (`?segments=1&segments=2`) that rejects out-of-range ids."""

    field_class = _BoundedIdsField


def updated_since(queryset: Any, query_params: Any, field: str = "updated_at") -> Any:
    """`?updated_since=` for sync: an ISO 8601 date or time (naive means UTC), compared with
    ``field`` (a change time that moves whenever what the endpoint returns changes)."""
    raw = query_params.get("updated_since")
    if not raw:
        return queryset
    try:
        value = parse_datetime(raw)
        if value is None and (day := parse_date(raw)) is not None:
            value = datetime.datetime.combine(day, datetime.time.min)
        value = _utc(value) if value is not None else None
    except (ValueError, DjangoValidationError):
        value = None
    if value is None:
        raise ValidationError({"updated_since": ["must be an ISO 8601 date or time"]})
    return queryset.filter(**{f"{field}__gte": value})
