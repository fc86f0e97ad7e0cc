from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.serializers import WorkspaceScoped
from experiments.models import (
    Hypothesis,
)
from segments.models import Segment

from ..models import (
    Allocation,
    Decision,
    Investment,
    OptimizationRun,
    RoadmapItem,
    RoadmapVersion,
    Scenario,
    ValueEstimate,
    ValueModel,
    Verdict,
    effort_duration_problem,
    mapping_errors,
)
from ..stale import RunStaleness, run_staleness


class InvestmentSerializer(WorkspaceScoped):
    target_segments = serializers.PrimaryKeyRelatedField(many=True, queryset=Segment.objects.all(),
                                                         required=False)
    hypotheses = serializers.PrimaryKeyRelatedField(many=True, queryset=Hypothesis.objects.all(),
                                                    required=False)
    depends_on = serializers.PrimaryKeyRelatedField(many=True, queryset=Investment.objects.all(),
                                                    required=False)
    value_model = serializers.PrimaryKeyRelatedField(queryset=ValueModel.objects.all(),
                                                     required=False, allow_null=True)
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                         allow_null=True)
    value_per_cost = serializers.FloatField(read_only=True, required=False)
    rice = serializers.FloatField(read_only=True, required=False, allow_null=True)
    ice = serializers.FloatField(read_only=True, required=False)

    class Meta:
        model = Investment
        fields = ["id", "workspace", "workspace_slug", "title", "description", "roadmap", "cost",
                  "effort", "duration_quarters", "target_segments", "hypotheses", "depends_on",
                  "exclusion_group", "must_do", "must_not", "external_ref", "status", "owner", "adoption",
                  "value_model", "value_basis", "horizon_months", "assumed_reach", "assumed_value_per_user",
                  "assumed_lift", "impact", "confidence", "ease", "expected_value", "value_low",
                  "value_high", "value_sources", "value_computed_at", "reach_users",
                  "effort_total", "value_per_cost", "rice", "ice", "rank", "created_at",
                  "updated_at", "changed_at"]
        read_only_fields = ["owner", "status", "expected_value", "value_low", "value_high",
                            "value_sources", "value_computed_at", "reach_users", "effort_total",
                            "rank", "created_at", "updated_at", "changed_at"]

    def validate(self, attrs: dict) -> dict:
        must_do = attrs.get("must_do", getattr(self.instance, "must_do", False))
        must_not = attrs.get("must_not", getattr(self.instance, "must_not", False))
        if must_do and must_not:
            raise serializers.ValidationError("an item cannot be both must-do and must-not")
        problem = effort_duration_problem(
            attrs.get("effort", getattr(self.instance, "effort", {})),
            attrs.get("duration_quarters", getattr(self.instance, "duration_quarters", 1)))
        if problem:
            raise serializers.ValidationError({"effort": [problem]})
        return attrs


class ValueModelSerializer(WorkspaceScoped):
    segment = serializers.PrimaryKeyRelatedField(queryset=Segment.objects.all(), required=False,
                                                 allow_null=True)

    class Meta:
        model = ValueModel
        fields = ["id", "workspace", "workspace_slug", "name", "metric", "kind", "low", "mid",
                  "high", "source", "segment", "metric_spec", "value_days", "fit",
                  "measured_at", "created_at", "updated_at"]
        read_only_fields = ["fit", "measured_at", "created_at", "updated_at"]

    def validate(self, attrs: dict) -> dict:
        def get(name: str) -> object:
            return attrs.get(name, getattr(self.instance, name, None))

        kind = get("kind") or "entered"
        errors = mapping_errors(kind, get("low"), get("mid"), get("high"), get("source"))
        if kind == "measured":
            if not get("segment"):
                errors["segment"] = "a measured mapping needs the segment whose users it reads"
            if not get("metric_spec"):
                errors["metric_spec"] = ('a measured mapping needs the metric per user, e.g. '
                                         '{"kind": "conversion", "event": '
                                         '"onboarding_completed", "window_days": 7}')
        if errors:
            raise serializers.ValidationError({k: [v] for k, v in errors.items()})
        return attrs


class ValueEstimateSerializer(serializers.ModelSerializer):
    class Meta:
        model = ValueEstimate
        fields = ["expected_value", "value_low", "value_high", "sources", "reason", "created_at"]


class ScenarioSerializer(WorkspaceScoped):
    class Meta:
        model = Scenario
        fields = ["id", "workspace", "workspace_slug", "name", "budget", "shares", "capacity",
                  "quarters", "min_coverage", "schedule", "keep_approved", "robust_draws", "frontier_points",
                  "time_limit", "created_at"]
        read_only_fields = ["created_at"]



def _staleness(serializer: serializers.Serializer, run: OptimizationRun) -> RunStaleness:
    """The run's staleness, computed once per run and request (the context's memo)."""
    memo = serializer.context.setdefault("staleness_memo", {})
    if ("run", run.pk) not in memo:
        memo[("run", run.pk)] = run_staleness(run, memo)
    return memo[("run", run.pk)]


class InputChangeSerializer(serializers.Serializer):
    """One input of a run that changed since (planner.staleness.Change)."""

    kind = serializers.ChoiceField(choices=["item", "added", "deleted", "scenario"])
    item_id = serializers.CharField(allow_null=True)
    title = serializers.CharField()
    field = serializers.CharField()
    then = serializers.JSONField(allow_null=True)
    now = serializers.JSONField(allow_null=True)


