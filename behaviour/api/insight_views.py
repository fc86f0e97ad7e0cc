"""REST API v1: saved insights (pinned behaviour analyses) of a workspace's dashboard."""

from __future__ import annotations

from rest_framework import viewsets
from rest_framework.exceptions import ValidationError

from accounts import selectors as ws_selectors
from accounts.api.permissions import require_role
from accounts.api.schema import crud_schema
from accounts.api.scoped import ScopedWrites
from accounts.api.serializers import field_invalid

from .insight_serializers import SavedInsightSerializer


@crud_schema(SavedInsightSerializer)
class SavedInsightViewSet(ScopedWrites, viewsets.ModelViewSet):
    """Behaviour analyses saved with their inputs on the workspace's insights dashboard; each
    is re-read on its dataset's newest version. Viewers read; analysts and up write."""

    serializer_class = SavedInsightSerializer
    filterset_fields = ["kind", "dataset"]
    ordering = ["position", "id"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        from behaviour.models import SavedInsight

        return SavedInsight.objects.filter(
            workspace__in=ws_selectors.workspaces_for(self.request.user)).select_related(
            "workspace", "analysis", "dataset").order_by("position", "id")

    def perform_create(self, serializer):  # type: ignore[no-untyped-def]
        from behaviour import insights
        from behaviour import services as bs

        workspace = self._workspace_for_create(serializer)
        d = serializer.validated_data
        if d["dataset"].workspace_id != workspace.pk:
            raise ValidationError({"dataset": [f"{d['dataset'].pk} is not in this workspace"]})
        try:
            serializer.instance = insights.insight_create(
                workspace=workspace, dataset=d["dataset"], name=d["name"], kind=d["kind"],
                params=d.get("params") or {}, user=self.request.user)
        except bs.AnalysisInvalid as exc:
            raise field_invalid(exc) from None

    def perform_update(self, serializer):  # type: ignore[no-untyped-def]
        from behaviour import insights
        from behaviour import services as bs

        insight = serializer.instance
        require_role(self.request.user, insight.workspace_id, self.write_action)
        d = serializer.validated_data
        try:
            if "name" in d:
                insights.insight_rename(insight=insight, name=d["name"])
            if "position" in d:
                insights.insight_place(insight=insight, index=d["position"])
        except bs.AnalysisInvalid as exc:
            raise field_invalid(exc) from None
