from __future__ import annotations

from rest_framework import serializers

from jobs.api.serializers import JobSerializer

from ..models import (
    AnalysisKind,
    BehaviourAnalysis,
    Dataset,
    Erasure,
    Import,
    Refresh,
    Segment,
    SegmentSnapshot,
)


class DatasetSerializer(serializers.ModelSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Dataset
        fields = ["id", "workspace", "name", "description", "version", "total_events",
                  "total_users", "id_mode", "created_at", "updated_at"]
        read_only_fields = ["version", "total_events", "total_users", "id_mode", "created_at",
                            "updated_at"]


class DatasetCreateSerializer(serializers.Serializer):
    workspace = serializers.SlugField()
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class CatalogSerializer(serializers.ModelSerializer):
    class Meta:
        model = Dataset
        fields = ["id", "version", "event_catalog", "attribute_catalog"]


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


class SegmentSerializer(serializers.ModelSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                         allow_null=True)
    description_text = serializers.SerializerMethodField()
    latest = serializers.SerializerMethodField()

    class Meta:
        model = Segment
        fields = ["id", "workspace", "dataset", "name", "description", "kind", "definition",
                  "description_text", "owner", "assumptions", "archived", "latest",
                  "created_at", "updated_at"]
        read_only_fields = ["workspace", "owner", "created_at", "updated_at", "latest",
                            "description_text"]

    def get_description_text(self, obj: Segment) -> str:
        from ..analytics.rules import describe_rule

        if obj.kind == "rule":
            try:
                return describe_rule(obj.definition)
            except ValueError:
                return ""
        if obj.kind == "rfm":
            return f"RFM class: {obj.definition.get('rfm')}"
        return "saved cluster suggestion"

    def get_latest(self, obj: Segment) -> dict | None:
        from ..selectors import latest_snapshot

        snap = latest_snapshot(obj)
        if snap is None:
            return None
        return SnapshotSerializer(snap).data


class SegmentWriteSerializer(serializers.Serializer):
    dataset = serializers.IntegerField()
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=["rule", "rfm", "cluster"], default="rule")
    definition = serializers.JSONField()
    description = serializers.CharField(required=False, allow_blank=True, default="")
    assumptions = serializers.CharField(required=False, allow_blank=True, default="")


class SegmentUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    definition = serializers.JSONField(required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    assumptions = serializers.CharField(required=False, allow_blank=True)
    archived = serializers.BooleanField(required=False)


class SnapshotSerializer(serializers.ModelSerializer):
    signals = serializers.SerializerMethodField()
    size = serializers.SerializerMethodField()

    class Meta:
        model = SegmentSnapshot
        fields = ["id", "segment", "refresh", "dataset_version", "computed_at", "size", "share",
                  "hidden", "signals", "holdout", "drift", "warnings"]
        read_only_fields = fields

    def get_signals(self, obj: SegmentSnapshot) -> dict:
        # Below the minimum displayable size, nothing about the members is shown.
        return {} if obj.hidden else obj.signals

    def get_size(self, obj: SegmentSnapshot) -> int | None:
        return None if obj.hidden else obj.size


class RefreshSerializer(serializers.ModelSerializer):
    class Meta:
        model = Refresh
        fields = ["id", "dataset", "job", "dataset_version", "as_of", "baseline", "summary",
                  "created_at", "finished_at"]
        read_only_fields = fields


class RefreshStartSerializer(serializers.Serializer):
    dataset = serializers.IntegerField()


class SweepSerializer(serializers.Serializer):
    path = serializers.CharField(help_text="path of the behavioural node, e.g. all[0]")
    thresholds = serializers.ListField(child=serializers.IntegerField(min_value=0),
                                       required=False, max_length=50)
    window_days = serializers.ListField(child=serializers.IntegerField(min_value=1),
                                        required=False, max_length=50)


class AnalysisSerializer(serializers.ModelSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    job = JobSerializer(read_only=True)

    class Meta:
        model = BehaviourAnalysis
        fields = ["id", "workspace", "dataset", "kind", "params", "dataset_version", "job",
                  "result", "created_at"]
        read_only_fields = fields


class AnalysisCreateSerializer(serializers.Serializer):
    dataset = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=AnalysisKind.choices)
    params = serializers.DictField(required=False, default=dict)


class SaveSegmentSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    step = serializers.IntegerField(required=False, help_text="funnel: drop-off after this step")
    rank = serializers.IntegerField(required=False, help_text="discovery: the behaviour's rank")
    hypothesis = serializers.BooleanField(required=False, default=False,
                                          help_text="discovery: also log an exploratory "
                                                    "hypothesis")
