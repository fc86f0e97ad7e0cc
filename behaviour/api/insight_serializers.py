"""Saved insights in the API: the pinned inputs and what the dashboard shows."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.api.serializers import WorkspaceScoped
from events.models import Dataset

from ..models import AnalysisKind, SavedInsight


class SavedInsightSerializer(WorkspaceScoped):
    dataset = serializers.PrimaryKeyRelatedField(queryset=Dataset.objects.all())
    kind = serializers.ChoiceField(choices=AnalysisKind.choices)
    params = serializers.DictField(required=False, default=dict)
    current = serializers.SerializerMethodField(
        help_text="the result shown: the analysis, the dataset version it was computed on, "
                  "the version being computed (updating_to), a newer version not being computed "
                  "yet (behind: a viewer's read queues nothing) and any error")

    class Meta:
        model = SavedInsight
        fields = ["id", "workspace", "workspace_slug", "dataset", "name", "kind", "params",
                  "position", "analysis", "current", "created_at"]
        read_only_fields = ["position", "analysis", "current", "created_at"]

    def get_fields(self):  # type: ignore[no-untyped-def]
        fields = super().get_fields()
        if self.instance is not None and not isinstance(self.instance, list):
            for name in ("dataset", "kind", "params"):  # the inputs are fixed once saved
                fields[name].read_only = True
            fields["position"].read_only = False
        return fields

    def _may_compute(self, workspace_id: int) -> bool:
        """Whether the caller's read may queue compute (analysts and up; viewers never)."""
        from accounts.models import Membership

        cache = self.context.setdefault("_may_compute", {})
        if workspace_id not in cache:
            request = self.context.get("request")
            m = Membership.objects.filter(user=getattr(request, "user", None),
                                          workspace_id=workspace_id).first()
            cache[workspace_id] = m is not None and m.can("define")
        return cache[workspace_id]

    def get_current(self, obj: SavedInsight) -> dict[str, Any]:
        from behaviour.insights import insight_current

        state = insight_current(obj, start=self._may_compute(obj.workspace_id))
        a = state.shown
        return {"analysis": a.pk if a else None,
                "dataset_version": a.dataset_version if a else None,
                "updating_to": state.updating_to, "behind": state.behind, "error": state.error,
                "result": a.result if a else {}}
