from __future__ import annotations

from rest_framework import serializers

from jobs.api.serializers import JobSerializer

from ..models import Dataset, Erasure, Import


class DatasetSerializer(serializers.ModelSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Dataset
        fields = ["id", "workspace", "name", "description", "version", "total_events",
                  "total_users", "id_mode", "event_kinds", "retention_start_event",
                  "retention_return_events", "created_at", "updated_at"]
        read_only_fields = ["version", "total_events", "total_users", "id_mode", "created_at",
                            "updated_at"]


class DatasetRetentionSerializer(serializers.Serializer):
    """A change of the event kinds and the retention definition (PATCH; each field optional).

    ``event_kinds``: {event name: "activity" | "system"}, merged into the overrides (an entry
    equal to the default kind removes the override). ``retention_start_event``: an event name,
    or "" / "signup" for signup. ``retention_return_events``: event names; [] means every
    activity event."""

    event_kinds = serializers.JSONField(required=False)
    retention_start_event = serializers.CharField(required=False, allow_blank=True,
                                                  max_length=200)
    retention_return_events = serializers.JSONField(required=False)


class DatasetCreateSerializer(serializers.Serializer):
    workspace = serializers.SlugField()
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class CatalogQuerySerializer(serializers.Serializer):
    """A page of the event catalog: most frequent names first, optionally only the names
    holding ``q`` (case-insensitive)."""

    page = serializers.IntegerField(min_value=1, max_value=1_000_000, default=1)
    page_size = serializers.IntegerField(min_value=1, max_value=500, default=100)
    q = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class CatalogSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField()
    event_count = serializers.IntegerField(help_text="event names matching q (all without q)")
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    event_catalog = serializers.ListField(
        child=serializers.DictField(), help_text="this page's event names: count, distinct "
        "users, first/last seen, weekly counts, property keys")
    attribute_catalog = serializers.ListField(child=serializers.DictField())


class ImportSerializer(serializers.ModelSerializer):
    dataset = serializers.PrimaryKeyRelatedField(read_only=True)
    job = JobSerializer(read_only=True)

    class Meta:
        model = Import
        fields = ["id", "dataset", "status", "events_name", "users_name", "input_hash",
                  "options", "rows_read", "rows_kept", "rows_added", "dataset_version",
                  "error", "job", "created_at", "finished_at"]
        read_only_fields = fields


class ImportReportSerializer(serializers.ModelSerializer):
    class Meta:
        model = Import
        fields = ["id", "status", "rows_read", "rows_kept", "rows_added", "report", "error"]
        read_only_fields = fields


class ImportCreateSerializer(serializers.Serializer):
    dataset = serializers.IntegerField()
    events = serializers.FileField(required=False)
    users = serializers.FileField(required=False)
    format = serializers.ChoiceField(choices=["auto", "csv", "parquet", "jsonl"], default="auto")
    timezone = serializers.CharField(required=False, allow_blank=True, default="")
    mapping = serializers.JSONField(required=False, default=dict,
                                    help_text='e.g. {"user_id": "customer", "timestamp": "ts"}')
    pseudonymize = serializers.BooleanField(
        required=False, default=False,
        help_text="replace every user id by HMAC-SHA256(PSEUDONYMIZATION_KEY, id) before "
                  "anything is stored")

    def validate_mapping(self, value: object) -> dict[str, str]:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise serializers.ValidationError("mapping must be an object of column names")
        return value

    def validate(self, attrs: dict) -> dict:
        if not attrs.get("events") and not attrs.get("users"):
            raise serializers.ValidationError("give an events file, a users file or both")
        return attrs


class ErasureRequestSerializer(serializers.Serializer):
    user_id = serializers.CharField(max_length=1000, trim_whitespace=True,
                                    help_text="the id as imported; a pseudonymized dataset also "
                                              "takes the raw id (hashed with the server's key)")
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)


class ErasureSerializer(serializers.ModelSerializer):
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    state = serializers.SerializerMethodField()

    class Meta:
        model = Erasure
        fields = ["id", "dataset", "dataset_name", "requested_by", "reason", "job", "state",
                  "counts", "created_at", "finished_at"]
        read_only_fields = fields

    def get_state(self, obj: Erasure) -> str:
        return obj.job.state if obj.job_id and obj.job else ("succeeded" if obj.finished_at
                                                              else "queued")
