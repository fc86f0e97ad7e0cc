"""REST API v1: workspaces, datasets (with catalog), imports (upload, status, report), jobs."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError
from django.http import Http404
from django_filters.rest_framework import FilterSet
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors as ws_selectors
from accounts.api.filters import UtcDateTimeFilter, updated_since
from accounts.api.permissions import require_role
from accounts.api.schema import ERRORS, LIST_ERRORS, READ_ERRORS, SINCE
from jobs.api.serializers import JobSerializer
from security import uploads

from .. import segment_services, selectors, services
from ..models import Dataset, Segment
from .serializers import (
    AnalysisCreateSerializer,
    AnalysisSerializer,
    CatalogSerializer,
    DatasetCreateSerializer,
    DatasetSerializer,
    ErasureRequestSerializer,
    ErasureSerializer,
    ImportCreateSerializer,
    ImportReportSerializer,
    ImportSerializer,
    RefreshSerializer,
    RefreshStartSerializer,
    SaveSegmentSerializer,
    SegmentSerializer,
    SegmentUpdateSerializer,
    SegmentWriteSerializer,
    SnapshotSerializer,
    SweepSerializer,
)


class DatasetFilter(FilterSet):
    updated_at__gte = UtcDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Dataset
        fields = {"workspace__slug": ["exact"], "updated_at": ["gte"]}


class SegmentFilter(FilterSet):
    updated_at__gte = UtcDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Segment
        fields = {"dataset": ["exact"], "kind": ["exact"], "archived": ["exact"],
                  "updated_at": ["gte"]}


@extend_schema_view(
    list=extend_schema(responses={200: DatasetSerializer(many=True), **LIST_ERRORS},
                       parameters=[SINCE]),
    retrieve=extend_schema(responses={200: DatasetSerializer, **READ_ERRORS}),
    create=extend_schema(request=DatasetCreateSerializer,
                         responses={201: DatasetSerializer, **ERRORS}),
    destroy=extend_schema(responses={204: None, **ERRORS}),
)
class DatasetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                     mixins.DestroyModelMixin, viewsets.GenericViewSet):
    serializer_class = DatasetSerializer
    filterset_class = DatasetFilter
    ordering_fields = ["name", "created_at", "updated_at", "total_events"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return updated_since(selectors.datasets_for(self.request.user).order_by("name", "id"),
                             self.request.query_params)

    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        data = DatasetCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        workspace, _ = ws_selectors.workspace_get(request.user, data.validated_data["workspace"])
        require_role(request.user, workspace.pk, "import")
        try:
            dataset = services.dataset_create(workspace=workspace,
                                              name=data.validated_data["name"],
                                              description=data.validated_data["description"])
        except IntegrityError:
            raise ValidationError({"name": ["a dataset with this name exists in the workspace"]}) \
                from None
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, *args: object, **kwargs: object) -> Response:
        dataset = self.get_object()
        require_role(request.user, dataset.workspace_id, "manage")
        services.dataset_delete(dataset=dataset)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: CatalogSerializer, **READ_ERRORS})
    @action(detail=True, methods=["get"])
    def catalog(self, request: Request, pk: str | None = None) -> Response:
        """What the dataset contains: events and user attributes."""
        return Response(CatalogSerializer(self.get_object()).data)

    @extend_schema(request=ErasureRequestSerializer,
                   responses={202: ErasureSerializer, 200: ErasureSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def erase(self, request: Request, pk: str | None = None) -> Response:
        """Erase a user's data on request (admins): events, attributes and their traces in
        stored results, as a job. 202 with the recorded erasure; 200 with the pending one
        when the same user's erasure is already queued; 400 when the user is not found."""
        from .. import privacy_services

        dataset = self.get_object()
        require_role(request.user, dataset.workspace_id, "manage")
        data = ErasureRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            erasure, created = privacy_services.erase_user(
                dataset=dataset, user_id=data.validated_data["user_id"],
                requested_by=request.user, reason=data.validated_data["reason"])
        except privacy_services.ErasureInvalid as exc:
            raise ValidationError({exc.field: [exc.message]}) from None
        erasure.refresh_from_db()
        return Response(ErasureSerializer(erasure).data,
                        status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)


