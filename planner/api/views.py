"""REST API v1 for the planner: hypotheses, investments (the ranked backlog), scenarios,
optimizer runs with allocations and the approved roadmap, council decisions."""

from __future__ import annotations

from django.db import IntegrityError
from django.http import Http404, HttpResponse
from django_filters.rest_framework import FilterSet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors as ws_selectors
from accounts.api.filters import BoundedIdsFilter, UtcDateTimeFilter, updated_since
from accounts.api.permissions import require_role
from accounts.api.schema import ERRORS, LIST_ERRORS, READ_ERRORS, SINCE
from jobs.services import JobFailed
from security import uploads
from segments.models import Segment

from .. import experiment_services, selectors, services
from ..experiment_services import ExperimentInvalid
from ..models import Experiment, Hypothesis, Investment, OptimizationRun
from .serializers import (
    AllocationSerializer,
    ArmSummarySerializer,
    ConcludeSerializer,
    DecideSerializer,
    DecisionSerializer,
    ExperimentSerializer,
    HypothesisSerializer,
    InvestmentSerializer,
    LearningSerializer,
    PowerInSerializer,
    RunInputsSerializer,
    RunSerializer,
    ScenarioSerializer,
    StatusChangeSerializer,
    SummariesInSerializer,
    TransitionSerializer,
    ValueEstimateSerializer,
)


class HypothesisFilter(FilterSet):
    segments = BoundedIdsFilter(queryset=Segment.objects.all())
    updated_at__gte = UtcDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Hypothesis
        fields = {"status": ["exact"], "evidence": ["exact"], "segments": ["exact"],
                  "updated_at": ["gte"]}


class InvestmentFilter(FilterSet):
    target_segments = BoundedIdsFilter(queryset=Segment.objects.all())
    updated_at__gte = UtcDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Investment
        fields = {"roadmap": ["exact"], "status": ["exact"], "target_segments": ["exact"],
                  "workspace__slug": ["exact"], "updated_at": ["gte"]}


class ScopedWrites:
    """Create in a workspace the caller may `action` in; related objects from that workspace."""

    write_action = "define"
    related_fields: tuple[str, ...] = ()

    def _workspace_for_create(self, serializer):  # type: ignore[no-untyped-def]
        workspace, _ = ws_selectors.workspace_get(self.request.user,
                                                   serializer.validated_data.pop("workspace"))
        require_role(self.request.user, workspace.pk, self.write_action)
        return workspace

    def _check_related(self, serializer, workspace) -> None:  # type: ignore[no-untyped-def]
        for name in self.related_fields:
            for obj in serializer.validated_data.get(name, []):
                if obj.workspace_id != workspace.pk:
                    raise ValidationError({name: [f"{obj.pk} is not in this workspace"]})

    def perform_create(self, serializer):  # type: ignore[no-untyped-def]
        workspace = self._workspace_for_create(serializer)
        self._check_related(serializer, workspace)
        try:
            self.saved = serializer.save(workspace=workspace, **self.extra_create())
        except IntegrityError:
            raise ValidationError({"name": ["already exists in this workspace"]}) from None

    def perform_update(self, serializer):  # type: ignore[no-untyped-def]
        require_role(self.request.user, serializer.instance.workspace_id, self.write_action)
        self._check_related(serializer, serializer.instance.workspace)
        self.saved = serializer.save()

    def perform_destroy(self, instance):  # type: ignore[no-untyped-def]
        require_role(self.request.user, instance.workspace_id, self.write_action)
        instance.delete()

    def extra_create(self) -> dict:
        return {}


