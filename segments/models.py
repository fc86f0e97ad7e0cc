"""Segments, refreshes and snapshots."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.domains import in_range, within
from accounts.models import Workspace, user_link
from events.models import Dataset
from jobs.models import Job, JobRecord


class SegmentKind(models.TextChoices):
    RULE = "rule", "Rule"
    RFM = "rfm", "RFM segment"
    CLUSTER = "cluster", "Cluster suggestion"


class Segment(models.Model):
    """A group of users defined by a rule tree (or an RFM class / a saved cluster)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="segments")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="segments")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=SegmentKind.choices, default=SegmentKind.RULE)
    definition = models.JSONField(default=dict, help_text="rule tree, or {'rfm': name}, or "
                                  "{'cluster': {...centroid...}}")
    owner = user_link(related_name="owned_segments")
    assumptions = models.TextField(blank=True, help_text="what this definition takes for granted")
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "name"], name="segment_name_per_dataset")
        ]

    def __str__(self) -> str:
        return self.name


class Refresh(JobRecord):
    """One evaluation of every segment of a dataset at one dataset version."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="refreshes")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="refreshes")
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="refresh")
    dataset_version = models.PositiveIntegerField()
    as_of = models.DateTimeField()
    baseline = models.JSONField(default=dict, blank=True, help_text="signals of all users")
    summary = models.JSONField(default=dict, blank=True)

    class Meta(JobRecord.Meta):
        pass

    def __str__(self) -> str:
        return f"refresh #{self.pk} of {self.dataset} v{self.dataset_version}"


class SegmentSnapshot(models.Model):
    """A segment's membership size and value signals at one refresh."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="snapshots")
    refresh = models.ForeignKey(Refresh, on_delete=models.CASCADE, related_name="snapshots")
    dataset_version = models.PositiveIntegerField()
    computed_at = models.DateTimeField(default=timezone.now)
    size = models.BigIntegerField(validators=within(0, 2**63 - 1), help_text="members")
    share = models.FloatField(validators=within(0.0, 1.0),
                              help_text="of the dataset's users: 0 to 1")
    hidden = models.BooleanField(default=False, help_text="below the minimum displayable size")
    signals = models.JSONField(default=dict)
    holdout = models.JSONField(default=dict, blank=True)
    drift = models.JSONField(default=dict, blank=True)
    retention = models.JSONField(default=dict, blank=True)
    warnings = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-computed_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["segment", "refresh"], name="one_snapshot_per_refresh"),
            models.CheckConstraint(condition=models.Q(size__gte=0), name="snapshot_size_range"),
            in_range("share", 0, 1, name="snapshot_share_range"),
        ]

    def __str__(self) -> str:
        return f"{self.segment} @ v{self.dataset_version}"
