"""The planning domain: hypotheses, investments, scenarios, optimizer runs, decisions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Workspace, user_link
from experiments.models import Hypothesis
from jobs.models import Job, RequestedJobRecord
from segments.models import Segment


class Roadmap(models.TextChoices):
    CORE = "core"
    EXPERIMENTAL = "experimental"
    NICHE = "niche"


class ValueBasis(models.TextChoices):
    LTV_90 = "ltv_90", "LTV at 90 days"
    LTV_365 = "ltv_365", "LTV at 365 days"
    PREDICTED_CLV = "predicted_clv", "Predicted CLV (1 year)"
    ARPU = "revenue_per_active_user", "Revenue per active user (30 days) x horizon"


class InvestmentStatus(models.TextChoices):
    PROPOSED = "proposed"
    APPROVED = "approved"
    DEFERRED = "deferred"
    REJECTED = "rejected"
    DONE = "done"


class Investment(models.Model):
    """A proposed piece of work; its expected value is computed from its sources."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="investments")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    roadmap = models.CharField(max_length=16, choices=Roadmap.choices, default=Roadmap.CORE)
    cost = models.FloatField(help_text="money")
    effort = models.JSONField(default=dict, blank=True,
                              help_text='team -> effort units, e.g. {"growth": 2}')
    duration_quarters = models.PositiveSmallIntegerField(default=1)
    target_segments = models.ManyToManyField(Segment, blank=True, related_name="investments")
    hypotheses = models.ManyToManyField(Hypothesis, blank=True, related_name="investments")
    depends_on = models.ManyToManyField("self", symmetrical=False, blank=True,
                                        related_name="enables")
    exclusion_group = models.CharField(max_length=100, blank=True,
                                       help_text="items sharing a group are alternatives")
    must_do = models.BooleanField(default=False)
    must_not = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=InvestmentStatus.choices,
                              default=InvestmentStatus.PROPOSED)
    owner = user_link()
    adoption = models.FloatField(default=0.2, help_text="expected share of the segment reached")
    value_basis = models.CharField(max_length=32, choices=ValueBasis.choices,
                                   default=ValueBasis.LTV_90)
    horizon_months = models.PositiveSmallIntegerField(default=12)
    # Assumptions used when no segment snapshot or hypothesis supplies the figure.
    assumed_reach = models.PositiveIntegerField(null=True, blank=True)
    assumed_value_per_user = models.FloatField(null=True, blank=True)
    assumed_lift = models.FloatField(null=True, blank=True)
    # Alternative rankings' inputs (RICE / ICE), on the usual scales.
    impact = models.FloatField(default=1.0, help_text="RICE impact: 0.25, 0.5, 1, 2, 3")
    confidence = models.FloatField(default=0.5, help_text="0..1")
    ease = models.FloatField(default=5.0, help_text="ICE ease 1..10")
    # Computed, with where each figure came from.
    expected_value = models.FloatField(default=0.0)
    value_low = models.FloatField(default=0.0)
    value_high = models.FloatField(default=0.0)
    value_sources = models.JSONField(default=dict, blank=True)
    reach_users = models.FloatField(default=0.0, help_text="users reached: reach x adoption")
    effort_total = models.FloatField(default=0.0, help_text="sum of team effort units")
    value_computed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-expected_value", "id"]
        indexes = [models.Index(fields=["workspace", "roadmap", "status"]),
                   # The backlog page cache's version: latest edit and re-valuation by index.
                   models.Index(fields=["workspace", "updated_at"], name="inv_ws_updated"),
                   models.Index(fields=["workspace", "value_computed_at"],
                                name="inv_ws_valued")]

    def __str__(self) -> str:
        return self.title


class ValueEstimate(models.Model):
    """History of an investment's computed value: every change, with its sources and reason."""

    investment = models.ForeignKey(Investment, on_delete=models.CASCADE, related_name="estimates")
    expected_value = models.FloatField()
    value_low = models.FloatField()
    value_high = models.FloatField()
    sources = models.JSONField(default=dict)
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]


class Scenario(models.Model):
    """Budget, roadmap shares, capacities and options for one optimizer run."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="scenarios")
    name = models.CharField(max_length=200)
    budget = models.FloatField()
    shares = models.JSONField(default=dict, blank=True,
                              help_text='roadmap -> [min, max] share of spend')
    capacity = models.JSONField(default=dict, blank=True,
                                help_text='"team|quarter" -> capacity units')
    quarters = models.JSONField(default=list, blank=True)
    min_coverage = models.JSONField(default=dict, blank=True,
                                    help_text="segment id -> at least k chosen items")
    schedule = models.BooleanField(default=False)
    robust_draws = models.PositiveIntegerField(default=0)
    frontier_points = models.PositiveSmallIntegerField(default=10)
    time_limit = models.FloatField(default=30.0)
    created_by = user_link()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"],
                                               name="scenario_name_per_workspace")]

    def __str__(self) -> str:
        return self.name


class OptimizationRun(RequestedJobRecord):
    """One optimizer run: its full inputs (reproducible) and its plan."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="runs")
    scenario = models.ForeignKey(Scenario, on_delete=models.CASCADE, related_name="runs")
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="optimization_run")
    inputs = models.JSONField(default=dict)
    status = models.CharField(max_length=20, blank=True)
    proven_optimal = models.BooleanField(default=False)
    gap = models.FloatField(null=True, blank=True)
    objective = models.FloatField(null=True, blank=True)
    best_bound = models.FloatField(null=True, blank=True)
    plan = models.JSONField(default=dict, blank=True)
    frontier = models.JSONField(default=list, blank=True)
    robust = models.JSONField(default=dict, blank=True)

    class Meta(RequestedJobRecord.Meta):
        pass

    def __str__(self) -> str:
        return f"run #{self.pk} of {self.scenario}"


class Allocation(models.Model):
    """One investment's place in a run: chosen or not, when, and why."""

    run = models.ForeignKey(OptimizationRun, on_delete=models.CASCADE, related_name="allocations")
    investment = models.ForeignKey(Investment, on_delete=models.CASCADE,
                                   related_name="allocations")
    roadmap = models.CharField(max_length=16, choices=Roadmap.choices)
    chosen = models.BooleanField()
    start_quarter = models.CharField(max_length=20, blank=True)
    cost = models.FloatField()
    value = models.FloatField()
    inclusion_probability = models.FloatField(null=True, blank=True)
    entry_value = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["run", "-chosen", "-value"]
        constraints = [models.UniqueConstraint(fields=["run", "investment"],
                                               name="one_allocation_per_item")]


class Verdict(models.TextChoices):
    APPROVE = "approve"
    DEFER = "defer"
    REJECT = "reject"


class Decision(models.Model):
    """The council's verdict on an item of a run, with its rationale."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="decisions")
    run = models.ForeignKey(OptimizationRun, on_delete=models.CASCADE, related_name="decisions")
    investment = models.ForeignKey(Investment, on_delete=models.CASCADE, related_name="decisions")
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    rationale = models.TextField()
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                   on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-decided_at", "-id"]


