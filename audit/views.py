"""The audit history page and its read-only API."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.exceptions import ValidationError

from accounts import selectors as ws_selectors
from accounts.api.schema import LIST_ERRORS

from . import selectors
from .models import Action, AuditEntry
from .recorder import TRACKED


def _date(raw: str, name: str) -> dt.date | None:
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValidationError({name: ["a date as YYYY-MM-DD"]}) from None


@login_required
def audit_list(request: HttpRequest, slug: str) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    if not selectors.can_read(membership):
        raise PermissionDenied
    q = request.GET
    filters = {k: q.get(k, "").strip() for k in ("object_type", "object_id", "actor", "action",
                                                  "since", "until")}
    try:
        since, until = _date(filters["since"], "since"), _date(filters["until"], "until")
    except ValidationError:
        since = until = None
    entries = selectors.filtered(
        selectors.entries_for(request.user).filter(workspace=workspace),
        object_type=filters["object_type"], object_id=filters["object_id"],
        actor=filters["actor"], action=filters["action"], since=since, until=until)
    page = Paginator(entries, 100).get_page(q.get("page"))
    return render(request, "audit/list.html", {
        "workspace": workspace, "membership": membership, "page": page, "filters": filters,
        "object_types": sorted(TRACKED), "actions": Action.choices})


class AuditEntrySerializer(serializers.ModelSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    actor = serializers.CharField(source="actor_name", read_only=True)

    class Meta:
        model = AuditEntry
        fields = ["id", "workspace", "actor", "action", "object_type", "object_id",
                  "object_repr", "before", "after", "changed_fields", "source", "request_id",
                  "created_at"]
        read_only_fields = fields


FILTERS = [
    OpenApiParameter("workspace", str, description="workspace slug"),
    OpenApiParameter("object_type", str, description='e.g. "planner.investment" or "segment"'),
    OpenApiParameter("object_id", str),
    OpenApiParameter("actor", str, description="username"),
    OpenApiParameter("action", str, enum=[a for a, _ in Action.choices]),
    OpenApiParameter("since", OpenApiTypes.DATE, description="ISO date, inclusive (UTC)"),
    OpenApiParameter("until", OpenApiTypes.DATE, description="ISO date, inclusive (UTC)"),
]


@extend_schema_view(list=extend_schema(parameters=FILTERS, responses={
    200: AuditEntrySerializer(many=True), **LIST_ERRORS}))
class AuditViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The audit history of the workspaces where you are council or admin (read-only)."""

    serializer_class = AuditEntrySerializer
    filter_backends: list[type] = []

    def get_queryset(self):  # type: ignore[no-untyped-def]
        q = self.request.query_params
        entries = selectors.entries_for(self.request.user)
        if q.get("workspace"):
            entries = entries.filter(workspace__slug=q["workspace"])
        return selectors.filtered(
            entries, object_type=q.get("object_type", ""), object_id=q.get("object_id", ""),
            actor=q.get("actor", ""), action=q.get("action", ""),
            since=_date(q.get("since", ""), "since"), until=_date(q.get("until", ""), "until"))
