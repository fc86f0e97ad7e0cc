"""The planning domain: hypotheses, investments, scenarios, optimizer runs, decisions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Workspace
from jobs.models import Job
from segments.models import Segment


class Roadmap(models.TextChoices):
    CORE = "core", "Core"
    EXPERIMENTAL = "experimental", "Experimental"
    NICHE = "niche", "Niche"


class Evidence(models.TextChoices):
    """How much we know; sets the probability that the expected lift is real."""

    ASSUMPTION = "assumption", "Assumption (no data)"
    OBSERVATIONAL = "observational", "Observational / correlational"
    EXPERIMENT = "experiment", "One experiment"
    REPLICATED = "replicated", "Replicated experiments"


PROBABILITY_OF_SUCCESS = {
    Evidence.ASSUMPTION: 0.2,
    Evidence.OBSERVATIONAL: 0.35,
    Evidence.EXPERIMENT: 0.7,
    Evidence.REPLICATED: 0.85,
}


class HypothesisStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    PRIORITIZED = "prioritized", "Prioritized"
    TESTING = "testing", "Testing"
    VALIDATED = "validated", "Validated"
    INVALIDATED = "invalidated", "Invalidated"
    INCONCLUSIVE = "inconclusive", "Inconclusive"


class Hypothesis(models.Model):
    """A belief about a segment: the mechanism, the metric and the effect we expect."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="hypotheses")
    statement = models.CharField(max_length=300)
    mechanism = models.TextField(blank=True)
    metric = models.CharField(max_length=100, blank=True)
    expected_lift = models.FloatField(default=0.0, help_text="relative, 0.10 = +10%")
    expected_lift_low = models.FloatField(null=True, blank=True)
    expected_lift_high = models.FloatField(null=True, blank=True)
    basis = models.TextField(blank=True, help_text="where the expected effect comes from")
    evidence = models.CharField(max_length=16, choices=Evidence.choices,
                                default=Evidence.ASSUMPTION)
    measured_lift = models.FloatField(null=True, blank=True,
                                      help_text="experiment estimate, replaces the expectation")
    measured_lift_low = models.FloatField(null=True, blank=True)
    measured_lift_high = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=HypothesisStatus.choices,
                              default=HypothesisStatus.PROPOSED)
    segments = models.ManyToManyField(Segment, blank=True, related_name="hypotheses")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="+")
    exploratory = models.BooleanField(
        default=False, help_text="logged after looking at the data: confirm before relying on it")
    guardrail_metrics = models.JSONField(default=list, blank=True,
                                         help_text="metrics that must not get worse")
    source = models.JSONField(default=dict, blank=True,
                              help_text="where it came from, e.g. a behaviour-discovery result")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        verbose_name_plural = "hypotheses"

    def __str__(self) -> str:
        return self.statement


class ValueBasis(models.TextChoices):
    LTV_90 = "ltv_90", "LTV at 90 days"
    LTV_365 = "ltv_365", "LTV at 365 days"
    PREDICTED_CLV = "predicted_clv", "Predicted CLV (1 year)"
    ARPU = "revenue_per_active_user", "Revenue per active user (30 days) x horizon"


class InvestmentStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    APPROVED = "approved", "Approved"
    DEFERRED = "deferred", "Deferred"
    REJECTED = "rejected", "Rejected"
    DONE = "done", "Done"


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
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="+")
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
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"],
                                               name="scenario_name_per_workspace")]

    def __str__(self) -> str:
        return self.name


