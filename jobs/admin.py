from __future__ import annotations

from django.contrib import admin

from .models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "workspace", "state", "progress", "attempts", "created_at"]
    list_filter = ["state", "kind"]