@extend_schema_view(
    list=extend_schema(responses={200: HypothesisSerializer(many=True), **LIST_ERRORS},
                       parameters=[SINCE]),
    retrieve=extend_schema(responses={200: HypothesisSerializer, **READ_ERRORS}),
    create=extend_schema(responses={201: HypothesisSerializer, **ERRORS}),
    partial_update=extend_schema(responses={200: HypothesisSerializer, **ERRORS}),
    update=extend_schema(responses={200: HypothesisSerializer, **ERRORS}),
    destroy=extend_schema(responses={204: None, **ERRORS}),
)
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

    def perform_update(self, serializer):  # type: ignore[no-untyped-def]
        super().perform_update(serializer)
        # The investments resting on this hypothesis take its new lift and evidence.
        for investment in self.saved.investments.all():
            services.investment_revalue(investment=investment,
                                        reason=f"hypothesis #{self.saved.pk} changed")

    @extend_schema(request=TransitionSerializer, responses={200: HypothesisSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def transition(self, request: Request, pk: str | None = None) -> Response:
        """Move along proposed -> prioritized -> testing -> validated | invalidated |
        inconclusive; who and when are recorded."""
        hypothesis = self.get_object()
        require_role(request.user, hypothesis.workspace_id, "define")
        body = TransitionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            hypothesis = experiment_services.hypothesis_transition(
                hypothesis=hypothesis, to_status=body.validated_data["status"],
                user=request.user, note=body.validated_data["note"])
        except ExperimentInvalid as exc:
            raise ValidationError({exc.field: [exc.message]}) from None
        for investment in hypothesis.investments.all():
            services.investment_revalue(investment=investment,
                                        reason=f"hypothesis #{hypothesis.pk} now "
                                               f"{hypothesis.status}")
        return Response(HypothesisSerializer(self.get_queryset().get(pk=hypothesis.pk)).data)

    @extend_schema(responses={200: StatusChangeSerializer(many=True), **READ_ERRORS})
    @action(detail=True, methods=["get"], filter_backends=[])
    def history(self, request: Request, pk: str | None = None) -> Response:
        """Every status change with who made it and when."""
        hypothesis = self.get_object()
        page = self.paginate_queryset(hypothesis.status_changes.select_related("changed_by"))
        return self.get_paginated_response(StatusChangeSerializer(page, many=True).data)


def _invalid(exc: ExperimentInvalid) -> ValidationError:
    return ValidationError({exc.field: [exc.message]})


@extend_schema_view(
    list=extend_schema(responses={200: ExperimentSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: ExperimentSerializer, **READ_ERRORS}),
    create=extend_schema(responses={201: ExperimentSerializer, **ERRORS}),
    partial_update=extend_schema(responses={200: ExperimentSerializer, **ERRORS}),
    update=extend_schema(responses={200: ExperimentSerializer, **ERRORS}),
    destroy=extend_schema(responses={204: None, **ERRORS}),
)
class ExperimentViewSet(viewsets.ModelViewSet):
    """Experiments: design, data (assignment table or per-arm summaries), analysis, conclusion."""

    serializer_class = ExperimentSerializer
    filterset_fields = {"hypothesis": ["exact"], "status": ["exact"], "kind": ["exact"],
                        "segment": ["exact"]}
    ordering_fields = ["created_at", "updated_at", "name"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.experiments_for(self.request.user).order_by("-created_at", "-id")

    def _save(self, serializer, instance: Experiment | None = None):  # type: ignore[no-untyped-def]
        data = dict(serializer.validated_data)
        hypothesis = data.get("hypothesis") or (instance.hypothesis if instance else None)
        # The hypothesis must be one the caller can see; writing needs "define" there.
        if not selectors.hypotheses_for(self.request.user).filter(pk=hypothesis.pk).exists():
            raise ValidationError({"hypothesis": [f"{hypothesis.pk} is not a hypothesis you "
                                                  "can see"]})
        require_role(self.request.user, hypothesis.workspace_id, "define")
        if instance is not None and data.get("hypothesis") and \
                data["hypothesis"].workspace_id != instance.workspace_id:
            raise ValidationError({"hypothesis": ["must stay in the experiment's workspace"]})
        breakdown = data.pop("breakdown_segments", None)
        experiment = instance or Experiment()
        for key, value in data.items():
            setattr(experiment, key, value)
        try:
            experiment_services.experiment_save(experiment, breakdown=breakdown,
                                                user=self.request.user)
        except ExperimentInvalid as exc:
            raise _invalid(exc) from None
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

    def _writable(self) -> Experiment:
        experiment = self.get_object()
        require_role(self.request.user, experiment.workspace_id, "define")
        return experiment

    @extend_schema(request=None, responses={200: ExperimentSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str | None = None) -> Response:
        """Mark running; the hypothesis moves to testing."""
        try:
            experiment = experiment_services.experiment_start(experiment=self._writable(),
                                                              user=request.user)
        except ExperimentInvalid as exc:
            raise _invalid(exc) from None
        return Response(ExperimentSerializer(experiment).data)

    @extend_schema(request=PowerInSerializer, responses={200: dict, **ERRORS})
    @action(detail=True, methods=["post"])
    def power(self, request: Request, pk: str | None = None) -> Response:
        """Required sample size per arm and expected duration from the segment's traffic."""
        experiment = self._writable()
        body = PowerInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            design = experiment_services.experiment_power(experiment=experiment,
                                                          **body.validated_data)
        except ExperimentInvalid as exc:
            raise _invalid(exc) from None
        except JobFailed as exc:
            raise ValidationError({"dataset": [str(exc)]}) from None
        return Response(design)

    @extend_schema(methods=["get"], responses={200: ArmSummarySerializer(many=True),
                                               **READ_ERRORS})
    @extend_schema(methods=["put"], request=SummariesInSerializer,
                   responses={200: ArmSummarySerializer(many=True), **ERRORS})
    @action(detail=True, methods=["get", "put"], filter_backends=[], pagination_class=None)
    def summaries(self, request: Request, pk: str | None = None) -> Response:
        """Per-arm summary statistics (n, sum, sum of squares) per metric and scope."""
        if request.method == "GET":
            experiment = self.get_object()
        else:
            experiment = self._writable()
            body = SummariesInSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            try:
                experiment_services.summaries_set(experiment=experiment,
                                                  rows=body.validated_data["rows"])
            except ExperimentInvalid as exc:
                raise _invalid(exc) from None
        return Response(ArmSummarySerializer(experiment.summaries.all(), many=True).data)

    @extend_schema(request={"multipart/form-data": {"type": "object", "properties": {
        "file": {"type": "string", "format": "binary"}}}},
        responses={200: ExperimentSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def assignments(self, request: Request, pk: str | None = None) -> Response:
        """Upload the assignment table: CSV with user_id, arm, assigned_at."""
        experiment = self._writable()
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": ["attach the CSV as 'file'"]})
        try:
            experiment_services.assignments_upload(
                experiment=experiment, data=uploads.experiment_table(upload), filename=upload.name)
        except ExperimentInvalid as exc:
            raise _invalid(exc) from None
        return Response(ExperimentSerializer(experiment).data)

    @extend_schema(request=None, responses={202: dict, **ERRORS})
    @action(detail=True, methods=["post"])
    def analyze(self, request: Request, pk: str | None = None) -> Response:
        """Queue the analysis job; poll /api/v1/jobs/{id}/ or this experiment's result."""
        try:
            job = experiment_services.analyze_start(experiment=self._writable(),
                                                    user=request.user)
        except ExperimentInvalid as exc:
            raise _invalid(exc) from None
        return Response({"job": job.pk, "state": job.state}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=ConcludeSerializer, responses={201: LearningSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def conclude(self, request: Request, pk: str | None = None) -> Response:
        """Record the learning; the hypothesis and its investments take the measured lift."""
        experiment = self._writable()
        body = ConcludeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            learning = experiment_services.experiment_conclude(
                experiment=experiment, user=request.user, **body.validated_data)
        except ExperimentInvalid as exc:
            raise _invalid(exc) from None
        return Response(LearningSerializer(learning).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(
        responses={200: LearningSerializer(many=True), **LIST_ERRORS},
        parameters=[OpenApiParameter("q", str, description="search text"),
                    OpenApiParameter("segment", int), OpenApiParameter("outcome", str),
                    OpenApiParameter("since", str, description="ISO date"),
                    OpenApiParameter("until", str, description="ISO date")]),
    retrieve=extend_schema(responses={200: LearningSerializer, **READ_ERRORS}),
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
        return selectors.learnings_for(self.request.user, query=p.get("q", ""),
                                       segment=int(segment) if segment else None,
                                       outcome=p.get("outcome", ""), since=p.get("since"),
                                       until=p.get("until"))


@extend_schema_view(
    list=extend_schema(
        responses={200: InvestmentSerializer(many=True), **LIST_ERRORS},
        description="The ranked backlog. Default order: risk-adjusted value per unit cost. "
                    "ordering= value_per_cost | expected_value | rice | ice (prefix - for desc).",
        parameters=[SINCE]),
    retrieve=extend_schema(responses={200: InvestmentSerializer, **READ_ERRORS}),
    create=extend_schema(responses={201: InvestmentSerializer, **ERRORS}),
    partial_update=extend_schema(responses={200: InvestmentSerializer, **ERRORS}),
    update=extend_schema(responses={200: InvestmentSerializer, **ERRORS}),
    destroy=extend_schema(responses={204: None, **ERRORS}),
)
class InvestmentViewSet(ScopedWrites, viewsets.ModelViewSet):
    serializer_class = InvestmentSerializer
    related_fields = ("target_segments", "hypotheses", "depends_on")
    filterset_class = InvestmentFilter
    ordering_fields = ["value_per_cost", "expected_value", "rice", "ice", "cost", "updated_at"]
    ordering = ["-value_per_cost", "id"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        qs = selectors.backlog(self.request.user).prefetch_related("depends_on").order_by(
            "-value_per_cost", "id")
        return updated_since(qs, self.request.query_params)

    def extra_create(self) -> dict:
        return {"owner": self.request.user}

    def perform_create(self, serializer):  # type: ignore[no-untyped-def]
        super().perform_create(serializer)
        services.investment_revalue(investment=self.saved, reason="created")
        serializer.instance = self._ranked(self.saved)

    def perform_update(self, serializer):  # type: ignore[no-untyped-def]
        super().perform_update(serializer)
        services.investment_revalue(investment=self.saved, reason="edited")
        serializer.instance = self._ranked(self.saved)

    def _ranked(self, investment: Investment) -> Investment:
        """The saved item as the backlog shows it: new value, value per cost, RICE, ICE."""
        return self.get_queryset().get(pk=investment.pk)

    @extend_schema(responses={200: ValueEstimateSerializer(many=True), **READ_ERRORS})
    @action(detail=True, methods=["get"], filter_backends=[])
    def history(self, request: Request, pk: str | None = None) -> Response:
        """Every change of the computed value, with its sources and the reason."""
        investment = self.get_object()
        page = self.paginate_queryset(investment.estimates.all())
        return self.get_paginated_response(ValueEstimateSerializer(page, many=True).data)


@extend_schema_view(
    list=extend_schema(responses={200: ScenarioSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: ScenarioSerializer, **READ_ERRORS}),
    create=extend_schema(responses={201: ScenarioSerializer, **ERRORS}),
    partial_update=extend_schema(responses={200: ScenarioSerializer, **ERRORS}),
    update=extend_schema(responses={200: ScenarioSerializer, **ERRORS}),
    destroy=extend_schema(responses={204: None, **ERRORS}),
)
class ScenarioViewSet(ScopedWrites, viewsets.ModelViewSet):
    serializer_class = ScenarioSerializer
    filterset_fields = ["name"]
    ordering_fields = ["name", "created_at"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.scenarios_for(self.request.user).order_by("name", "id")

    def extra_create(self) -> dict:
        return {"created_by": self.request.user}

    @extend_schema(request=None, responses={202: RunSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def run(self, request: Request, pk: str | None = None) -> Response:
        """Snapshot the inputs and queue the optimizer; an identical input reuses its run."""
        scenario = self.get_object()
        require_role(request.user, scenario.workspace_id, "define")
        try:
            run = services.run_start(scenario=scenario, user=request.user)
        except JobFailed as exc:
            raise ValidationError({"scenario": [str(exc)]}) from None
        return Response(RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(responses={200: RunSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: RunSerializer, **READ_ERRORS}),
)
class RunViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = RunSerializer
    filterset_fields = ["scenario", "status"]
    ordering_fields = ["created_at"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.runs_for(self.request.user).order_by("-created_at", "-id")

    @extend_schema(responses={200: AllocationSerializer(many=True), **READ_ERRORS})
    @action(detail=True, methods=["get"], filter_backends=[])
    def allocations(self, request: Request, pk: str | None = None) -> Response:
        run = self.get_object()
        rows = run.allocations.select_related("investment").order_by("-chosen", "-value")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(AllocationSerializer(page, many=True).data)

    @extend_schema(responses={200: RunInputsSerializer, **READ_ERRORS})
    @action(detail=True, methods=["get"])
    def inputs(self, request: Request, pk: str | None = None) -> Response:
        """Everything the run used, so the roadmap can be reproduced."""
        return Response(RunInputsSerializer(self.get_object()).data)

    @extend_schema(parameters=[OpenApiParameter("as", str, enum=["json", "csv"])],
                   responses={200: None, **READ_ERRORS})
    @action(detail=True, methods=["get"])
    def roadmap(self, request: Request, pk: str | None = None) -> Response | HttpResponse:
        """The approved roadmap of this run (items whose latest decision is approve)."""
        rows = services.approved_roadmap(self.get_object())
        if request.query_params.get("as") == "csv":
            response = HttpResponse(services.to_csv(rows), content_type="text/csv")
            response["Content-Disposition"] = f'attachment; filename="roadmap-run-{pk}.csv"'
            return response
        return Response({"run": int(pk), "items": rows})

    @extend_schema(request=DecideSerializer, responses={201: DecisionSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def decide(self, request: Request, pk: str | None = None) -> Response:
        """Record the council's verdict on one item of this run, with its rationale."""
        run: OptimizationRun = self.get_object()
        require_role(request.user, run.workspace_id, "decide")
        data = DecideSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        investment = Investment.objects.filter(pk=data.validated_data["investment"],
                                               workspace=run.workspace).first()
        if investment is None:
            raise Http404("No such investment")
        try:
            decision = services.decision_record(run=run, investment=investment,
                                                verdict=data.validated_data["verdict"],
                                                rationale=data.validated_data["rationale"],
                                                user=request.user)
        except ValueError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(DecisionSerializer(decision).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(responses={200: DecisionSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: DecisionSerializer, **READ_ERRORS}),
)
class DecisionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = DecisionSerializer
    filterset_fields = ["run", "investment", "verdict"]
    ordering_fields = ["decided_at"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.decisions_for(self.request.user).order_by("-decided_at", "-id")


