"""Jobs: every long task is a row with state, progress, error, input hash and a lease."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import Workspace, user_link


class JobState(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class JobRecord(models.Model):
    """What every job and job-made record keeps: when it was created and finished; listed
    newest first."""

    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]


class RequestedJobRecord(JobRecord):
    """A job record someone asked for, with the hash of its inputs (repeat requests reuse it)."""

    input_hash = models.CharField(max_length=64, db_index=True)
    created_by = user_link()

    class Meta(JobRecord.Meta):
        abstract = True


class Job(RequestedJobRecord):
    """A long task: claimed atomically by a worker, safe to run twice, visible in UI and API."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=40)
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED,
                             db_index=True)
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta(RequestedJobRecord.Meta):
        pass

    @property
    def is_done(self) -> bool:
        return self.state in {JobState.SUCCEEDED, JobState.FAILED}

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.state})"
