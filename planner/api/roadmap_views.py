"""REST API v1 for the approved roadmap: its versions, the current one, diffs between two
versions, adoption of a run, council decisions on the current version, exports."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.http import Http404, HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.permissions import checked_object, require_role
from accounts.api.schema import ERRORS, LIST_ERRORS, read_schema
from accounts.api.serializers import field_invalid, validated
from accounts.models import Workspace
from accounts.selectors import workspaces_for

from .. import roadmap, roadmap_formats, selectors, services
from ..models import Investment, RoadmapItem, RoadmapVersion
from .serializers import (
    AdoptSerializer,
    DecisionSerializer,
    RoadmapDecideSerializer,
    RoadmapDiffSerializer,
    RoadmapVersionSerializer,
)

WORKSPACE = OpenApiParameter("workspace", str, required=True, description="workspace slug")
FORMATS = ("json", "jira", "productboard")


def versions_for(user: object) -> QuerySet[RoadmapVersion]:
    items = RoadmapItem.objects.select_related("investment", "version__workspace").order_by(
        "roadmap", "-value", "id")
    return (RoadmapVersion.objects.filter(workspace__in=workspaces_for(user))
            .select_related("workspace", "adopted_by")
            .prefetch_related(Prefetch("items", queryset=items)))


def _workspace(request: Request) -> Workspace:
    slug = request.query_params.get("workspace", "")
    if not slug:
        raise ValidationError({"workspace": ["give the workspace's slug: ?workspace=..."]})
    workspace = workspaces_for(request.user).filter(slug=slug).first()
    if workspace is None:
        raise Http404("No such workspace")
    return workspace


def base_url(request: Any) -> str:
    """The scheme and host the caller used: absolute links in webhook payloads."""
    return request.build_absolute_uri("/").rstrip("/")


def diff_body(base: str, new: str, changes: list[Any]) -> dict[str, Any]:
    return {"base": base, "new": new, "changes": [c.to_dict() for c in changes]}


@read_schema(RoadmapVersionSerializer, parameters=[
    OpenApiParameter("workspace", str, description="workspace slug")])
class RoadmapVersionViewSet(viewsets.ReadOnlyModelViewSet):
    """Every version of each workspace's approved roadmap, newest first."""

    serializer_class = RoadmapVersionSerializer
    ordering_fields = ["number", "adopted_at"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        qs = versions_for(self.request.user).order_by("workspace_id", "-number")
        slug = self.request.query_params.get("workspace")
        return qs.filter(workspace__slug=slug) if slug else qs

    @extend_schema(parameters=[WORKSPACE], responses={200: RoadmapVersionSerializer,
                                                      **LIST_ERRORS})
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def current(self, request: Request) -> Response:
        """The workspace's current roadmap (its latest version); 404 before the first
        adoption."""
        workspace = _workspace(request)
        version = versions_for(request.user).filter(workspace=workspace).order_by(
            "-number").first()
        if version is None:
            raise Http404("No roadmap version yet: adopt a run first")
        return Response(RoadmapVersionSerializer(version).data)

    @extend_schema(parameters=[OpenApiParameter(
        "against", int, description="id of the version to compare with (default: the one "
                                    "before)")], responses={200: RoadmapDiffSerializer,
                                                            **LIST_ERRORS})
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def diff(self, request: Request, pk: str | None = None) -> Response:
        """What changed from another version (default: the previous one) to this one: items
        added, dropped, moved, value changed, each with its reasons."""
        version = self.get_object()
        against = request.query_params.get("against")
        if against:
            if not against.isdigit():
                raise ValidationError({"against": ["give a version id"]})
            base = versions_for(request.user).filter(pk=int(against),
                                                     workspace=version.workspace).first()
            if base is None:
                raise ValidationError({"against": [f"no version {against} in this workspace"]})
        else:
            label, changes = roadmap.diff_from_previous(version)
            return Response(diff_body(label, f"v{version.number}", changes))
        return Response(diff_body(f"v{base.number}", f"v{version.number}",
                                  roadmap.diff_versions(base, version)))

    @extend_schema(request=AdoptSerializer, responses={201: RoadmapVersionSerializer, **ERRORS})
    @action(detail=False, methods=["post"])
    def adopt(self, request: Request) -> Response:
        """The council adopts a run (its chosen items, or ``items``) as the next version.
        A stale run, or an item not in the run, is a 400 naming it."""
        values = validated(AdoptSerializer, request)
        run = selectors.runs_for(request.user).filter(pk=values["run"]).first()
        if run is None:
            raise Http404("No such run")
        require_role(request.user, run.workspace_id, "decide")
        try:
            version = roadmap.roadmap_adopt(run=run, user=request.user,
                                            items=values.get("items"),
                                            note=values.get("note", ""),
                                            base_url=base_url(request))
        except services.PlannerInvalid as exc:
            raise field_invalid(exc) from None
        version = versions_for(request.user).get(pk=version.pk)
        return Response(RoadmapVersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RoadmapDecideSerializer, responses={201: DecisionSerializer,
                                                               **ERRORS})
    @action(detail=True, methods=["post"])
    def decide(self, request: Request, pk: str | None = None) -> Response:
        """The council's verdict (approve, defer, reject, revoke) on an item of this version,
        which must be the current one. 400 naming the item and field: not on the version,
        or revoking an item an approved one depends on."""
        version: RoadmapVersion = checked_object(self, "decide")
        values = validated(RoadmapDecideSerializer, request)
        investment = Investment.objects.filter(pk=values["investment"],
                                               workspace_id=version.workspace_id).first()
        if investment is None:
            raise ValidationError({"investment": [f"#{values['investment']} is not an "
                                                  "investment of this workspace"]})
        try:
            decision = roadmap.roadmap_decide(version=version, investment=investment,
                                              verdict=values["verdict"],
                                              rationale=values["rationale"], user=request.user,
                                              base_url=base_url(request))
        except services.PlannerInvalid as exc:
            raise field_invalid(exc) from None
        return Response(DecisionSerializer(decision).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[WORKSPACE, OpenApiParameter("as", str, enum=list(FORMATS)),
                               OpenApiParameter("version", int, description="version number "
                                                "(default: the current one)")],
                   responses={200: None, **LIST_ERRORS})
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def export(self, request: Request) -> Response | HttpResponse:
        """The approved items of a version in a roadmap tool's import shape: ``as=jira``
        (Jira CSV issue import), ``productboard`` (feature import CSV) or ``json`` (stable
        external ids). An empty roadmap still gets its header row."""
        workspace = _workspace(request)
        shape = request.query_params.get("as", "json")
        if shape not in FORMATS:
            raise ValidationError({"as": [f"one of {', '.join(FORMATS)}"]})
        number = request.query_params.get("version")
        versions = RoadmapVersion.objects.filter(workspace=workspace).select_related("workspace")
        if number:
            if not number.isdigit():
                raise ValidationError({"version": ["give a version number"]})
            version = versions.filter(number=int(number)).first()
            if version is None:
                raise ValidationError({"version": [f"no version {number} in this workspace"]})
        else:
            version = versions.order_by("-number").first()
        rows = roadmap.export_rows(version)
        if shape == "json":
            return Response(roadmap_formats.roadmap_json(roadmap.export_meta(version, workspace),
                                                         rows))
        text = (roadmap_formats.jira_csv(rows) if shape == "jira"
                else roadmap_formats.productboard_csv(rows))
        response = HttpResponse(text, content_type="text/csv")
        name = f"roadmap-{workspace.slug}-v{version.number if version else 0}-{shape}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
