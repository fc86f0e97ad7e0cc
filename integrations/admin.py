from __future__ import annotations

from django.contrib import admin

from .models import WebhookDelivery, WebhookSubscription


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    list_display = ["id", "workspace", "url", "active", "created_at"]
    list_filter = ["active", "workspace"]
    exclude = ["secret"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "subscription", "event", "state", "attempts", "last_status",
                    "next_attempt_at", "created_at"]
    list_filter = ["state", "event"]
    readonly_fields = ["payload", "event_id"]
