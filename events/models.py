"""Datasets (an event store per dataset), their imports and erasures."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import Workspace, user_link
from jobs.models import Job, JobRecord, RequestedJobRecord


class IdMode(models.TextChoices):
    UNSET = "", "Not set yet"
    RAW = "raw", "Raw user ids"
    PSEUDONYMIZED = "pseudonymized", "Pseudonymized (keyed hash)"


class Dataset(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=0, help_text="published event-store version")
    total_events = models.BigIntegerField(default=0)
    total_users = models.BigIntegerField(default=0)
    outcome_event = models.CharField(max_length=200, blank=True,
                                     help_text="the event counted as conversion (e.g. upgrade)")
    event_catalog = models.JSONField(default=list, blank=True)
    event_kinds = models.JSONField(
        default=dict, blank=True,
        help_text="per event name, 'activity' or 'system' where it overrides the default "
                  "(system: billing and server events, never a return visit)")
    retention_start_event = models.CharField(
        max_length=200, blank=True,
        help_text="the event that starts a user's retention clock (empty: signup)")
    retention_return_events = models.JSONField(
        default=list, blank=True,
        help_text="the events that count as a return (empty: every activity event)")
    attribute_catalog = models.JSONField(default=list, blank=True)
    id_mode = models.CharField(
        max_length=16, choices=IdMode.choices, default=IdMode.UNSET, blank=True,
        help_text="how user ids are stored; set by the first import, never mixed")
    pseudonym_key_check = models.CharField(
        max_length=16, blank=True,
        help_text="a keyed check value of the pseudonymization key (not the key)")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="dataset_name_per_workspace")
        ]

    @property
    def store_key(self) -> str:
        return f"ws{self.workspace_id}-ds{self.pk}"

    def __str__(self) -> str:
        return self.name


class ImportStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    REJECTED = "rejected"
    FAILED = "failed"


class Import(RequestedJobRecord):
    """One upload of an events file and/or a users file into a dataset."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="imports")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="imports")
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="import_record")
    status = models.CharField(max_length=16, choices=ImportStatus.choices,
                              default=ImportStatus.PENDING, db_index=True)
    events_name = models.CharField(max_length=255, blank=True)
    users_name = models.CharField(max_length=255, blank=True)
    events_path = models.CharField(max_length=500, blank=True)
    users_path = models.CharField(max_length=500, blank=True)
    input_hash = models.CharField(max_length=64, db_index=True,
                                  help_text="sha256 of the files' bytes and the options")
    options = models.JSONField(default=dict, blank=True)
    report = models.JSONField(default=dict, blank=True)
    error = models.JSONField(default=dict, blank=True)
    rows_read = models.BigIntegerField(default=0)
    rows_kept = models.BigIntegerField(default=0)
    rows_added = models.BigIntegerField(default=0)
    dataset_version = models.PositiveIntegerField(null=True, blank=True)

    class Meta(RequestedJobRecord.Meta):
        pass

    def __str__(self) -> str:
        return f"import #{self.pk} into {self.dataset}"


class Erasure(JobRecord):
    """One erasure request: a user's events, attributes and traces in results removed.

    The user id itself is not kept: ``user_hash`` is a salted, keyed hash of the id as stored
    (the pseudonym in a pseudonymized dataset)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="erasures")
    dataset = models.ForeignKey(Dataset, null=True, on_delete=models.SET_NULL,
                                related_name="erasures")
    dataset_name = models.CharField(max_length=200, blank=True)
    user_hash = models.CharField(max_length=100)
    requested_by = user_link()
    reason = models.TextField(blank=True)
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="erasure")
    counts = models.JSONField(default=dict, blank=True,
                              help_text="events and attributes removed, results touched, "
                                        "the new store version")

    class Meta(JobRecord.Meta):
        pass

    def __str__(self) -> str:
        return f"erasure #{self.pk} in {self.dataset_name}"
