"""REST API v1: segments (with sweeps), refreshes and snapshots."""

from __future__ import annotations

from django.db import IntegrityError
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.filters import UpdatedAtFilterSet, updated_since
from accounts.api.permissions import checked_object, require_role
from accounts.api.schema import ERRORS, READ_ERRORS, SINCE, read_actions, read_schema
from accounts.api.serializers import validated
from events import selectors as event_selectors
from jobs.api.serializers import JobSerializer

from .. import estimate_services, segment_services, selectors
from ..models import Segment
from .serializers import (
    EstimateSerializer,
    RefreshSerializer,
    RefreshStartSerializer,
    SegmentSerializer,
    SegmentUpdateSerializer,
    SegmentWriteSerializer,
    SnapshotSerializer,
    SweepSerializer,
)


class SegmentFilter(UpdatedAtFilterSet):
    class Meta:
        model = Segment
        fields = {"dataset": ["exact"], "kind": ["exact"], "archived": ["exact"],
                  "updated_at": ["gte"]}


# ----- segments, snapshots, refreshes ----------------------------------------------------------
@extend_schema_view(
    **read_actions(SegmentSerializer, parameters=[SINCE]),
    create=extend_schema(request=SegmentWriteSerializer, responses={201: SegmentSerializer,
                                                                    **ERRORS}),
    partial_update=extend_schema(request=SegmentUpdateSerializer,
                                 responses={200: SegmentSerializer, **ERRORS}),
    destroy=extend_schema(responses={204: None, **ERRORS}),
)
class SegmentViewSet(viewsets.ModelViewSet):
    serializer_class = SegmentSerializer
    filterset_class = SegmentFilter
    ordering_fields = ["name", "created_at", "updated_at"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return updated_since(selectors.segments_for(self.request.user), self.request.query_params)

    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        values = validated(SegmentWriteSerializer, request)
        dataset = event_selectors.dataset_get(request.user, values["dataset"])
        require_role(request.user, dataset.workspace_id, "define")
        try:
            segment = segment_services.segment_create(
                dataset=dataset, name=values["name"], kind=values["kind"],
                definition=values["definition"], owner=request.user,
                description=values["description"], assumptions=values["assumptions"],
            )
        except segment_services.DefinitionError as exc:
            raise ValidationError({"definition": [str(exc)], "path": exc.path}) from None
        except IntegrityError:
            raise ValidationError({"name": ["a segment with this name exists in the dataset"]}) \
                from None
        return Response(SegmentSerializer(segment).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: object, **kwargs: object) -> Response:
        segment = checked_object(self, "define")
        values = validated(SegmentUpdateSerializer, request, partial=True)
        try:
            segment = segment_services.segment_update(segment=segment, **values)
        except segment_services.DefinitionError as exc:
            raise ValidationError({"definition": [str(exc)], "path": exc.path}) from None
        return Response(SegmentSerializer(segment).data)

    def update(self, request: Request, *args: object, **kwargs: object) -> Response:
        return self.partial_update(request, *args, **kwargs)

    def destroy(self, request: Request, *args: object, **kwargs: object) -> Response:
        segment = checked_object(self, "define")
        segment.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: SnapshotSerializer(many=True), **READ_ERRORS})
    @action(detail=True, methods=["get"], filter_backends=[])
    def snapshots(self, request: Request, pk: str | None = None) -> Response:
        """Every snapshot of the segment, newest first (signals with intervals, drift)."""
        segment = self.get_object()
        page = self.paginate_queryset(segment.snapshots.order_by("-computed_at", "-id"))
        return self.get_paginated_response(SnapshotSerializer(page, many=True).data)

    @extend_schema(request=EstimateSerializer, responses={200: None, **ERRORS})
    @action(detail=False, methods=["post"])
    def estimate(self, request: Request) -> Response:
        """A rule's size while it is built: evaluated on a seeded sample of 20,000 users (kept
        per dataset version) with a 95% Wilson interval scaled to the population; exact when
        the dataset has fewer users than the sample."""
        values = validated(EstimateSerializer, request)
        dataset = event_selectors.dataset_get(request.user, values["dataset"])
        require_role(request.user, dataset.workspace_id, "define")
        try:
            body = estimate_services.rule_size_estimate(dataset=dataset,
                                                        definition=values["definition"])
        except segment_services.DefinitionError as exc:
            field = "dataset" if exc.path == "dataset" else "definition"
            raise ValidationError({field: [str(exc)], "path": exc.path}) from None
        return Response(body)

    @extend_schema(request=SweepSerializer, responses={200: None, **ERRORS})
    @action(detail=True, methods=["post"])
    def sweep(self, request: Request, pk: str | None = None) -> Response:
        """Size and value of the rule as one behavioural threshold or window changes (it
        computes over the dataset: not for viewers, whose page hides the sweep form too)."""
        segment = checked_object(self, "define")
        values = validated(SweepSerializer, request)
        try:
            rows = segment_services.segment_sweep(segment=segment, **values)
        except segment_services.DefinitionError as exc:
            raise ValidationError({"path": [str(exc)]}) from None
        return Response({"rows": rows})


@read_schema(RefreshSerializer)
class RefreshViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = RefreshSerializer
    filterset_fields = ["dataset"]
    ordering_fields = ["created_at"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.refreshes_for(self.request.user)

    @extend_schema(request=RefreshStartSerializer, responses={202: JobSerializer, **ERRORS},
                   description="Queue a refresh of every segment of the dataset (one job).")
    def create(self, request: Request) -> Response:
        values = validated(RefreshStartSerializer, request)
        dataset = event_selectors.dataset_get(request.user, values["dataset"])
        require_role(request.user, dataset.workspace_id, "define")
        job = segment_services.refresh_start(dataset=dataset, user=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


@read_schema(SnapshotSerializer)
class SnapshotViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = SnapshotSerializer
    filterset_fields = ["segment", "refresh"]
    ordering_fields = ["computed_at"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.snapshots_for(self.request.user)
