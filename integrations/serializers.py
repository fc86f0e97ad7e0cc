from __future__ import annotations

from rest_framework import serializers

from .models import WebhookAttempt, WebhookDelivery, WebhookEvent, WebhookSubscription


class WebhookSerializer(serializers.ModelSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                              allow_null=True)
    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEvent.choices))

    class Meta:
        model = WebhookSubscription
        fields = ["id", "workspace", "url", "description", "events", "active", "created_by",
                  "created_at", "updated_at"]
        read_only_fields = fields


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(read_only=True, help_text=(
        "shown only in this response: keep it to verify the X-SegmentPlanner-Signature header"))

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookCreateSerializer(serializers.Serializer):
    workspace = serializers.SlugField(help_text="workspace slug")
    url = serializers.CharField(max_length=2000, help_text=(
        "http:// or https:// endpoint on a public address (loopback, private and link-local "
        "addresses are refused unless the server allows private targets)"))
    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEvent.choices),
                                   allow_empty=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True,
                                        default="")
    active = serializers.BooleanField(default=True)


class WebhookUpdateSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000, required=False)
    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEvent.choices),
                                   allow_empty=False, required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    active = serializers.BooleanField(required=False)


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["number", "started_at", "status_code", "response_excerpt", "error",
                  "duration_ms", "next_attempt_at"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    attempt_log = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = ["id", "subscription", "event", "event_id", "state", "attempts", "last_status",
                  "last_error", "last_response", "last_duration_ms", "next_attempt_at",
                  "created_at", "delivered_at", "payload", "attempt_log"]
