"""REST API v1: behaviour analyses (funnels, paths, retention, discovery) and saving from them."""

from __future__ import annotations

from django.db import IntegrityError
from drf_spectacular.utils import (
    extend_schema,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors as ws_selectors
from accounts.api.permissions import checked_object, require_role
from accounts.api.schema import ERRORS, read_schema
from accounts.api.serializers import field_invalid, validated
from events import selectors as event_selectors
from segments import segment_services
from segments.api.serializers import SegmentSerializer

from .serializers import AnalysisCreateSerializer, AnalysisSerializer, SaveSegmentSerializer


@read_schema(AnalysisSerializer)
class AnalysisViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Funnels, paths, retention cohorts and behaviour discovery: one cached result per dataset
    version and input; computed by a job."""

    serializer_class = AnalysisSerializer
    filterset_fields = ["kind", "dataset"]
    ordering_fields = ["created_at"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        from behaviour.models import BehaviourAnalysis

        return BehaviourAnalysis.objects.filter(
            workspace__in=ws_selectors.workspaces_for(self.request.user)).select_related(
            "workspace", "job", "dataset").order_by("-created_at", "-id")

    @extend_schema(request=AnalysisCreateSerializer,
                   responses={200: AnalysisSerializer, 202: AnalysisSerializer, **ERRORS},
                   description="200 with the cached result when the same input was analyzed "
                               "on this dataset version; else 202 and a job.")
    def create(self, request: Request) -> Response:
        from behaviour import services as bs

        values = validated(AnalysisCreateSerializer, request)
        dataset = event_selectors.dataset_get(request.user, values["dataset"])
        require_role(request.user, dataset.workspace_id, "define")  # viewers start no compute
        try:
            analysis = bs.analysis_start(dataset=dataset, kind=values["kind"],
                                         params=values["params"], user=request.user)
        except bs.AnalysisInvalid as exc:
            raise field_invalid(exc) from None
        fresh = not analysis.result and analysis.job is not None and \
            analysis.job.state != "succeeded"
        return Response(AnalysisSerializer(analysis).data,
                        status=status.HTTP_202_ACCEPTED if fresh else status.HTTP_200_OK)

    @extend_schema(request=SaveSegmentSerializer, responses={201: SegmentSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def save(self, request: Request, pk: str | None = None) -> Response:
        """A funnel's drop-off users after `step`, or the discovered behaviour ranked `rank`
        (optionally with an exploratory hypothesis), saved as a segment."""
        from behaviour import services as bs

        analysis = checked_object(self, "define")
        d = validated(SaveSegmentSerializer, request)
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
            raise field_invalid(exc) from None
        except segment_services.DefinitionError as exc:
            raise ValidationError({"definition": [str(exc)]}) from None
        except IntegrityError:
            raise ValidationError({"name": ["a segment with this name exists"]}) from None
        return Response(SegmentSerializer(segment).data, status=status.HTTP_201_CREATED)