class AllocationSerializer(serializers.ModelSerializer):
    """Run-time figures (``value``, ``cost``) and, with a ``staleness`` report in the context,
    the same item's figures now and the fields that changed since the run."""

    title = serializers.CharField(source="investment.title", read_only=True)
    value_now = serializers.SerializerMethodField()
    cost_now = serializers.SerializerMethodField()
    status_now = serializers.SerializerMethodField()
    changed = serializers.SerializerMethodField()

    class Meta:
        model = Allocation
        fields = ["investment", "title", "roadmap", "chosen", "start_quarter", "cost", "value",
                  "inclusion_probability", "entry_value", "value_now", "cost_now", "status_now",
                  "changed"]

    def _now(self, alloc: Allocation) -> dict:
        report = self.context.get("staleness")
        return report.item_now(alloc.investment_id) if report is not None else {}

    def get_value_now(self, alloc: Allocation) -> float | None:
        return self._now(alloc).get("value_now")

    def get_cost_now(self, alloc: Allocation) -> float | None:
        return self._now(alloc).get("cost_now")

    def get_status_now(self, alloc: Allocation) -> str | None:
        return self._now(alloc).get("status_now")

    def get_changed(self, alloc: Allocation) -> list[str]:
        return self._now(alloc).get("changed", [])


class RunSerializer(serializers.ModelSerializer):
    """A run; ``stale`` (null: cannot tell, see ``stale_note``) and ``changes`` compare its
    recorded inputs with the current ones."""

    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    stale = serializers.SerializerMethodField()
    stale_note = serializers.SerializerMethodField()
    changes = serializers.SerializerMethodField()

    class Meta:
        model = OptimizationRun
        fields = ["id", "workspace", "scenario", "job", "input_hash", "status", "proven_optimal",
                  "gap", "objective", "best_bound", "plan", "frontier", "robust", "created_at",
                  "finished_at", "stale", "stale_note", "changes"]
        read_only_fields = fields

    def get_stale(self, run: OptimizationRun) -> bool | None:
        return _staleness(self, run).stale

    def get_stale_note(self, run: OptimizationRun) -> str:
        return _staleness(self, run).note

    @extend_schema_field(InputChangeSerializer(many=True))
    def get_changes(self, run: OptimizationRun) -> list[dict]:
        return [c.to_dict() for c in _staleness(self, run).changes]


class RunInputsSerializer(serializers.ModelSerializer):
    class Meta:
        model = OptimizationRun
        fields = ["id", "inputs", "input_hash"]
        read_only_fields = fields


class DecisionSerializer(serializers.ModelSerializer):
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                         allow_null=True)

    class Meta:
        model = Decision
        fields = ["id", "run", "version", "investment", "verdict", "rationale", "decided_by",
                  "decided_at"]
        read_only_fields = ["id", "run", "version", "decided_by", "decided_at"]


class DecideSerializer(serializers.Serializer):
    investment = serializers.IntegerField()
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    rationale = serializers.CharField(max_length=5000)




class RoadmapItemSerializer(serializers.ModelSerializer):
    external_id = serializers.SerializerMethodField()
    external_ref = serializers.CharField(source="investment.external_ref", read_only=True)

    class Meta:
        model = RoadmapItem
        fields = ["investment", "title", "external_id", "external_ref", "roadmap", "state",
                  "start_quarter", "duration_quarters", "value", "cost", "teams", "evidence",
                  "depends_on", "chosen_by_optimizer"]
        read_only_fields = fields

    def get_external_id(self, item: RoadmapItem) -> str:
        from ..roadmap_formats import external_id

        return external_id(item.version.workspace.slug, item.investment_id)


class RoadmapVersionSerializer(serializers.ModelSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    adopted_by = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                              allow_null=True)
    items = RoadmapItemSerializer(many=True, read_only=True)

    class Meta:
        model = RoadmapVersion
        fields = ["id", "workspace", "number", "adopted_from", "adopted_by", "adopted_at",
                  "note", "context", "items"]
        read_only_fields = fields


class AdoptSerializer(serializers.Serializer):
    run = serializers.IntegerField(min_value=1)
    items = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False,
                                  allow_empty=False, max_length=10_000,
                                  help_text="investment ids of the run to adopt (default: the "
                                            "items the optimizer chose)")
    note = serializers.CharField(max_length=5000, required=False, allow_blank=True)


class RoadmapDecideSerializer(serializers.Serializer):
    investment = serializers.IntegerField(min_value=1)
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    rationale = serializers.CharField(max_length=5000)


class RoadmapChangeSerializer(serializers.Serializer):
    """One item's change between two plans (planner.roadmap_diff.Change), with its reasons."""

    investment = serializers.CharField()
    title = serializers.CharField()
    kind = serializers.ChoiceField(choices=["added", "dropped", "moved", "value_changed"])
    before = serializers.DictField(allow_null=True)
    after = serializers.DictField(allow_null=True)
    reasons = serializers.ListField(child=serializers.CharField())


class RoadmapDiffSerializer(serializers.Serializer):
    base = serializers.CharField(help_text="v<number>, or 'no roadmap yet'")
    new = serializers.CharField(help_text="v<number> or run #<id>")
    changes = RoadmapChangeSerializer(many=True)


class RunRoadmapDiffSerializer(RoadmapDiffSerializer):
    stale = serializers.CharField(allow_null=True,
                                  help_text="why the run cannot be adopted, or null")
