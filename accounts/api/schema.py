"""What every endpoint documents: its error answers and the change-feed parameter."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)

from .serializers import ErrorSerializer

ERRORS = {
    # DRF's validation errors: each field (or non_field_errors / detail) with its messages;
    # a rejected import is {"error": {code, message, where}}.
    400: OpenApiResponse(OpenApiTypes.OBJECT, description="Invalid input, by field"),
    401: OpenApiResponse(ErrorSerializer, description="Not authenticated"),
    403: OpenApiResponse(ErrorSerializer, description="Your role does not allow this"),
    404: OpenApiResponse(ErrorSerializer, description="Not found in your workspaces"),
}
READ_ERRORS = {k: v for k, v in ERRORS.items() if k in (401, 404)}
# Lists also answer 400 to a filter value they cannot use (django-filter, ordering).
LIST_ERRORS = {400: OpenApiResponse(OpenApiTypes.OBJECT, description="Invalid filter, by field"),
               **READ_ERRORS}
SINCE = OpenApiParameter("updated_since", OpenApiTypes.DATETIME,
                         description="only what changed at or after this ISO 8601 time")


def read_actions(serializer: Any, **list_options: Any) -> dict[str, Any]:
    """The schema of ``list`` (200: a page of ``serializer``) and ``retrieve`` (200: one), with
    the errors each answers; ``list_options`` (parameters, description) go to ``list``."""
    return {
        "list": extend_schema(responses={200: serializer(many=True), **LIST_ERRORS},
                              **list_options),
        "retrieve": extend_schema(responses={200: serializer, **READ_ERRORS}),
    }


def read_schema(serializer: Any, **list_options: Any) -> Any:
    """Document a read-only viewset (a class decorator): ``read_actions``."""
    return extend_schema_view(**read_actions(serializer, **list_options))


def crud_schema(serializer: Any, **list_options: Any) -> Any:
    """Document a read-write viewset (a class decorator): ``read_actions``, then ``create``
    (201), ``update`` and ``partial_update`` (200) answering with ``serializer`` and ``destroy``
    (204), with the errors a write answers."""
    return extend_schema_view(
        **read_actions(serializer, **list_options),
        create=extend_schema(responses={201: serializer, **ERRORS}),
        partial_update=extend_schema(responses={200: serializer, **ERRORS}),
        update=extend_schema(responses={200: serializer, **ERRORS}),
        destroy=extend_schema(responses={204: None, **ERRORS}),
    )
