"""REST API v1: datasets (with catalog and erasure), imports (upload, status, report)."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from accounts import selectors as ws_selectors
from accounts.api.filters import UpdatedAtFilterSet, updated_since
from accounts.api.permissions import checked_object, require_role
from accounts.api.schema import ERRORS, READ_ERRORS, SINCE, read_actions, read_schema
from accounts.api.serializers import field_invalid, validated
from security import parsers, uploads

from .. import privacy_services, retention_services, selectors, services
from ..models import Dataset
from .serializers import (
    CatalogQuerySerializer,
    CatalogSerializer,
    DatasetCreateSerializer,
    DatasetRetentionSerializer,
    DatasetSerializer,
    ErasureRequestSerializer,
    ErasureSerializer,
    ImportCreateSerializer,
    ImportReportSerializer,
    ImportSerializer,
)


class DatasetFilter(UpdatedAtFilterSet):
    class Meta:
        model = Dataset
        fields = {"workspace__slug": ["exact"], "updated_at": ["gte"]}


@extend_schema_view(
    **read_actions(DatasetSerializer, parameters=[SINCE]),
    create=extend_schema(request=DatasetCreateSerializer,
                         responses={201: DatasetSerializer, **ERRORS}),
    destroy=extend_schema(responses={204: None, **ERRORS}),
    partial_update=extend_schema(request=DatasetRetentionSerializer,
                                 responses={200: DatasetSerializer, **ERRORS}),
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
        values = validated(DatasetCreateSerializer, request)
        workspace, _ = ws_selectors.workspace_get(request.user, values["workspace"])
        require_role(request.user, workspace.pk, "import")
        try:
            dataset = services.dataset_create(workspace=workspace,
                                              name=values["name"],
                                              description=values["description"])
        except IntegrityError:
            raise ValidationError({"name": ["a dataset with this name exists in the workspace"]}) \
                from None
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: object, **kwargs: object) -> Response:
        """Change the event kinds (activity or system) and the retention definition that the
        segments' D1/D7/D30 signals use (analysts and admins); 400 names the field."""
        dataset = checked_object(self, "define")
        values = validated(DatasetRetentionSerializer, request)
        try:
            retention_services.dataset_retention_update(
                dataset=dataset, event_kinds=values.get("event_kinds"),
                start_event=values.get("retention_start_event"),
                return_events=values.get("retention_return_events"))
        except retention_services.RetentionInvalid as exc:
            raise field_invalid(exc) from None
        return Response(DatasetSerializer(dataset).data)

    def destroy(self, request: Request, *args: object, **kwargs: object) -> Response:
        dataset = checked_object(self, "manage")
        services.dataset_delete(dataset=dataset)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(parameters=[CatalogQuerySerializer],
                   responses={200: CatalogSerializer, 400: ERRORS[400], **READ_ERRORS})
    @action(detail=True, methods=["get"])
    def catalog(self, request: Request, pk: str | None = None) -> Response:
        """What the dataset contains: one page of its event names (most frequent first; ``q``
        keeps the names that hold it) and its user attributes. 404 past the last page."""
        dataset = self.get_object()
        query = CatalogQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page, size, text = (query.validated_data[k] for k in ("page", "page_size", "q"))
        events = selectors.catalog_matching(dataset, text)
        pages = max(1, -(-len(events) // size))
        if page > pages:
            raise NotFound(f"page {page} is past the last page ({pages})")
        url = request.build_absolute_uri()
        return Response(CatalogSerializer({
            "id": dataset.pk, "version": dataset.version, "event_count": len(events),
            "page": page, "page_size": size,
            "next": replace_query_param(url, "page", page + 1) if page < pages else None,
            "previous": replace_query_param(url, "page", page - 1) if page > 1 else None,
            "event_catalog": events[(page - 1) * size:page * size],
            "attribute_catalog": dataset.attribute_catalog,
        }).data)

    @extend_schema(request=ErasureRequestSerializer,
                   responses={202: ErasureSerializer, 200: ErasureSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def erase(self, request: Request, pk: str | None = None) -> Response:
        """Erase a user's data on request (admins): events, attributes and their traces in
        stored results, as a job. 202 with the recorded erasure; 200 with the pending one
        when the same user's erasure is already queued; 400 when the user is not found."""

        dataset = checked_object(self, "manage")
        values = validated(ErasureRequestSerializer, request)
        try:
            erasure, created = privacy_services.erase_user(
                dataset=dataset, user_id=values["user_id"],
                requested_by=request.user, reason=values["reason"])
        except privacy_services.ErasureInvalid as exc:
            raise field_invalid(exc) from None
        erasure.refresh_from_db()
        return Response(ErasureSerializer(erasure).data,
                        status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)


@read_schema(ImportSerializer)
class ImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ImportSerializer
    parser_classes = [parsers.MultiPartParser, parsers.FormParser, parsers.JSONParser]
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
        values = validated(ImportCreateSerializer, request)
        dataset = selectors.dataset_get(request.user, values["dataset"])
        require_role(request.user, dataset.workspace_id, "import")
        limit = settings.MAX_UPLOAD_BYTES
        files = {}
        for field in ("events", "users"):
            upload = values.get(field)
            if upload is not None:
                stream, name = uploads.event_upload(upload, field=field, limit=limit)
                path, _ = services.save_upload(stream, name=name, max_bytes=limit,
                                               workspace=dataset.workspace)
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
