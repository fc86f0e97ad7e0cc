"""What every endpoint documents: its error answers and the change-feed parameter."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

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
