"""REST API v1: hypotheses (with status transitions and history), experiments (design, power,
data, analysis, conclusion) and learnings."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors as ws_selectors
from accounts.api.filters import BoundedIdsFilter, UpdatedAtFilterSet, updated_since
from accounts.api.permissions import checked_object, require_role
from accounts.api.schema import ERRORS, READ_ERRORS, SINCE, crud_schema, read_schema
from accounts.api.scoped import ScopedWrites
from accounts.api.serializers import field_invalid, validated
from experiments import metric_services
from experiments import services as experiment_services
from experiments.api.serializers import (
    ArmSummarySerializer,
    ConcludeSerializer,
    DecisionRuleSerializer,
    ExperimentSerializer,
    HypothesisSerializer,
    LearningSerializer,
    MetricSerializer,
    PowerInSerializer,
    StatusChangeSerializer,
    SummariesInSerializer,
    TransitionSerializer,
)
from experiments.models import Experiment, Hypothesis, Metric
from experiments.services import ExperimentInvalid
from jobs.services import JobFailed
from security import uploads
from segments.models import Segment

from .. import selectors


class HypothesisFilter(UpdatedAtFilterSet):
    segments = BoundedIdsFilter(queryset=Segment.objects.all())

    class Meta:
        model = Hypothesis
        fields = {
            "status": ["exact"],
            "evidence": ["exact"],
            "segments": ["exact"],
            "updated_at": ["gte"],
        }


@crud_schema(HypothesisSerializer, parameters=[SINCE])
class HypothesisViewSet(ScopedWrites, viewsets.ModelViewSet):
    serializer_class = HypothesisSerializer
    related_fields = ("segments",)
    filterset_class = HypothesisFilter
    ordering_fields = ["updated_at", "created_at"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        qs = selectors.hypotheses_for(self.request.user).order_by("-updated_at", "-id")
        return updated_since(qs, self.request.query_params)

    def extra_create(self) -> dict:
        return {"owner": self.request.user}

    def saved_hook(self) -> None:
        if self.action != "create":
            # The investments resting on this hypothesis take its new lift and evidence, in
            # the edit's transaction.
            experiment_services.hypothesis_changed(
                self.saved, reason=f"hypothesis #{self.saved.pk} changed"
            )

    @extend_schema(
        parameters=[OpenApiParameter("workspace", str,
                                     description="a workspace's slug (default: all yours)")],
        responses={200: OpenApiTypes.OBJECT, **READ_ERRORS})
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def calibration(self, request: Request) -> Response:
        """Forecast calibration of each of your workspaces (or the one named): concluded
        hypotheses overall, by author and by evidence level: interval coverage (stated
        intervals read as 80%, Wilson 95% interval), realized / predicted as a ratio of means
        (bootstrap 95% interval, seed 0, 2,000 resamples), and the Brier score of
        P(effect > 0) against "validated"; forecasts without an interval are excluded and
        counted. ``{"results": [{"workspace": slug, "shrink_forecasts", "overall", ...}]}``."""
        slug = request.query_params.get("workspace", "")
        if slug:
            workspaces = [ws_selectors.workspace_get(request.user, slug)[0]]
        else:
            workspaces = list(ws_selectors.workspaces_for(request.user).order_by("slug"))
        return Response({"results": [
            {"workspace": ws.slug, "shrink_forecasts": ws.shrink_forecasts,
             **selectors.workspace_calibration(ws).to_dict()} for ws in workspaces]})

    @extend_schema(request=TransitionSerializer, responses={200: HypothesisSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def transition(self, request: Request, pk: str | None = None) -> Response:
        """Move along proposed -> prioritized -> testing -> validated | invalidated |
        inconclusive; who and when are recorded."""
        hypothesis = checked_object(self, "define")
        values = validated(TransitionSerializer, request)
        try:
            hypothesis = experiment_services.hypothesis_transition(
                hypothesis=hypothesis,
                to_status=values["status"],
                user=request.user,
                note=values["note"],
            )
        except ExperimentInvalid as exc:
            raise field_invalid(exc) from None
        experiment_services.hypothesis_changed(
            hypothesis, reason=f"hypothesis #{hypothesis.pk} now {hypothesis.status}"
        )
        return Response(HypothesisSerializer(self.get_queryset().get(pk=hypothesis.pk)).data)

    @extend_schema(responses={200: StatusChangeSerializer(many=True), **READ_ERRORS})
    @action(detail=True, methods=["get"], filter_backends=[])
    def history(self, request: Request, pk: str | None = None) -> Response:
        """Every status change with who made it and when."""
        hypothesis = self.get_object()
        page = self.paginate_queryset(hypothesis.status_changes.select_related("changed_by"))
        return self.get_paginated_response(StatusChangeSerializer(page, many=True).data)


@crud_schema(ExperimentSerializer)
class ExperimentViewSet(viewsets.ModelViewSet):
    """Experiments: design, data (assignment table or per-arm summaries), analysis, conclusion."""

    serializer_class = ExperimentSerializer
    filterset_fields = {
        "hypothesis": ["exact"],
        "status": ["exact"],
        "kind": ["exact"],
        "segment": ["exact"],
    }
    ordering_fields = ["created_at", "updated_at", "name"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.experiments_for(self.request.user).order_by("-created_at", "-id")

    def _save(self, serializer, instance: Experiment | None = None):  # type: ignore[no-untyped-def]
        data = dict(serializer.validated_data)
        hypothesis = data.get("hypothesis") or (instance.hypothesis if instance else None)
        # The hypothesis must be one the caller can see; writing needs "define" there.
        if not selectors.hypotheses_for(self.request.user).filter(pk=hypothesis.pk).exists():
            raise ValidationError(
                {"hypothesis": [f"{hypothesis.pk} is not a hypothesis you can see"]}
            )
        require_role(self.request.user, hypothesis.workspace_id, "define")
        if (
            instance is not None
            and data.get("hypothesis")
            and data["hypothesis"].workspace_id != instance.workspace_id
        ):
            raise ValidationError({"hypothesis": ["must stay in the experiment's workspace"]})
        breakdown = data.pop("breakdown_segments", None)
        primary_ref = data.pop("primary_metric_ref", None)
        guard_refs = data.pop("guardrail_metric_refs", None)
        experiment = instance or Experiment()
        for key, value in data.items():
            setattr(experiment, key, value)
        experiment.workspace_id = hypothesis.workspace_id
        if "primary_metric" in data and primary_ref is None:
            experiment.primary_metric_ref = None  # a definition of its own, not the library's
        if "guardrail_metrics" in data and guard_refs is None and experiment.pk:
            guard_refs_clear = True
        else:
            guard_refs_clear = False
        try:
            if primary_ref is not None or guard_refs is not None:
                primary = primary_ref or experiment.primary_metric_ref
                if primary is None:
                    raise ExperimentInvalid("primary_metric_ref", "pick the primary metric from "
                                                                  "the library too")
                metric_services.experiment_use_metrics(experiment, primary, guard_refs or [])
            with transaction.atomic():
                experiment_services.experiment_save(
                    experiment, breakdown=breakdown, user=self.request.user
                )
                if guard_refs is not None or guard_refs_clear:
                    metric_services.experiment_link_metrics(experiment, guard_refs or [])
        except ExperimentInvalid as exc:
            raise field_invalid(exc) from None
        except IntegrityError:
            raise ValidationError({"name": ["already exists in this workspace"]}) from None
        return experiment

    def perform_create(self, serializer):  # type: ignore[no-untyped-def]
        serializer.instance = self._save(serializer)

    def perform_update(self, serializer):  # type: ignore[no-untyped-def]
        serializer.instance = self._save(serializer, serializer.instance)

    def perform_destroy(self, instance):  # type: ignore[no-untyped-def]
        require_role(self.request.user, instance.workspace_id, "define")
        instance.delete()

    @extend_schema(request=None, responses={200: ExperimentSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str | None = None) -> Response:
        """Mark running; the hypothesis moves to testing."""
        try:
            experiment = experiment_services.experiment_start(
                experiment=checked_object(self, "define"), user=request.user
            )
        except ExperimentInvalid as exc:
            raise field_invalid(exc) from None
        return Response(ExperimentSerializer(experiment).data)

    @extend_schema(request=PowerInSerializer, responses={200: dict, **ERRORS})
    @action(detail=True, methods=["post"])
    def power(self, request: Request, pk: str | None = None) -> Response:
        """Required sample size per arm and expected duration from the segment's traffic."""
        experiment = checked_object(self, "define")
        values = validated(PowerInSerializer, request)
        try:
            design = experiment_services.experiment_power(
                experiment=experiment, **values
            )
        except ExperimentInvalid as exc:
            raise field_invalid(exc) from None
        except JobFailed as exc:
            raise ValidationError({"dataset": [str(exc)]}) from None
        return Response(design)

    @extend_schema(methods=["get"], responses={200: ArmSummarySerializer(many=True), **READ_ERRORS})
    @extend_schema(
        methods=["put"],
        request=SummariesInSerializer,
        responses={200: ArmSummarySerializer(many=True), **ERRORS},
    )
    @action(detail=True, methods=["get", "put"], filter_backends=[], pagination_class=None)
    def summaries(self, request: Request, pk: str | None = None) -> Response:
        """Per-arm summary statistics (n, sum, sum of squares) per metric and scope."""
        if request.method == "GET":
            experiment = self.get_object()
        else:
            experiment = checked_object(self, "define")
            values = validated(SummariesInSerializer, request)
            try:
                experiment_services.summaries_set(
                    experiment=experiment, rows=values["rows"]
                )
            except ExperimentInvalid as exc:
                raise field_invalid(exc) from None
        return Response(ArmSummarySerializer(experiment.summaries.all(), many=True).data)

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        },
        responses={200: ExperimentSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def assignments(self, request: Request, pk: str | None = None) -> Response:
        """Upload the assignment table: CSV with user_id, arm, assigned_at."""
        experiment = checked_object(self, "define")
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": ["attach the CSV as 'file'"]})
        try:
            experiment_services.assignments_upload(
                experiment=experiment, data=uploads.experiment_table(upload), filename=upload.name
            )
        except ExperimentInvalid as exc:
            raise field_invalid(exc) from None
        return Response(ExperimentSerializer(experiment).data)

    @extend_schema(request=None, responses={202: dict, **ERRORS})
    @action(detail=True, methods=["post"])
    def analyze(self, request: Request, pk: str | None = None) -> Response:
        """Queue the analysis job; poll /api/v1/jobs/{id}/ or this experiment's result."""
        try:
            job = experiment_services.analyze_start(experiment=checked_object(self, "define"),
                                                    user=request.user)
        except ExperimentInvalid as exc:
            raise field_invalid(exc) from None
        return Response({"job": job.pk, "state": job.state}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=ConcludeSerializer, responses={201: LearningSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def conclude(self, request: Request, pk: str | None = None) -> Response:
        """Record the learning; the hypothesis and its investments take the measured lift."""
        experiment = checked_object(self, "define")
        values = validated(ConcludeSerializer, request)
        try:
            learning = experiment_services.experiment_conclude(
                experiment=experiment, user=request.user, **values
            )
        except ExperimentInvalid as exc:
            raise field_invalid(exc) from None
        return Response(LearningSerializer(learning).data, status=status.HTTP_201_CREATED)


class DecisionRuleViewSet(viewsets.GenericViewSet):
    """A workspace's decision rule: which read proposes an experiment's outcome (frequentist or
    Bayesian), the Bayesian thresholds and the prior. Reading needs membership; changing it
    the manage role."""

    serializer_class = DecisionRuleSerializer
    lookup_field = "slug"
    lookup_value_regex = "[-a-zA-Z0-9_]+"
    pagination_class = None
    filter_backends: list = []

    def _workspace(self, slug: str, action_name: str):  # type: ignore[no-untyped-def]
        from accounts.models import Workspace

        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            from django.http import Http404

            raise Http404("No such workspace")
        require_role(self.request.user, workspace.pk, action_name)
        return workspace

    @extend_schema(responses={200: DecisionRuleSerializer, **READ_ERRORS})
    def retrieve(self, request: Request, slug: str | None = None) -> Response:
        workspace = self._workspace(slug or "", "view")
        rule = experiment_services.decision_rule_get(workspace.pk)
        rule.workspace = workspace
        return Response(DecisionRuleSerializer(rule).data)

    @extend_schema(request=DecisionRuleSerializer, responses={200: DecisionRuleSerializer,
                                                              **ERRORS})
    def partial_update(self, request: Request, slug: str | None = None) -> Response:
        workspace = self._workspace(slug or "", "manage")
        values = validated(DecisionRuleSerializer, request, partial=True)
        try:
            rule = experiment_services.decision_rule_set(workspace_id=workspace.pk,
                                                         user=request.user, **values)
        except ExperimentInvalid as exc:
            raise field_invalid(exc) from None
        return Response(DecisionRuleSerializer(rule).data)

    @extend_schema(request=DecisionRuleSerializer, responses={200: DecisionRuleSerializer,
                                                              **ERRORS})
    def update(self, request: Request, slug: str | None = None) -> Response:
        return self.partial_update(request, slug)


@read_schema(
    LearningSerializer,
    parameters=[
        OpenApiParameter("q", str, description="search text"),
        OpenApiParameter("segment", int),
        OpenApiParameter("outcome", str),
        OpenApiParameter("since", str, description="ISO date"),
        OpenApiParameter("until", str, description="ISO date"),
    ],
)
class LearningViewSet(viewsets.ReadOnlyModelViewSet):
    """The learnings library: what each concluded test taught, failures included."""

    serializer_class = LearningSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        p = self.request.query_params
        segment = p.get("segment")
        if segment is not None and not segment.isdigit():
            raise ValidationError({"segment": ["must be a segment id"]})
        for key in ("since", "until"):
            if p.get(key):
                try:
                    import pandas as pd

                    pd.Timestamp(p[key])
                except ValueError:
                    raise ValidationError({key: ["must be an ISO date"]}) from None
        return selectors.learnings_for(
            self.request.user,
            query=p.get("q", ""),
            segment=int(segment) if segment else None,
            outcome=p.get("outcome", ""),
            since=p.get("since"),
            until=p.get("until"),
        )


@crud_schema(MetricSerializer, parameters=[SINCE])
class MetricViewSet(ScopedWrites, viewsets.ModelViewSet):
    """The metric library: named metrics defined once per workspace, picked by experiments."""

    serializer_class = MetricSerializer
    filterset_fields = {"kind": ["exact"], "name": ["exact"]}
    ordering_fields = ["name", "updated_at"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        qs = Metric.objects.filter(
            workspace__in=ws_selectors.workspaces_for(self.request.user)
        ).select_related("workspace").order_by("name", "id")
        return updated_since(qs, self.request.query_params)

    def check_write(self, serializer, workspace) -> None:  # type: ignore[no-untyped-def]
        metric = Metric(workspace=workspace)
        if serializer.instance is not None:
            metric = Metric(**{f.attname: getattr(serializer.instance, f.attname)
                               for f in Metric._meta.concrete_fields})
        for key, value in serializer.validated_data.items():
            setattr(metric, key, value)
        try:
            metric_services.metric_check(metric)
        except ExperimentInvalid as exc:
            raise field_invalid(exc) from None
        if Metric.objects.filter(workspace=workspace, name=metric.name).exclude(
                pk=metric.pk).exists():
            raise ValidationError({"name": [f"a metric named '{metric.name}' exists in this "
                                            "workspace"]})
