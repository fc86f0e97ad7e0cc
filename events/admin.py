from __future__ import annotations

from django.contrib import admin

from .models import Dataset, Import


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace", "version", "total_events", "total_users", "updated_at"]
    list_filter = ["workspace"]
    readonly_fields = ["version", "total_events", "total_users", "event_catalog",
                       "attribute_catalog"]


@admin.register(Import)
class ImportAdmin(admin.ModelAdmin):
    list_display = ["id", "dataset", "status", "events_name", "rows_read", "rows_added",
                    "created_at"]
    list_filter = ["status", "workspace"]
    readonly_fields = ["report", "error", "input_hash"]
