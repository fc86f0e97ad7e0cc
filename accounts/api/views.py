"""REST API v1: the workspaces the user belongs to, with the user's role in each."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from .. import selectors as ws_selectors
from ..models import Membership
from ..services import workspace_settings_update
from .permissions import require_role
from .schema import ERRORS, read_schema
from .serializers import WorkspaceSerializer, WorkspaceSettingsSerializer, validated


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

    @extend_schema(request=WorkspaceSettingsSerializer,
                   responses={200: WorkspaceSettingsSerializer, **ERRORS})
    @action(detail=True, methods=["get", "patch"], url_path="settings")
    def workspace_settings(self, request: Request, slug: str | None = None) -> Response:
        """The workspace's settings; PATCH (admins) changes the ones given."""
        workspace = self.get_object()
        if request.method == "PATCH":
            require_role(request.user, workspace.pk, "manage")
            values = validated(WorkspaceSettingsSerializer, request)
            workspace = workspace_settings_update(workspace=workspace, **values)
        return Response({"auto_refresh_segments": workspace.auto_refresh_segments})
