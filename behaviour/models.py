"""Behaviour analyses (funnels, paths, retention, discovery), cached per dataset version."""

from __future__ import annotations

from django.db import models

from accounts.models import AuthoredRecord, Workspace
from events.models import Dataset
from jobs.models import Job


class AnalysisKind(models.TextChoices):
    FUNNEL = "funnel", "Funnel"
    PATHS = "paths", "Paths"
    RETENTION = "retention", "Retention cohorts"
    DISCOVERY = "discovery", "High-value behaviour discovery"
    TRENDS = "trends", "Trends"


class BehaviourAnalysis(AuthoredRecord):
    """A funnel, paths, retention or discovery result, cached per dataset version and input."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE,
                                  related_name="behaviour_analyses")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE,
                                related_name="behaviour_analyses")
    kind = models.CharField(max_length=12, choices=AnalysisKind.choices)
    params = models.JSONField(default=dict)
    dataset_version = models.PositiveIntegerField()
    input_hash = models.CharField(max_length=64, db_index=True)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL,
                            related_name="+")
    result = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class SavedInsight(AuthoredRecord):
    """A behaviour analysis's inputs pinned to the workspace's insights dashboard; ``analysis``
    is the result shown (re-read on the dataset's newest version when it changes)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE,
                                  related_name="saved_insights")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="saved_insights")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=12, choices=AnalysisKind.choices)
    params = models.JSONField(default=dict)
    position = models.PositiveIntegerField(default=0)
    analysis = models.ForeignKey(BehaviourAnalysis, null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name
