"""REST API v1 for the planner: hypotheses, investments (the ranked backlog), scenarios,
optimizer runs with allocations and the approved roadmap, council decisions."""

from __future__ import annotations

import copy

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.filters import BoundedIdsFilter, UpdatedAtFilterSet, updated_since
from accounts.api.permissions import checked_object, require_role
from accounts.api.schema import ERRORS, READ_ERRORS, SINCE, crud_schema, read_schema
from accounts.api.scoped import ScopedWrites
from accounts.api.serializers import field_invalid, model_invalid, validated
from jobs.services import JobFailed
from segments.models import Segment

from .. import api_cache, changes, roadmap, selectors, services, stale
from ..models import Investment, OptimizationRun, Scenario
from .serializers import (
    AllocationSerializer,
    DecideSerializer,
    DecisionSerializer,
    InvestmentSerializer,
    RunInputsSerializer,
    RunRoadmapDiffSerializer,
    RunSerializer,
    ScenarioSerializer,
    ValueEstimateSerializer,
    ValueModelSerializer,
)


class InvestmentFilter(UpdatedAtFilterSet):
    target_segments = BoundedIdsFilter(queryset=Segment.objects.all())

    class Meta:
        model = Investment
        fields = {"roadmap": ["exact"], "status": ["exact"], "target_segments": ["exact"],
                  "workspace__slug": ["exact"], "updated_at": ["gte"]}


@crud_schema(
    InvestmentSerializer,
    description="The ranked backlog. Default order: risk-adjusted value per unit cost. "
                "ordering= value_per_cost | expected_value | rice | ice (prefix - for desc).",
    parameters=[SINCE])
