"""REST API v1: the workspaces the user belongs to, with the user's role in each."""

from __future__ import annotations

from rest_framework import viewsets

from .. import selectors as ws_selectors
from ..models import Membership
from .schema import read_schema
from .serializers import WorkspaceSerializer


@read_schema(WorkspaceSerializer)
class WorkspaceViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = WorkspaceSerializer
    lookup_field = "slug"
    ordering_fields = ["name", "created_at"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return ws_selectors.workspaces_for(self.request.user).order_by("name")

    def get_serializer_context(self):  # type: ignore[no-untyped-def]
        ctx = super().get_serializer_context()
        if self.request.user.is_authenticated:
            ctx["roles"] = dict(Membership.objects.filter(user=self.request.user)
                                .values_list("workspace_id", "role"))
        return ctx
