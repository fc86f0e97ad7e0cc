"""One row per recorded change: who, what, when, and the values before and after."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import Workspace, user_link


class Action(models.TextChoices):
    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    DELETE = "delete", "Delete"
    BULK_UPDATE = "bulk_update", "Bulk update"
    LINK = "link", "Link (add related)"
    UNLINK = "unlink", "Unlink (remove related)"


class Source(models.TextChoices):
    WEB = "web", "Web page"
    API = "api", "API"
    JOB = "job", "Background job"
    COMMAND = "command", "Command / service"
    SYSTEM = "system", "System"


class AuditEntry(models.Model):
    """A change to a hypothesis, experiment, investment, decision or segment definition."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE,
                                  related_name="audit_entries")
    actor = user_link()
    actor_name = models.CharField(max_length=150, blank=True,
                                  help_text="the username then (kept if the user is deleted)")
    action = models.CharField(max_length=16, choices=Action.choices)
    object_type = models.CharField(max_length=60, help_text='"app_label.model"')
    object_id = models.CharField(max_length=40)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    changed_fields = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.SYSTEM)
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["workspace", "object_type", "object_id"]),
                   models.Index(fields=["workspace", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type}#{self.object_id} by {self.actor_name or '-'}"
