"""Hypotheses (with their status history), experiments (design, data, result) and what each
taught the team (learnings)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from accounts.domains import in_range, within
from accounts.models import AuthoredRecord, Workspace, user_link
from jobs.models import Job
from segments.models import Segment

# ----- number domains (README "Number domains") -------------------------------------------------
EXPECTED_LIFT = (-1.0, 10.0)  # relative: -100% .. +1,000%
MEASURED_LIFT = (-100.0, 100.0)  # an experiment's estimate: -10,000% .. +10,000%
MDE = (0.001, 10.0)  # relative
ALPHA = (0.001, 0.2)
POWER = (0.5, 0.99)
CUPED_PRE_DAYS = (0.0, 365.0)
PERIOD_DAYS = (1.0, 365.0)
PRE_PERIODS = (2, 520)
POST_PERIODS = (1, 520)
MAX_ARMS = 20
# The power calculation's inputs (API body and page form).
POWER_INPUTS = {"baseline_mean": (-1e15, 1e15), "baseline_sd": (0.0, 1e15),
                "daily_traffic": (0.01, 1e9), "cuped_r2": (0.0, 0.99),
                "cluster_size": (1.0, 1e6), "icc": (0.0, 1.0)}
SUMMARY_N = (0, 2_000_000_000)
SUMMARY_SUM = (-1e15, 1e15)
SUMMARY_SUM_SQ = (0.0, 1e30)
EXPERIMENT_COST = (0.0, 1e12)  # money, as investments' costs
# The workspace's decision rule (DecisionRule)
CHANCE_TO_WIN = (0.5, 0.9999)
RISK_TOLERANCE = (1e-6, 1.0)  # expected loss, relative: 0.0025 = 0.25%
PRIOR_MEAN = EXPECTED_LIFT  # a relative effect
PRIOR_VARIANCE = (1e-12, 100.0)  # > 0


def lift_errors(low: Any, mid: Any, high: Any) -> dict[str, str]:
    """An expectation's interval must hold the expectation."""
    errors = {}
    if low is not None and mid is not None and low > mid:
        errors["expected_lift_low"] = "must not exceed the expected lift"
    if high is not None and mid is not None and high < mid:
        errors["expected_lift_high"] = "must not be below the expected lift"
    return errors


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
    expected_lift = models.FloatField(default=0.0, validators=within(*EXPECTED_LIFT),
                                      help_text="relative, 0.10 = +10%: -1 to 10")
    expected_lift_low = models.FloatField(null=True, blank=True,
                                          validators=within(*EXPECTED_LIFT),
                                          help_text="-1 to 10, at most the expected lift")
    expected_lift_high = models.FloatField(null=True, blank=True,
                                           validators=within(*EXPECTED_LIFT),
                                           help_text="-1 to 10, at least the expected lift")
    basis = models.TextField(blank=True, help_text="where the expected effect comes from")
    evidence = models.CharField(max_length=16, choices=Evidence.choices,
                                default=Evidence.ASSUMPTION)
    measured_lift = models.FloatField(null=True, blank=True,
                                      validators=within(*MEASURED_LIFT),
                                      help_text="experiment estimate, replaces the expectation: "
                                                "-100 to 100")
    measured_lift_low = models.FloatField(null=True, blank=True,
                                          validators=within(*MEASURED_LIFT))
    measured_lift_high = models.FloatField(null=True, blank=True,
                                           validators=within(*MEASURED_LIFT))
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
    information = models.JSONField(
        default=dict, blank=True,
        help_text="computed by the latest optimizer run with robust draws: the value of "
                  "perfect information on the items resting on this hypothesis (EVPPI)")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        verbose_name_plural = "hypotheses"
        constraints = [
            in_range("expected_lift", *EXPECTED_LIFT, name="hypothesis_lift_range"),
            in_range("expected_lift_low", *EXPECTED_LIFT, name="hypothesis_lift_low_range",
                     null=True),
            in_range("expected_lift_high", *EXPECTED_LIFT, name="hypothesis_lift_high_range",
                     null=True),
            in_range("measured_lift", *MEASURED_LIFT, name="hypothesis_measured_range",
                     null=True),
            in_range("measured_lift_low", *MEASURED_LIFT,
                     name="hypothesis_measured_low_range", null=True),
            in_range("measured_lift_high", *MEASURED_LIFT,
                     name="hypothesis_measured_high_range", null=True),
        ]

    def __str__(self) -> str:
        return self.statement

    def clean(self) -> None:
        errors = lift_errors(self.expected_lift_low, self.expected_lift,
                             self.expected_lift_high)
        if errors:
            raise ValidationError(errors)


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


