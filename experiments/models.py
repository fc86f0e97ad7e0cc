"""Hypotheses (with their status history), experiments (design, data, result) and what each
taught the team (learnings)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import AuthoredRecord, Workspace, user_link
from jobs.models import Job
from segments.models import Segment


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
    PROPOSED = "proposed"
    PRIORITIZED = "prioritized"
    TESTING = "testing"
    VALIDATED = "validated"
    INVALIDATED = "invalidated"
    INCONCLUSIVE = "inconclusive"


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
    owner = user_link()
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
    changed_by = user_link()
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
    DESIGN = "design"
    RUNNING = "running"
    ANALYZED = "analyzed"
    CONCLUDED = "concluded"


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
    created_by = user_link()
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
    VALIDATED = "validated"
    INVALIDATED = "invalidated"
    INCONCLUSIVE = "inconclusive"


class Learning(AuthoredRecord):
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

    def __str__(self) -> str:
        return f"{self.get_outcome_display()}: {self.hypothesis}"