@extend_schema_view(
    list=extend_schema(responses={200: ImportSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: ImportSerializer, **READ_ERRORS}),
)
class ImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ImportSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    filterset_fields = ["dataset", "status"]
    ordering_fields = ["created_at", "finished_at"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.imports_for(self.request.user).order_by("-created_at", "-id")

    @extend_schema(
        request={"multipart/form-data": ImportCreateSerializer},
        responses={202: ImportSerializer, 200: ImportSerializer, **ERRORS},
        description="Upload an events file and/or a users file. Returns 202 with the queued "
                    "import and its job; 200 with the earlier import when the same bytes were "
                    "already imported into this dataset.",
    )
    def create(self, request: Request) -> Response:
        data = ImportCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        dataset = selectors.datasets_for(request.user).filter(pk=values["dataset"]).first()
        if dataset is None:
            raise Http404("No such dataset")
        require_role(request.user, dataset.workspace_id, "import")
        limit = settings.MAX_UPLOAD_BYTES
        files = {}
        for field in ("events", "users"):
            upload = values.get(field)
            if upload is not None:
                stream, name = uploads.event_upload(upload, field=field, limit=limit)
                path, _ = services.save_upload(stream, name=name, max_bytes=limit)
                files[field] = (path, upload.name)
        record, created = services.import_create(
            dataset=dataset, user=request.user, events=files.get("events"),
            users=files.get("users"),
            options={"format": values["format"], "timezone": values["timezone"],
                     "mapping": values["mapping"], "pseudonymize": values["pseudonymize"]},
        )
        return Response(ImportSerializer(record).data,
                        status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)

    @extend_schema(responses={200: ImportReportSerializer, **READ_ERRORS})
    @action(detail=True, methods=["get"])
    def report(self, request: Request, pk: str | None = None) -> Response:
        """The quality report: rows read and kept, each problem class with sample rows."""
        return Response(ImportReportSerializer(self.get_object()).data)


# ----- segments, snapshots, refreshes ----------------------------------------------------------
@extend_schema_view(
    list=extend_schema(responses={200: SegmentSerializer(many=True), **LIST_ERRORS},
                       parameters=[SINCE]),
    retrieve=extend_schema(responses={200: SegmentSerializer, **READ_ERRORS}),
    create=extend_schema(request=SegmentWriteSerializer, responses={201: SegmentSerializer,
                                                                    **ERRORS}),
    partial_update=extend_schema(request=SegmentUpdateSerializer,
                                 responses={200: SegmentSerializer, **ERRORS}),
    destroy=extend_schema(responses={204: None, **ERRORS}),
)
class SegmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                     mixins.UpdateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    serializer_class = SegmentSerializer
    filterset_class = SegmentFilter
    ordering_fields = ["name", "created_at", "updated_at"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return updated_since(selectors.segments_for(self.request.user), self.request.query_params)

    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        data = SegmentWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        dataset = selectors.datasets_for(request.user).filter(pk=values["dataset"]).first()
        if dataset is None:
            raise Http404("No such dataset")
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
        segment = self.get_object()
        require_role(request.user, segment.workspace_id, "define")
        data = SegmentUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        try:
            segment = segment_services.segment_update(segment=segment, **data.validated_data)
        except segment_services.DefinitionError as exc:
            raise ValidationError({"definition": [str(exc)], "path": exc.path}) from None
        return Response(SegmentSerializer(segment).data)

    def update(self, request: Request, *args: object, **kwargs: object) -> Response:
        return self.partial_update(request, *args, **kwargs)

    def destroy(self, request: Request, *args: object, **kwargs: object) -> Response:
        segment = self.get_object()
        require_role(request.user, segment.workspace_id, "define")
        segment.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: SnapshotSerializer(many=True), **READ_ERRORS})
    @action(detail=True, methods=["get"], filter_backends=[])
    def snapshots(self, request: Request, pk: str | None = None) -> Response:
        """Every snapshot of the segment, newest first (signals with intervals, drift)."""
        segment = self.get_object()
        page = self.paginate_queryset(segment.snapshots.order_by("-computed_at", "-id"))
        return self.get_paginated_response(SnapshotSerializer(page, many=True).data)

    @extend_schema(request=SweepSerializer, responses={200: None, **ERRORS})
    @action(detail=True, methods=["post"])
    def sweep(self, request: Request, pk: str | None = None) -> Response:
        """Size and value of the rule as one behavioural threshold or window changes."""
        segment = self.get_object()
        data = SweepSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            rows = segment_services.segment_sweep(segment=segment, **data.validated_data)
        except segment_services.DefinitionError as exc:
            raise ValidationError({"path": [str(exc)]}) from None
        return Response({"rows": rows})


