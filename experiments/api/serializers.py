"""Serializers of hypotheses, experiments and learnings."""
from __future__ import annotations

from rest_framework import serializers

from accounts.api.serializers import NumberField, NumbersModelSerializer, WorkspaceScoped
from experiments.models import (
    POWER_INPUTS,
    ArmSummary,
    DecisionRule,
    Experiment,
    Hypothesis,
    HypothesisStatus,
    HypothesisStatusChange,
    Learning,
    Metric,
    Outcome,
    lift_errors,
)
from segments.models import Segment

from ..selectors import forecast_check


class HypothesisSerializer(WorkspaceScoped):
    segments = serializers.PrimaryKeyRelatedField(many=True, queryset=Segment.objects.all(),
                                                  required=False)
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                         allow_null=True)
    forecast_check = serializers.SerializerMethodField(
        help_text="concluded with a measured lift: the expected effect and its stated 80% "
                  "interval beside the measured one, whether it fell inside, realized / "
                  "predicted, and the forecast's P(effect > 0); else null")

    class Meta:
        model = Hypothesis
        fields = ["id", "workspace", "workspace_slug", "statement", "mechanism", "metric",
                  "expected_lift", "expected_lift_low", "expected_lift_high", "basis",
                  "evidence", "measured_lift", "measured_lift_low", "measured_lift_high",
                  "status", "segments", "owner", "exploratory", "guardrail_metrics", "source",
                  "information", "forecast_check", "created_at", "updated_at"]
        read_only_fields = ["owner", "created_at", "updated_at", "measured_lift",
                            "measured_lift_low", "measured_lift_high", "status", "information"]

    def get_forecast_check(self, obj: Hypothesis) -> dict | None:
        return forecast_check(obj)

    def validate(self, attrs: dict) -> dict:
        values = [attrs.get(name, getattr(self.instance, name, None)) for name in
                  ("expected_lift_low", "expected_lift", "expected_lift_high")]
        if values[1] is None:
            values[1] = 0.0  # the model's default
        errors = lift_errors(*values)
        if errors:
            raise serializers.ValidationError({k: [v] for k, v in errors.items()})
        return attrs


class StatusChangeSerializer(serializers.ModelSerializer):
    changed_by = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                         allow_null=True)

    class Meta:
        model = HypothesisStatusChange
        fields = ["from_status", "to_status", "changed_by", "changed_at", "note"]


class TransitionSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=HypothesisStatus.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="")


class ExperimentSerializer(NumbersModelSerializer):
    """An experiment's design (its workspace is its hypothesis's); results are read-only and
    come from the analysis job."""

    workspace_slug = serializers.SlugField(read_only=True, source="workspace.slug")
    hypothesis = serializers.PrimaryKeyRelatedField(queryset=Hypothesis.objects.all())
    breakdown_segments = serializers.PrimaryKeyRelatedField(
        many=True, queryset=Segment.objects.all(), required=False)
    analysis_job = serializers.PrimaryKeyRelatedField(read_only=True)
    primary_metric_ref = serializers.PrimaryKeyRelatedField(
        queryset=Metric.objects.all(), required=False, allow_null=True,
        help_text="a metric of the workspace's library: its definition becomes "
                  "primary_metric")
    guardrail_metric_refs = serializers.PrimaryKeyRelatedField(
        many=True, queryset=Metric.objects.all(), required=False,
        help_text="library metrics: their definitions become guardrail_metrics")
    bayesian = serializers.SerializerMethodField(
        help_text="the Bayesian read of each comparison (GrowthBook's definitions) and the "
                  "prior it used; read-only, from the analysis")
    proposal = serializers.SerializerMethodField(
        help_text="the outcome the workspace's decision rule proposes for the whole "
                  "population, with each check (pass/fail) and why; read-only")

    class Meta:
        model = Experiment
        fields = ["id", "workspace_slug", "hypothesis", "name", "kind", "dataset",
                  "segment", "breakdown_segments", "arms", "primary_metric",
                  "guardrail_metrics", "primary_metric_ref", "guardrail_metric_refs", "mde", "alpha", "power", "data_source", "assignment",
                  "assignments_rows", "cuped_pre_days", "sequential", "correction", "quasi",
                  "design", "cost", "information", "status", "result", "bayesian", "proposal",
                  "analyzed_at", "analysis_job", "created_at", "updated_at"]
        read_only_fields = ["assignments_rows", "design", "information", "status", "result",
                            "analyzed_at", "created_at", "updated_at"]

    def get_bayesian(self, obj: Experiment) -> dict | None:
        result = obj.result or {}
        if result.get("kind") != "ab":
            return None
        return {"prior": result.get("bayes_prior"),
                "rows": [{"metric": r.get("metric"), "scope": r.get("scope"),
                          "arm": r.get("arm"), "primary": r.get("primary"),
                          "relative": (r.get("bayes") or {}).get("relative"),
                          "absolute": (r.get("bayes") or {}).get("absolute")}
                         for r in result.get("rows", [])]}

    def get_proposal(self, obj: Experiment) -> dict | None:
        from experiments.services import experiment_proposal

        if not obj.result:
            return None
        return experiment_proposal(obj).to_dict()


class ArmSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = ArmSummary
        fields = ["arm", "metric", "scope", "n", "sum", "sum_sq"]


class SummariesInSerializer(serializers.Serializer):
    rows = serializers.ListField(child=serializers.DictField(), allow_empty=False)


class PowerInSerializer(serializers.Serializer):
    """The power calculation's inputs; each one given is used, anything else is refused (mde,
    alpha and power are the experiment's design)."""

    baseline_mean = NumberField(required=False, allow_null=True, default=None,
                                min_value=POWER_INPUTS["baseline_mean"][0],
                                max_value=POWER_INPUTS["baseline_mean"][1],
                                help_text="blank: measured in the target segment")
    baseline_sd = NumberField(required=False, allow_null=True, default=None,
                              min_value=POWER_INPUTS["baseline_sd"][0],
                              max_value=POWER_INPUTS["baseline_sd"][1],
                              help_text="continuous metrics only (greater than 0)")
    daily_traffic = NumberField(required=False, allow_null=True, default=None,
                                min_value=POWER_INPUTS["daily_traffic"][0],
                                max_value=POWER_INPUTS["daily_traffic"][1],
                                help_text="eligible users per day; blank: measured")
    cuped_r2 = NumberField(required=False, default=0.0, min_value=POWER_INPUTS["cuped_r2"][0],
                           max_value=POWER_INPUTS["cuped_r2"][1])
    cluster_size = NumberField(required=False, default=1.0,
                               min_value=POWER_INPUTS["cluster_size"][0],
                               max_value=POWER_INPUTS["cluster_size"][1])
    icc = NumberField(required=False, default=0.0, min_value=POWER_INPUTS["icc"][0],
                      max_value=POWER_INPUTS["icc"][1])

    DESIGN = ("mde", "alpha", "power")

    def validate(self, attrs: dict) -> dict:
        extra = [k for k in (self.initial_data or {}) if k not in self.fields]
        errors = {}
        for name in extra:
            errors[name] = [
                "not an input of the power calculation: mde, alpha and power are the "
                "experiment's design (change them on the experiment)" if name in self.DESIGN
                else "unknown field: the power calculation takes "
                     + ", ".join(list(self.fields)[:-1]) + f" and {list(self.fields)[-1]}"]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class ConcludeSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Outcome.choices)
    now_believe = serializers.CharField()
    decision = serializers.CharField()
    happened = serializers.CharField(required=False, allow_blank=True, default="")
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False,
                                 default=list)
    scope = serializers.CharField(required=False, default="all")
    override_reason = serializers.CharField(
        required=False, allow_blank=True, default="",
        help_text="required when the outcome differs from the rule's proposal (see the "
                  "experiment's 'proposal')")


class DecisionRuleSerializer(serializers.ModelSerializer):
    """A workspace's decision rule; the service checks every value (400 naming the field)."""

    workspace_slug = serializers.SlugField(source="workspace.slug", read_only=True)
    updated_by = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                              allow_null=True)
    chance_to_win = NumberField(required=False)
    risk_tolerance = NumberField(required=False)
    prior_mean = NumberField(required=False)
    prior_variance = NumberField(required=False)

    class Meta:
        model = DecisionRule
        fields = ["workspace_slug", "read", "chance_to_win", "risk_tolerance", "prior_proper",
                  "prior_mean", "prior_variance", "updated_by", "updated_at"]
        read_only_fields = ["workspace_slug", "updated_by", "updated_at"]
        extra_kwargs = {"read": {"required": False}, "prior_proper": {"required": False}}


class LearningSerializer(serializers.ModelSerializer):
    workspace_slug = serializers.SlugField(source="workspace.slug", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                         allow_null=True)
    hypothesis_statement = serializers.CharField(source="hypothesis.statement", read_only=True)

    class Meta:
        model = Learning
        fields = ["id", "workspace_slug", "hypothesis", "hypothesis_statement", "experiment",
                  "outcome", "proposed_outcome", "override_reason", "believed", "happened",
                  "now_believe", "decision", "estimates", "tags", "segments", "created_by",
                  "created_at"]
        read_only_fields = fields


class MetricSerializer(WorkspaceScoped):
    """A metric of the workspace's library."""

    class Meta:
        model = Metric
        fields = ["id", "workspace", "workspace_slug", "name", "description", "kind", "event",
                  "value", "numerator_event", "numerator_value", "denominator_event",
                  "denominator_value", "window_days", "direction", "unit", "created_at",
                  "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
