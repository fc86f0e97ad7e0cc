from __future__ import annotations

from typing import Any

from rest_framework import serializers

from jobs.api.serializers import JobSerializer

from ..models import AnalysisKind, BehaviourAnalysis


class AnalysisSerializer(serializers.ModelSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    job = JobSerializer(read_only=True)
    stale = serializers.SerializerMethodField(
        help_text="the dataset has a newer version than the one this analysis was computed on")
    current_version = serializers.SerializerMethodField(help_text="the dataset's current version")
    freshness = serializers.SerializerMethodField(
        help_text="users then and now, and the sentence pages show ('' when current)")

    class Meta:
        model = BehaviourAnalysis
        fields = ["id", "workspace", "dataset", "kind", "params", "dataset_version",
                  "current_version", "stale", "freshness", "job", "result", "created_at"]
        read_only_fields = fields

    def _freshness(self, obj: BehaviourAnalysis) -> dict[str, Any]:
        """segments' one staleness rule; users per (dataset, version) read once per response."""
        from segments.selectors import result_freshness

        cached = getattr(obj, "_freshness_dict", None)
        if cached is None:
            cached = result_freshness(dataset=obj.dataset, dataset_version=obj.dataset_version,
                                      memo=self.context.setdefault("_users_at_version", {})
                                      ).as_dict()
            obj._freshness_dict = cached  # type: ignore[attr-defined]
        return cached

    def get_stale(self, obj: BehaviourAnalysis) -> bool:
        return bool(self._freshness(obj)["stale"])

    def get_current_version(self, obj: BehaviourAnalysis) -> int:
        return int(self._freshness(obj)["current_version"])

    def get_freshness(self, obj: BehaviourAnalysis) -> dict[str, Any]:
        return self._freshness(obj)


class AnalysisCreateSerializer(serializers.Serializer):
    dataset = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=AnalysisKind.choices)
    params = serializers.DictField(
        required=False, default=dict,
        help_text='funnel: {"steps": ["signup", {"event": "feature_used", "filter": {"key": '
                  '"feature", "op": "eq|neq|in|contains", "value": "alerts"}}, "upgrade"], '
                  '"window_days": 14, "mode": "ordered|strict|any_order", ...}; the filter '
                  'key must be one of the event\'s property keys in the catalog (else 400 '
                  'naming steps[i].filter.key). paths: {"start_event" or "end_event", '
                  '"outcome_event" (chosen apart from the end event), "steps": 1-5, "top"}.')


class SaveSegmentSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    step = serializers.IntegerField(required=False, help_text="funnel: drop-off after this step")
    rank = serializers.IntegerField(required=False, help_text="discovery: the behaviour's rank")
    hypothesis = serializers.BooleanField(required=False, default=False,
                                          help_text="discovery: also log an exploratory "
                                                    "hypothesis")
