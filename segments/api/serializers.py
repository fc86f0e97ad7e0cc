from __future__ import annotations

from rest_framework import serializers

from ..analytics.rules import MAX_DAYS
from ..models import Refresh, Segment, SegmentSnapshot

# A swept threshold (an event count or an amount): README "Number domains".
MAX_THRESHOLD = 1_000_000


class SegmentSerializer(serializers.ModelSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                         allow_null=True)
    description_text = serializers.SerializerMethodField()
    latest = serializers.SerializerMethodField()
    stale = serializers.SerializerMethodField(
        help_text="the latest snapshot was computed on an older dataset version (null: none)")
    dataset_version = serializers.SerializerMethodField(
        help_text="the dataset version of the latest snapshot (null: not refreshed yet)")
    current_version = serializers.SerializerMethodField(
        help_text="the dataset's current version")

    class Meta:
        model = Segment
        fields = ["id", "workspace", "dataset", "name", "description", "kind", "definition",
                  "description_text", "owner", "assumptions", "archived", "latest", "stale",
                  "dataset_version", "current_version", "created_at", "updated_at"]
        read_only_fields = ["workspace", "owner", "created_at", "updated_at", "latest",
                            "description_text", "stale", "dataset_version", "current_version"]

    def get_stale(self, obj: Segment) -> bool | None:
        from ..analytics.freshness import freshness
        from ..selectors import latest_snapshot

        snap = latest_snapshot(obj)
        if snap is None:
            return None
        return freshness(dataset_version=snap.dataset_version,
                         current_version=obj.dataset.version).stale

    def get_dataset_version(self, obj: Segment) -> int | None:
        from ..selectors import latest_snapshot

        snap = latest_snapshot(obj)
        return None if snap is None else snap.dataset_version

    def get_current_version(self, obj: Segment) -> int:
        return obj.dataset.version

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
    stale = serializers.SerializerMethodField(
        help_text="the dataset has a newer version than the one this snapshot was computed on")
    current_version = serializers.SerializerMethodField(help_text="the dataset's current version")
    freshness = serializers.SerializerMethodField(
        help_text="users then and now, and the sentence pages show ('' when current)")

    class Meta:
        model = SegmentSnapshot
        fields = ["id", "segment", "refresh", "dataset_version", "current_version", "stale",
                  "freshness", "computed_at", "size", "share", "hidden", "signals", "holdout",
                  "drift", "warnings"]
        read_only_fields = fields

    def _freshness(self, obj: SegmentSnapshot) -> dict:
        from ..selectors import snapshot_freshness

        cached = getattr(obj, "_freshness_dict", None)
        if cached is None:
            cached = snapshot_freshness(obj).as_dict()
            obj._freshness_dict = cached  # type: ignore[attr-defined]
        return cached

    def get_stale(self, obj: SegmentSnapshot) -> bool:
        return bool(self._freshness(obj)["stale"])

    def get_current_version(self, obj: SegmentSnapshot) -> int:
        return int(self._freshness(obj)["current_version"])  # type: ignore[call-overload]

    def get_freshness(self, obj: SegmentSnapshot) -> dict:
        return self._freshness(obj)

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
    thresholds = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=MAX_THRESHOLD),
        required=False, max_length=50, help_text="event counts or amounts: 0 to 1,000,000")
    window_days = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_DAYS),
        required=False, max_length=50, help_text="days: 1 to 36,600")


class EstimateSerializer(serializers.Serializer):
    dataset = serializers.IntegerField(help_text="the dataset the rule is evaluated on")
    definition = serializers.JSONField(help_text="the rule tree being built")
