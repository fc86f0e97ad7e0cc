"""Serializers of hypotheses, experiments and learnings."""
from __future__ import annotations

from rest_framework import serializers

from accounts.api.serializers import WorkspaceScoped
from experiments.models import (
    ArmSummary,
    Experiment,
    Hypothesis,
    HypothesisStatus,
    HypothesisStatusChange,
    Learning,
    Outcome,
)
from segments.models import Segment


class HypothesisSerializer(WorkspaceScoped):
    segments = serializers.PrimaryKeyRelatedField(many=True, queryset=Segment.objects.all(),
                                                  required=False)
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                         allow_null=True)

    class Meta:
        model = Hypothesis
        fields = ["id", "workspace", "workspace_slug", "statement", "mechanism", "metric",
                  "expected_lift", "expected_lift_low", "expected_lift_high", "basis",
                  "evidence", "measured_lift", "measured_lift_low", "measured_lift_high",
                  "status", "segments", "owner", "exploratory", "guardrail_metrics", "source",
                  "created_at", "updated_at"]
        read_only_fields = ["owner", "created_at", "updated_at", "measured_lift",
                            "measured_lift_low", "measured_lift_high", "status"]


class StatusChangeSerializer(serializers.ModelSerializer):
    changed_by = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                         allow_null=True)

    class Meta:
        model = HypothesisStatusChange
        fields = ["from_status", "to_status", "changed_by", "changed_at", "note"]


class TransitionSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=HypothesisStatus.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="")


class ExperimentSerializer(serializers.ModelSerializer):
    """An experiment's design (its workspace is its hypothesis's); results are read-only and
    come from the analysis job."""

    workspace_slug = serializers.SlugField(read_only=True, source="workspace.slug")
    hypothesis = serializers.PrimaryKeyRelatedField(queryset=Hypothesis.objects.all())
    breakdown_segments = serializers.PrimaryKeyRelatedField(
        many=True, queryset=Segment.objects.all(), required=False)
    analysis_job = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Experiment
        fields = ["id", "workspace_slug", "hypothesis", "name", "kind", "dataset",
                  "segment", "breakdown_segments", "arms", "primary_metric",
                  "guardrail_metrics", "mde", "alpha", "power", "data_source", "assignment",
                  "assignments_rows", "cuped_pre_days", "sequential", "correction", "quasi",
                  "design", "status", "result", "analyzed_at", "analysis_job", "created_at",
                  "updated_at"]
        read_only_fields = ["assignments_rows", "design", "status", "result", "analyzed_at",
                            "created_at", "updated_at"]


class ArmSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = ArmSummary
        fields = ["arm", "metric", "scope", "n", "sum", "sum_sq"]


class SummariesInSerializer(serializers.Serializer):
    rows = serializers.ListField(child=serializers.DictField(), allow_empty=False)


class PowerInSerializer(serializers.Serializer):
    baseline_mean = serializers.FloatField(required=False, allow_null=True, default=None)
    baseline_sd = serializers.FloatField(required=False, allow_null=True, default=None)
    daily_traffic = serializers.FloatField(required=False, allow_null=True, default=None)
    cuped_r2 = serializers.FloatField(required=False, default=0.0, min_value=0.0, max_value=0.99)
    cluster_size = serializers.FloatField(required=False, default=1.0, min_value=1.0)
    icc = serializers.FloatField(required=False, default=0.0, min_value=0.0, max_value=1.0)


class ConcludeSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Outcome.choices)
    now_believe = serializers.CharField()
    decision = serializers.CharField()
    happened = serializers.CharField(required=False, allow_blank=True, default="")
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False,
                                 default=list)
    scope = serializers.CharField(required=False, default="all")


class LearningSerializer(serializers.ModelSerializer):
    workspace_slug = serializers.SlugField(source="workspace.slug", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                         allow_null=True)
    hypothesis_statement = serializers.CharField(source="hypothesis.statement", read_only=True)

    class Meta:
        model = Learning
        fields = ["id", "workspace_slug", "hypothesis", "hypothesis_statement", "experiment",
                  "outcome", "believed", "happened", "now_believe", "decision", "estimates",
                  "tags", "segments", "created_by", "created_at"]
        read_only_fields = fields
