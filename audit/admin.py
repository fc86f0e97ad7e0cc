from __future__ import annotations

from django.contrib import admin

from .models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "workspace", "actor_name", "action", "object_type",
                    "object_id", "object_repr", "source")
    list_filter = ("action", "object_type", "source")
    search_fields = ("object_repr", "actor_name", "request_id")

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
