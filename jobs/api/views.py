"""REST API v1: jobs (state, progress, error, result), read-only."""

from __future__ import annotations

from rest_framework import viewsets

from accounts.api.schema import read_schema

from .. import selectors
from .serializers import JobSerializer


@read_schema(JobSerializer)
class JobViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = JobSerializer
    filterset_fields = ["state", "kind"]
    ordering_fields = ["created_at", "finished_at"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.jobs_for(self.request.user).order_by("-created_at", "-id")