class InvestmentViewSet(ScopedWrites, viewsets.ModelViewSet):
    serializer_class = InvestmentSerializer
    related_fields = ("target_segments", "hypotheses", "depends_on")
    filterset_class = InvestmentFilter
    ordering_fields = ["value_per_cost", "expected_value", "rice", "ice", "cost", "updated_at"]
    ordering = ["-value_per_cost", "id"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        qs = selectors.backlog(self.request.user).prefetch_related("depends_on").order_by(
            "-value_per_cost", "id")
        return updated_since(qs, self.request.query_params, field="changed_at")

    def list(self, request: Request, *args, **kwargs) -> HttpResponse:  # type: ignore[no-untyped-def]
        """The page from ``planner.api_cache`` while the user's investments are unchanged
        (checked in the database on every request), else built and kept."""
        if request.accepted_renderer.format != "json":
            return super().list(request, *args, **kwargs)
        stamp = api_cache.user_stamp(request.user.pk)
        key = api_cache.key_for(user_id=request.user.pk, path=request.get_full_path(),
                                renderer=request.accepted_media_type, stamp=stamp)
        hit = api_cache.get(key)
        if hit is not None:
            response = HttpResponse(hit, content_type=request.accepted_media_type)
            response["X-List-Cache"] = "hit"
            return response
        response = super().list(request, *args, **kwargs)
        response.accepted_renderer = request.accepted_renderer
        response.accepted_media_type = request.accepted_media_type
        response.renderer_context = self.get_renderer_context()
        response.render()
        if response.status_code == 200:
            api_cache.put(key, response.content)
        response["X-List-Cache"] = "miss"
        return response

    def extra_create(self) -> dict:
        return {"owner": self.request.user}

    def check_write(self, serializer, workspace) -> None:  # type: ignore[no-untyped-def]
        model = serializer.validated_data.get("value_model")
        if model is not None and model.workspace_id != workspace.pk:
            raise ValidationError({"value_model": [f"{model.pk} is not in this workspace"]})
        if "depends_on" in serializer.validated_data:
            problem = services.dependency_problem(serializer.instance,
                                                  serializer.validated_data["depends_on"])
            if problem:
                raise ValidationError({"depends_on": [problem]})

    def saved_hook(self) -> None:
        # The value is computed in the write's transaction: a failure leaves nothing behind.
        services.investment_revalue(investment=self.saved,
                                    reason="edited" if self.action != "create" else "created",
                                    edited=True)

    def perform_destroy(self, instance):  # type: ignore[no-untyped-def]
        # The items that depended on it lose a dependency, and the ranks below it move: both
        # are in the change feed.
        with transaction.atomic():
            dependents = list(instance.enables.values_list("pk", flat=True))
            workspace_id = instance.workspace_id
            super().perform_destroy(instance)
            changes.investments_changed(workspace_id=workspace_id, ids=dependents)

    def perform_create(self, serializer):  # type: ignore[no-untyped-def]
        super().perform_create(serializer)
        serializer.instance = self._ranked(self.saved)

    def perform_update(self, serializer):  # type: ignore[no-untyped-def]
        super().perform_update(serializer)
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


@crud_schema(
    ValueModelSerializer,
    description="Value models: how a relative lift of a hypothesis's metric moves an "
                "investment's value (an elasticity with its interval). kind = identity (value "
                "itself, 1), entered (low <= mid <= high, an 80% interval, with a source) or "
                "measured (from the segment's users: metric_spec per user against revenue in "
                "the first value_days days; fit on a calibration split, checked on a holdout; "
                "observational). Saving re-values the investments that use it.")
class ValueModelViewSet(ScopedWrites, viewsets.ModelViewSet):
    serializer_class = ValueModelSerializer
    filterset_fields = ["kind", "metric"]
    ordering_fields = ["name", "updated_at"]
    ordering = ["name", "id"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.value_models_for(self.request.user).order_by("name", "id")

    def check_write(self, serializer, workspace) -> None:  # type: ignore[no-untyped-def]
        segment = serializer.validated_data.get("segment")
        if segment is not None and segment.workspace_id != workspace.pk:
            raise ValidationError({"segment": [f"{segment.pk} is not in this workspace"]})

    def saved_hook(self) -> None:
        # Measured and checked in the write's transaction: a refusal leaves nothing behind.
        try:
            services.value_model_save(value_model=self.saved)
        except services.PlannerInvalid as exc:
            raise field_invalid(exc) from None

    def perform_destroy(self, instance):  # type: ignore[no-untyped-def]
        require_role(self.request.user, instance.workspace_id, self.write_action)
        services.value_model_delete(value_model=instance)

    @extend_schema(request=None, responses={200: ValueModelSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def measure(self, request: Request, pk: str | None = None) -> Response:
        """Measure a measured mapping again on the segment's latest data; the investments
        that use it are re-valued."""
        model = checked_object(self, "define")
        if model.kind != "measured":
            raise ValidationError({"kind": ["only a measured mapping is measured"]})
        try:
            services.value_model_save(value_model=model, reason="value model measured")
        except services.PlannerInvalid as exc:
            raise field_invalid(exc) from None
        return Response(ValueModelSerializer(model).data)


@crud_schema(ScenarioSerializer)
class ScenarioViewSet(ScopedWrites, viewsets.ModelViewSet):
    serializer_class = ScenarioSerializer
    filterset_fields = ["name"]
    ordering_fields = ["name", "created_at"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.scenarios_for(self.request.user).order_by("name", "id")

    def extra_create(self) -> dict:
        return {"created_by": self.request.user}

    def check_write(self, serializer, workspace) -> None:  # type: ignore[no-untyped-def]
        """What the fields alone cannot tell (capacity quarters, coverage segments of this
        workspace, the job memory budget): the model's clean()."""
        scenario = copy.copy(serializer.instance) if serializer.instance else \
            Scenario(workspace=workspace)
        for name, value in serializer.validated_data.items():
            setattr(scenario, name, value)
        try:
            scenario.clean()
        except DjangoValidationError as exc:
            raise model_invalid(exc) from None

    @extend_schema(request=None, responses={202: RunSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def run(self, request: Request, pk: str | None = None) -> Response:
        """Snapshot the inputs and queue the optimizer; an identical input reuses its run. A
        scenario whose run would exceed the job memory budget is refused (400)."""
        scenario = checked_object(self, "define")
        try:
            run = services.run_start(scenario=scenario, user=request.user)
        except services.PlannerInvalid as exc:
            raise field_invalid(exc) from None
        except JobFailed as exc:
            raise ValidationError({"scenario": [str(exc)]}) from None
        return Response(RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


@read_schema(RunSerializer)
class RunViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = RunSerializer
    filterset_fields = ["scenario", "status"]
    ordering_fields = ["created_at"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        runs = selectors.runs_for(self.request.user)
        services.runs_follow_jobs(runs)
        return runs.order_by("-created_at", "-id")

    @extend_schema(responses={200: AllocationSerializer(many=True), **READ_ERRORS})
    @action(detail=True, methods=["get"], filter_backends=[])
    def allocations(self, request: Request, pk: str | None = None) -> Response:
        run = self.get_object()
        rows = run.allocations.select_related("investment").order_by("-chosen", "-value")
        page = self.paginate_queryset(rows)
        report = stale.run_staleness(run)
        return self.get_paginated_response(AllocationSerializer(
            page, many=True, context={"staleness": report}).data)

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **ERRORS})
    @action(detail=True, methods=["get"], url_path="value-of-information")
    def value_of_information(self, request: Request, pk: str | None = None) -> Response:
        """The run's value of information (also in the run's ``robust.voi``): EVPI, EVPPI per
        hypothesis, EVSI per designed experiment ranked by EVSI per cost, each with its Monte
        Carlo standard error. 400 naming the field when there is none (robust_draws 0, no
        uncertain value)."""
        try:
            return Response(services.run_information(self.get_object()))
        except services.PlannerInvalid as exc:
            raise field_invalid(exc) from None

    @extend_schema(responses={200: RunInputsSerializer, **READ_ERRORS})
    @action(detail=True, methods=["get"])
    def inputs(self, request: Request, pk: str | None = None) -> Response:
        """Everything the run used, so the roadmap can be reproduced."""
        return Response(RunInputsSerializer(self.get_object()).data)

    @extend_schema(parameters=[OpenApiParameter("as", str, enum=["json", "csv"])],
                   responses={200: None, **READ_ERRORS})
    @action(detail=True, methods=["get"])
    def roadmap(self, request: Request, pk: str | None = None) -> Response | HttpResponse:
        """The approved roadmap of this run (items whose latest decision is approve), each
        item's run-time figures beside its current ones, and whether the run is stale."""
        run = self.get_object()
        report = stale.run_staleness(run)
        rows = stale.rows_with_now(services.approved_roadmap(run), report)
        if request.query_params.get("as") == "csv":
            response = HttpResponse(services.to_csv(rows), content_type="text/csv")
            response["Content-Disposition"] = f'attachment; filename="roadmap-run-{pk}.csv"'
            return response
        return Response({"run": int(pk), **report.to_dict(), "items": rows})

    @extend_schema(responses={200: RunRoadmapDiffSerializer, **READ_ERRORS})
    @action(detail=True, methods=["get"], url_path="against-roadmap", filter_backends=[],
            pagination_class=None)
    def against_roadmap(self, request: Request, pk: str | None = None) -> Response:
        """This run against the current roadmap version: items added, dropped, moved to another
        quarter, value changed, each with its reasons (evidence, budget, what binds)."""
        run = self.get_object()
        version = roadmap.current_version(run.workspace_id)
        changes = roadmap.diff_run(run, version)
        return Response({"base": f"v{version.number}" if version else "no roadmap yet",
                         "new": f"run #{run.pk}", "changes": [c.to_dict() for c in changes],
                         "stale": roadmap.run_is_stale(run)})

    @extend_schema(request=DecideSerializer, responses={201: DecisionSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def decide(self, request: Request, pk: str | None = None) -> Response:
        """Record the council's verdict on one item of this run, with its rationale (kept for
        tools written before roadmap versions; the equivalent on the versioned roadmap is
        ``POST /api/v1/roadmap-versions/{id}/decide/``)."""
        run: OptimizationRun = checked_object(self, "decide")
        values = validated(DecideSerializer, request)
        investment = Investment.objects.filter(pk=values["investment"],
                                               workspace=run.workspace).first()
        if investment is None:
            raise Http404("No such investment")
        try:
            decision = services.decision_record(run=run, investment=investment,
                                                verdict=values["verdict"],
                                                rationale=values["rationale"],
                                                user=request.user)
        except ValueError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(DecisionSerializer(decision).data, status=status.HTTP_201_CREATED)


@read_schema(DecisionSerializer)
class DecisionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = DecisionSerializer
    filterset_fields = ["run", "investment", "verdict"]
    ordering_fields = ["decided_at"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.decisions_for(self.request.user).order_by("-decided_at", "-id")


