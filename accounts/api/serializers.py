from __future__ import annotations

from rest_framework import serializers

from ..models import Workspace


class WorkspaceSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Workspace
        fields = ["slug", "name", "role", "created_at"]

    def get_role(self, obj: Workspace) -> str | None:
        roles = self.context.get("roles", {})
        return roles.get(obj.pk)


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