class OptimizationRun(models.Model):
    """One optimizer run: its full inputs (reproducible) and its plan."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="runs")
    scenario = models.ForeignKey(Scenario, on_delete=models.CASCADE, related_name="runs")
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="optimization_run")
    input_hash = models.CharField(max_length=64, db_index=True)
    inputs = models.JSONField(default=dict)
    status = models.CharField(max_length=20, blank=True)
    proven_optimal = models.BooleanField(default=False)
    gap = models.FloatField(null=True, blank=True)
    objective = models.FloatField(null=True, blank=True)
    best_bound = models.FloatField(null=True, blank=True)
    plan = models.JSONField(default=dict, blank=True)
    frontier = models.JSONField(default=list, blank=True)
    robust = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

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
    APPROVE = "approve", "Approve"
    DEFER = "defer", "Defer"
    REJECT = "reject", "Reject"


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


# The status workflow: proposed -> prioritized -> testing -> validated | invalidated |
# inconclusive. A concluded hypothesis may be re-opened for another test.
CONCLUDED = (HypothesisStatus.VALIDATED, HypothesisStatus.INVALIDATED,
             HypothesisStatus.INCONCLUSIVE)
TRANSITIONS: dict[str, tuple[str, ...]] = {
    HypothesisStatus.PROPOSED: (HypothesisStatus.PRIORITIZED,),
    HypothesisStatus.PRIORITIZED: (HypothesisStatus.TESTING, HypothesisStatus.PROPOSED),
    HypothesisStatus.TESTING: (*CONCLUDED, HypothesisStatus.PRIORITIZED),
    HypothesisStatus.VALIDATED: (HypothesisStatus.TESTING,),
    HypothesisStatus.INVALIDATED: (HypothesisStatus.TESTING,),
    HypothesisStatus.INCONCLUSIVE: (HypothesisStatus.TESTING,),
}


class HypothesisStatusChange(models.Model):
    """Who moved a hypothesis along its workflow, when, and why."""

    hypothesis = models.ForeignKey(Hypothesis, on_delete=models.CASCADE,
                                   related_name="status_changes")
    from_status = models.CharField(max_length=16, choices=HypothesisStatus.choices)
    to_status = models.CharField(max_length=16, choices=HypothesisStatus.choices)
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    changed_at = models.DateTimeField(default=timezone.now)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-changed_at", "-id"]


class ExperimentKind(models.TextChoices):
    AB = "ab", "Randomized A/B"
    DID = "did", "Difference-in-differences (quasi)"
    ITS = "its", "Interrupted time series (quasi)"


class DataSource(models.TextChoices):
    EVENTS = "events", "Exposure events in the event store"
    ASSIGNMENTS = "assignments", "Uploaded assignment table (user, arm, time)"
    SUMMARY = "summary", "Per-arm summary statistics (n, sum, sum of squares)"


class ExperimentStatus(models.TextChoices):
    DESIGN = "design", "Design"
    RUNNING = "running", "Running"
    ANALYZED = "analyzed", "Analyzed"
    CONCLUDED = "concluded", "Concluded"


class Correction(models.TextChoices):
    HOLM = "holm", "Holm"
    BH = "bh", "Benjamini-Hochberg"
    NONE = "none", "None"


class Experiment(models.Model):
    """A test of a hypothesis: design (arms, metric, MDE, power), data source and results."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="experiments")
    hypothesis = models.ForeignKey(Hypothesis, on_delete=models.CASCADE,
                                   related_name="experiments")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=8, choices=ExperimentKind.choices, default=ExperimentKind.AB)
    dataset = models.ForeignKey("events.Dataset", null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="experiments")
    segment = models.ForeignKey(Segment, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="experiments",
                                help_text="target segment: the analysis is restricted to it")
    breakdown_segments = models.ManyToManyField(Segment, blank=True, related_name="+",
                                                help_text="per-segment results")
    arms = models.JSONField(default=list, help_text='[{"name": "control", "weight": 0.5}, ...]; '
                                                    "the first arm is the control")
    primary_metric = models.JSONField(default=dict,
                                      help_text='{"kind": "conversion", "event": "...", '
                                                '"window_days": 7}')
    guardrail_metrics = models.JSONField(default=list, blank=True)
    mde = models.FloatField(default=0.05, help_text="minimum detectable effect, relative")
    alpha = models.FloatField(default=0.05)
    power = models.FloatField(default=0.8)
    data_source = models.CharField(max_length=12, choices=DataSource.choices,
                                   default=DataSource.EVENTS)
    assignment = models.JSONField(default=dict, blank=True,
                                  help_text='{"event": "experiment_assigned", "experiment_key": '
                                            '"experiment", "experiment_id": "...", '
                                            '"arm_key": "arm"}')
    assignments_file = models.CharField(max_length=500, blank=True)
    assignments_rows = models.PositiveIntegerField(default=0)
    cuped_pre_days = models.FloatField(default=0.0, help_text="0 = no CUPED")
    sequential = models.BooleanField(default=False,
                                     help_text="always-valid intervals for teams that look early")
    correction = models.CharField(max_length=8, choices=Correction.choices,
                                  default=Correction.HOLM)
    quasi = models.JSONField(default=dict, blank=True,
                             help_text='{"treated_segment": id, "control_segment": id, '
                                       '"launch": "2026-06-01", "period_days": 7, '
                                       '"pre_periods": 8, "post_periods": 8}')
    design = models.JSONField(default=dict, blank=True, help_text="power calculation")
    status = models.CharField(max_length=10, choices=ExperimentStatus.choices,
                              default=ExperimentStatus.DESIGN)
    result = models.JSONField(default=dict, blank=True)
    analyzed_at = models.DateTimeField(null=True, blank=True)
    analysis_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"],
                                               name="experiment_name_per_workspace")]

    def __str__(self) -> str:
        return self.name

    @property
    def arm_names(self) -> list[str]:
        return [str(a.get("name")) for a in self.arms]

    @property
    def weights(self) -> list[float]:
        return [float(a.get("weight", 0)) for a in self.arms]


class ArmSummary(models.Model):
    """Per-arm summary statistics entered or uploaded (when the raw data lives elsewhere)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="summaries")
    arm = models.CharField(max_length=100)
    metric = models.CharField(max_length=100)
    scope = models.CharField(max_length=100, default="all", help_text='"all" or a segment label')
    n = models.PositiveIntegerField()
    sum = models.FloatField()
    sum_sq = models.FloatField()

    class Meta:
        ordering = ["experiment", "scope", "metric", "arm"]
        constraints = [models.UniqueConstraint(fields=["experiment", "arm", "metric", "scope"],
                                               name="one_summary_per_cell")]


class Outcome(models.TextChoices):
    VALIDATED = "validated", "Validated"
    INVALIDATED = "invalidated", "Invalidated"
    INCONCLUSIVE = "inconclusive", "Inconclusive"


class Learning(models.Model):
    """What a concluded test taught the team, success or failure alike."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="learnings")
    hypothesis = models.ForeignKey(Hypothesis, on_delete=models.CASCADE, related_name="learnings")
    experiment = models.ForeignKey(Experiment, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="learnings")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    believed = models.TextField(help_text="what we believed before")
    happened = models.TextField(help_text="what happened, with estimates and intervals")
    now_believe = models.TextField(help_text="what we believe now")
    decision = models.TextField(help_text="the decision taken")
    estimates = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=list, blank=True)
    segments = models.ManyToManyField(Segment, blank=True, related_name="learnings")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()}: {self.hypothesis}"
