"""REST API v1: jobs (state, progress, error, result), read-only."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets

from accounts.api.schema import LIST_ERRORS, READ_ERRORS

from .. import selectors
from .serializers import JobSerializer


@extend_schema_view(
    list=extend_schema(responses={200: JobSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: JobSerializer, **READ_ERRORS}),
)
class JobViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = JobSerializer
    filterset_fields = ["state", "kind"]
    ordering_fields = ["created_at", "finished_at"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.jobs_for(self.request.user).order_by("-created_at", "-id")