class MetricKind(models.TextChoices):
    PROPORTION = "proportion", "Proportion: share of users who did the event"
    MEAN = "mean", "Mean per user: count of the event or revenue"
    RATIO = "ratio", "Ratio: sum of one quantity over the sum of another"


class MetricValue(models.TextChoices):
    COUNT = "count", "Count of the event"
    REVENUE = "revenue", "Revenue"


class Direction(models.TextChoices):
    HIGHER = "higher", "Higher is better"
    LOWER = "lower", "Lower is better"


WINDOW_DAYS = (0.001, 365.0)


class Metric(models.Model):
    """A named metric of a workspace, defined once and picked by experiments (primary and
    guardrails); an experiment keeps a copy of the definition it was saved with."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="metrics")
    name = models.CharField(max_length=100, help_text="as summaries and results name it, "
                                                      "e.g. onboarded_7d")
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=12, choices=MetricKind.choices,
                            default=MetricKind.PROPORTION)
    event = models.CharField(max_length=200, blank=True,
                             help_text="proportion and mean: the event counted (mean of "
                                       "revenue: blank = revenue of any event)")
    value = models.CharField(max_length=8, choices=MetricValue.choices,
                             default=MetricValue.COUNT, help_text="mean: what is averaged")
    numerator_event = models.CharField(max_length=200, blank=True)
    numerator_value = models.CharField(max_length=8, choices=MetricValue.choices,
                                       default=MetricValue.REVENUE)
    denominator_event = models.CharField(max_length=200, blank=True)
    denominator_value = models.CharField(max_length=8, choices=MetricValue.choices,
                                         default=MetricValue.COUNT)
    window_days = models.FloatField(default=7.0, validators=within(*WINDOW_DAYS),
                                    help_text="days after assignment the metric counts")
    direction = models.CharField(max_length=8, choices=Direction.choices,
                                 default=Direction.HIGHER)
    unit = models.CharField(max_length=40, blank=True, help_text="e.g. users, sessions, EUR")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"],
                                               name="metric_name_per_workspace"),
                       in_range("window_days", *WINDOW_DAYS, name="metric_window_range")]

    def __str__(self) -> str:
        return self.name

    def spec(self) -> dict[str, Any]:
        """The definition as experiments store it (``experiments.data.MetricSpec`` dict)."""
        lower = {"direction": "lower"} if self.direction == Direction.LOWER else {}
        if self.kind == MetricKind.RATIO:
            return {"name": self.name, "kind": "ratio", "window_days": self.window_days,
                    "numerator": {"kind": self.numerator_value,
                                  "event": self.numerator_event or None},
                    "denominator": {"kind": self.denominator_value,
                                    "event": self.denominator_event or None}, **lower}
        kind = "conversion" if self.kind == MetricKind.PROPORTION else self.value
        return {"name": self.name, "kind": kind, "event": self.event or None,
                "window_days": self.window_days, **lower}


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
    # The library's metrics the design was made from (the JSON above keeps their definitions
    # as saved; an experiment from before the library has them too, by migration).
    primary_metric_ref = models.ForeignKey(Metric, null=True, blank=True,
                                           on_delete=models.SET_NULL, related_name="primary_in")
    guardrail_metric_refs = models.ManyToManyField(Metric, blank=True, related_name="guardrail_in")
    mde = models.FloatField(default=0.05, validators=within(*MDE),
                            help_text="minimum detectable effect, relative: 0.001 to 10")
    alpha = models.FloatField(default=0.05, validators=within(*ALPHA),
                              help_text="significance level: 0.001 to 0.2")
    power = models.FloatField(default=0.8, validators=within(*POWER),
                              help_text="0.5 to 0.99")
    data_source = models.CharField(max_length=12, choices=DataSource.choices,
                                   default=DataSource.EVENTS)
    assignment = models.JSONField(default=dict, blank=True,
                                  help_text='{"event": "experiment_assigned", "experiment_key": '
                                            '"experiment", "experiment_id": "...", '
                                            '"arm_key": "arm"}')
    assignments_file = models.CharField(max_length=500, blank=True)
    assignments_rows = models.PositiveIntegerField(default=0)
    cuped_pre_days = models.FloatField(default=0.0, validators=within(*CUPED_PRE_DAYS),
                                       help_text="days before assignment: 0 (no CUPED) to 365")
    sequential = models.BooleanField(default=False,
                                     help_text="always-valid intervals for teams that look early")
    correction = models.CharField(max_length=8, choices=Correction.choices,
                                  default=Correction.HOLM)
    quasi = models.JSONField(default=dict, blank=True,
                             help_text='{"treated_segment": id, "control_segment": id, '
                                       '"launch": "2026-06-01", "period_days": 7, '
                                       '"pre_periods": 8, "post_periods": 8}')
    design = models.JSONField(default=dict, blank=True, help_text="power calculation")
    cost = models.FloatField(null=True, blank=True, validators=within(*EXPERIMENT_COST),
                             help_text="money to run the test (build, traffic, analysis), in the "
                                       "budget's currency: 0 to 1,000,000,000,000; ranks "
                                       "experiments by value of information per cost")
    information = models.JSONField(
        default=dict, blank=True,
        help_text="computed by the latest optimizer run with robust draws: the expected value "
                  "of sample information at the planned sample size (EVSI)")
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
                                               name="experiment_name_per_workspace"),
                       in_range("mde", *MDE, name="experiment_mde_range"),
                       in_range("alpha", *ALPHA, name="experiment_alpha_range"),
                       in_range("power", *POWER, name="experiment_power_range"),
                       in_range("cuped_pre_days", *CUPED_PRE_DAYS,
                                name="experiment_cuped_range"),
                       in_range("cost", *EXPERIMENT_COST, name="experiment_cost_range",
                                null=True)]

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
    n = models.PositiveIntegerField(validators=within(*SUMMARY_N),
                                    help_text="users: 0 to 2,000,000,000")
    sum = models.FloatField(validators=within(*SUMMARY_SUM), help_text="-1e15 to 1e15")
    sum_sq = models.FloatField(validators=within(*SUMMARY_SUM_SQ), help_text="0 to 1e30")

    class Meta:
        ordering = ["experiment", "scope", "metric", "arm"]
        constraints = [models.UniqueConstraint(fields=["experiment", "arm", "metric", "scope"],
                                               name="one_summary_per_cell"),
                       in_range("n", *SUMMARY_N, name="summary_n_range"),
                       in_range("sum", *SUMMARY_SUM, name="summary_sum_range"),
                       in_range("sum_sq", *SUMMARY_SUM_SQ, name="summary_sum_sq_range")]


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
    proposed_outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True,
                                        help_text="what the decision rule proposed")
    override_reason = models.TextField(blank=True,
                                       help_text="why the outcome differs from the proposal")

    def __str__(self) -> str:
        return f"{self.get_outcome_display()}: {self.hypothesis}"


class VerdictRead(models.TextChoices):
    FREQUENTIST = "frequentist", "Frequentist (interval excludes zero)"
    BAYESIAN = "bayesian", "Bayesian (chance to win and risk)"


class DecisionRule(models.Model):
    """A workspace's rule for proposing an experiment's outcome, and its Bayesian prior."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE,
                                     related_name="decision_rule")
    read = models.CharField(max_length=12, choices=VerdictRead.choices,
                            default=VerdictRead.FREQUENTIST,
                            help_text="which read proposes the outcome")
    chance_to_win = models.FloatField(default=0.95, validators=within(*CHANCE_TO_WIN),
                                      help_text="Bayesian: validated at or above this chance "
                                                "to beat control (0.5 to 0.9999)")
    risk_tolerance = models.FloatField(default=0.0025, validators=within(*RISK_TOLERANCE),
                                       help_text="Bayesian: and when the expected loss of "
                                                 "shipping is at most this (relative, 0.0025 = "
                                                 "0.25%)")
    prior_proper = models.BooleanField(default=False,
                                       help_text="off: flat prior (GrowthBook's default)")
    prior_mean = models.FloatField(default=0.0, validators=within(*PRIOR_MEAN),
                                   help_text="prior mean of the relative effect (-1 to 10)")
    prior_variance = models.FloatField(default=0.09, validators=within(*PRIOR_VARIANCE),
                                       help_text="prior variance of the relative effect, "
                                                 "greater than 0 (0.09 = sd 0.3)")
    updated_by = user_link()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            in_range("chance_to_win", *CHANCE_TO_WIN, name="decision_rule_ctw_range"),
            in_range("risk_tolerance", *RISK_TOLERANCE, name="decision_rule_risk_range"),
            in_range("prior_mean", *PRIOR_MEAN, name="decision_rule_prior_mean_range"),
            in_range("prior_variance", *PRIOR_VARIANCE,
                     name="decision_rule_prior_variance_range"),
        ]

    def __str__(self) -> str:
        return f"{self.workspace}: {self.read}"
