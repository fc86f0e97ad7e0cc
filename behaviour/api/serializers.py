from __future__ import annotations

from rest_framework import serializers

from jobs.api.serializers import JobSerializer

from ..models import AnalysisKind, BehaviourAnalysis


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
