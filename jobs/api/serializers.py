from __future__ import annotations

from rest_framework import serializers

from ..models import Job


class JobSerializer(serializers.ModelSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Job
        fields = ["id", "workspace", "kind", "state", "progress", "message", "error",
                  "input_hash", "attempts", "result", "created_at", "started_at",
                  "heartbeat_at", "finished_at"]
        read_only_fields = fields