@extend_schema_view(
    list=extend_schema(responses={200: RefreshSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: RefreshSerializer, **READ_ERRORS}),
)
class RefreshViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = RefreshSerializer
    filterset_fields = ["dataset"]
    ordering_fields = ["created_at"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.refreshes_for(self.request.user)

    @extend_schema(request=RefreshStartSerializer, responses={202: JobSerializer, **ERRORS},
                   description="Queue a refresh of every segment of the dataset (one job).")
    def create(self, request: Request) -> Response:
        data = RefreshStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dataset = selectors.datasets_for(request.user).filter(pk=data.validated_data["dataset"]).first()
        if dataset is None:
            raise Http404("No such dataset")
        require_role(request.user, dataset.workspace_id, "define")
        job = segment_services.refresh_start(dataset=dataset, user=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(responses={200: SnapshotSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: SnapshotSerializer, **READ_ERRORS}),
)
class SnapshotViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = SnapshotSerializer
    filterset_fields = ["segment", "refresh"]
    ordering_fields = ["computed_at"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.snapshots_for(self.request.user)


# ----- behaviour analyses ---------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(responses={200: AnalysisSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: AnalysisSerializer, **READ_ERRORS}),
)
class AnalysisViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Funnels, paths, retention cohorts and behaviour discovery: one cached result per dataset
    version and input; computed by a job."""

    serializer_class = AnalysisSerializer
    filterset_fields = ["kind", "dataset"]
    ordering_fields = ["created_at"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        from ..models import BehaviourAnalysis

        return BehaviourAnalysis.objects.filter(
            workspace__in=ws_selectors.workspaces_for(self.request.user)).select_related(
            "workspace", "job").order_by("-created_at", "-id")

    @extend_schema(request=AnalysisCreateSerializer,
                   responses={200: AnalysisSerializer, 202: AnalysisSerializer, **ERRORS},
                   description="200 with the cached result when the same input was analyzed "
                               "on this dataset version; else 202 and a job.")
    def create(self, request: Request) -> Response:
        from .. import behaviour_services as bs

        body = AnalysisCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        dataset = selectors.datasets_for(request.user).filter(
            pk=body.validated_data["dataset"]).first()
        if dataset is None:
            raise Http404("No such dataset")
        require_role(request.user, dataset.workspace_id, "view")
        try:
            analysis = bs.analysis_start(dataset=dataset, kind=body.validated_data["kind"],
                                         params=body.validated_data["params"], user=request.user)
        except bs.AnalysisInvalid as exc:
            raise ValidationError({exc.field: [exc.message]}) from None
        fresh = not analysis.result and analysis.job is not None and \
            analysis.job.state != "succeeded"
        return Response(AnalysisSerializer(analysis).data,
                        status=status.HTTP_202_ACCEPTED if fresh else status.HTTP_200_OK)

    @extend_schema(request=SaveSegmentSerializer, responses={201: SegmentSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def save(self, request: Request, pk: str | None = None) -> Response:
        """A funnel's drop-off users after `step`, or the discovered behaviour ranked `rank`
        (optionally with an exploratory hypothesis), saved as a segment."""
        from .. import behaviour_services as bs

        analysis = self.get_object()
        require_role(request.user, analysis.workspace_id, "define")
        body = SaveSegmentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        d = body.validated_data
        try:
            if analysis.kind == "funnel":
                if d.get("step") is None:
                    raise bs.AnalysisInvalid("step", "give the funnel step")
                segment = bs.save_dropoff_segment(analysis=analysis, step=d["step"],
                                                  name=d["name"], owner=request.user)
            else:
                if d.get("rank") is None:
                    raise bs.AnalysisInvalid("rank", "give the behaviour's rank")
                segment = bs.save_behaviour_segment(analysis=analysis, rank=d["rank"],
                                                    name=d["name"], owner=request.user)
                if d.get("hypothesis"):
                    bs.behaviour_hypothesis(analysis=analysis, rank=d["rank"], segment=segment,
                                            owner=request.user)
        except bs.AnalysisInvalid as exc:
            raise ValidationError({exc.field: [exc.message]}) from None
        except segment_services.DefinitionError as exc:
            raise ValidationError({"definition": [str(exc)]}) from None
        except IntegrityError:
            raise ValidationError({"name": ["a segment with this name exists"]}) from None
        return Response(SegmentSerializer(segment).data, status=status.HTTP_201_CREATED)
