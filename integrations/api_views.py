"""REST API v1: webhook subscriptions (admins manage, members read), deliveries, test pings."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors as ws_selectors
from accounts.api.filters import UpdatedAtFilterSet
from accounts.api.permissions import checked_object, require_role
from accounts.api.schema import ERRORS, LIST_ERRORS, READ_ERRORS
from accounts.api.serializers import field_invalid, validated

from . import webhooks
from .models import DeliveryState, WebhookSubscription
from .serializers import (
    WebhookCreatedSerializer,
    WebhookCreateSerializer,
    WebhookDeliverySerializer,
    WebhookSerializer,
    WebhookUpdateSerializer,
)

WRITE_ACTION = "manage"



class WebhookFilter(UpdatedAtFilterSet):
    class Meta:
        model = WebhookSubscription
        fields = {"workspace__slug": ["exact"], "active": ["exact"], "updated_at": ["gte"]}


@extend_schema_view(
    list=extend_schema(responses={200: WebhookSerializer(many=True), **READ_ERRORS,
                                  **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: WebhookSerializer, **READ_ERRORS}),
    create=extend_schema(
        request=WebhookCreateSerializer, responses={201: WebhookCreatedSerializer, **ERRORS},
        description="Subscribe an endpoint (admin role). The response carries the signing "
                    "secret; it is never shown again."),
    partial_update=extend_schema(request=WebhookUpdateSerializer,
                                 responses={200: WebhookSerializer, **ERRORS}),
    destroy=extend_schema(responses={204: None, **ERRORS}),
)
class WebhookViewSet(viewsets.ModelViewSet):
    serializer_class = WebhookSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    filterset_class = WebhookFilter
    ordering_fields = ["created_at", "updated_at", "url"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return webhooks.subscriptions_for(self.request.user).order_by("-created_at", "-id")

    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        values = validated(WebhookCreateSerializer, request)
        workspace, _ = ws_selectors.workspace_get(request.user, values["workspace"])
        require_role(request.user, workspace.pk, WRITE_ACTION)
        try:
            subscription = webhooks.subscription_create(
                workspace=workspace, url=values["url"], events=values["events"],
                user=request.user, description=values["description"], active=values["active"])
        except webhooks.WebhookInvalid as exc:
            raise field_invalid(exc) from None
        return Response(WebhookCreatedSerializer(subscription).data,
                        status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: object, **kwargs: object) -> Response:
        subscription = checked_object(self, WRITE_ACTION)
        values = validated(WebhookUpdateSerializer, request, partial=True)
        try:
            subscription = webhooks.subscription_update(subscription=subscription,
                                                        **values)
        except webhooks.WebhookInvalid as exc:
            raise field_invalid(exc) from None
        return Response(WebhookSerializer(subscription).data)

    def destroy(self, request: Request, *args: object, **kwargs: object) -> Response:
        subscription = checked_object(self, WRITE_ACTION)
        webhooks.subscription_delete(subscription=subscription)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[OpenApiParameter("state", enum=DeliveryState.values, required=False)],
        responses={200: WebhookDeliverySerializer(many=True), **READ_ERRORS, 400: ERRORS[400]})
    @action(detail=True, methods=["get"], filter_backends=[])
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        """The delivery log, newest first: each event's state, retries and every attempt."""
        subscription = self.get_object()
        qs = subscription.deliveries.prefetch_related("attempt_log").order_by("-created_at",
                                                                              "-id")
        if state := request.query_params.get("state"):
            if state not in DeliveryState.values:
                raise ValidationError({"state": [f"one of {', '.join(DeliveryState.values)}"]})
            qs = qs.filter(state=state)
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Send a signed ``ping`` event to this endpoint now (admin role)."""
        subscription = checked_object(self, WRITE_ACTION)
        delivery = webhooks.send_test(subscription=subscription)
        return Response(WebhookDeliverySerializer(delivery).data,
                        status=status.HTTP_202_ACCEPTED)
