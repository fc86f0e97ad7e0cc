"""The planning domain: hypotheses, investments, scenarios, optimizer runs, decisions."""

from __future__ import annotations

import math
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.utils import timezone

from accounts.domains import in_range, is_number, is_whole, within
from accounts.models import Workspace, user_link
from experiments.models import Hypothesis
from jobs.models import Job, RequestedJobRecord
from segments.models import Segment

from .optimizer import sizing, voi

# ----- number domains (README "Number domains") -------------------------------------------------
COST = (0.01, 1e12)  # money: at least a cent
EFFORT_UNITS = (0.0, 1e6)  # one team's effort units on one item; the total is 0 or >= 0.01
EFFORT_TOTAL = (0.01, 1e8)
MAX_TEAMS = 100
DURATION_QUARTERS = (1, 40)
SHARE = (0.0, 1.0)
HORIZON_MONTHS = (1, 60)
REACH = (0, 1_000_000_000)  # users
VALUE_PER_USER = (0.0, 1e6)  # money per user
LIFT = (-1.0, 10.0)  # relative: -100% .. +1,000%
IMPACT = (0.0, 10.0)  # RICE 0.25 / 0.5 / 1 / 2 / 3, or ICE 1..10
CONFIDENCE = (0.0, 1.0)
EASE = (1.0, 10.0)
# Computed: a value beyond this is capped (and said so in its sources); reach is users x adoption.
VALUE = (-1e15, 1e15)
REACH_USERS = (0.0, 1e12)
BUDGET = (0.0, 1e15)
CAPACITY_UNITS = (0.0, 1e6)
MAX_CAPACITY_ENTRIES = 1000
MAX_QUARTERS = 40
QUARTER = re.compile(r"^(\d{4})Q([1-4])$")
QUARTER_YEARS = (2000, 2100)
COVERAGE = (0, 1000)
MAX_COVERAGE_ENTRIES = 1000
ROBUST_DRAWS = (0, 100_000)  # 0 = no robust mode
FRONTIER_POINTS = (0, 50)  # 0 = no frontier, else at least 2
TIME_LIMIT = (1.0, 600.0)  # seconds
ELASTICITY = (-100.0, 100.0)  # a value model: relative change of value per relative change
VALUE_DAYS = (1, 3650)  # a measured value model's value: revenue in the first N days


def effort_units(units: Any) -> list[float] | None:
    """One team's effort as per-quarter amounts (a number is one amount), None if malformed."""
    amounts = units if isinstance(units, list) else [units]
    if not all(is_number(u) for u in amounts):
        return None
    return [float(u) for u in amounts]


def validate_effort(value: Any) -> None:
    if not isinstance(value, dict):
        raise ValidationError("effort must map team names to non-negative numbers (a total) or "
                              "lists of numbers (effort per quarter of the item)")
    if len(value) > MAX_TEAMS:
        raise ValidationError(f"at most {MAX_TEAMS} teams")
    total = 0.0
    for team, units in value.items():
        if not isinstance(team, str) or not 0 < len(team.strip()) <= 100:
            raise ValidationError(f"{team!r}: a team name has 1 to 100 characters")
        amounts = effort_units(units)
        if isinstance(units, list) and not 1 <= len(units) <= DURATION_QUARTERS[1]:
            raise ValidationError(f'"{team}": give 1 to {DURATION_QUARTERS[1]} quarters of effort')
        if amounts is None or not all(EFFORT_UNITS[0] <= u <= EFFORT_UNITS[1] for u in amounts):
            raise ValidationError(f'"{team}": give a number of effort units from 0 to '
                                  f"{EFFORT_UNITS[1]:.0f}"
                                  + (" in each quarter" if isinstance(units, list) else ""))
        total += math.fsum(amounts)
    if 0 < total < EFFORT_TOTAL[0]:
        raise ValidationError("the total effort is 0 (none recorded) or at least 0.01 units")


def effort_duration_problem(effort: Any, duration: Any) -> str | None:
    """Why an effort profile does not fit the item's duration (None when it does)."""
    if not isinstance(effort, dict) or not isinstance(duration, int):
        return None
    for team, units in effort.items():
        if isinstance(units, list) and len(units) > duration:
            return (f'"{team}": effort is given for {len(units)} quarters but the item takes '
                    f"{duration} (its duration)")
    return None


def validate_shares(value: Any) -> None:
    if not isinstance(value, dict):
        raise ValidationError("shares map a roadmap to [min, max]")
    for key, pair in value.items():
        if key not in Roadmap.values:
            raise ValidationError(f"unknown roadmap {key!r}")
        if (not isinstance(pair, list | tuple) or len(pair) != 2
                or not all(is_number(v) for v in pair) or not 0 <= pair[0] <= pair[1] <= 1):
            raise ValidationError(f"{key}: give [min, max] as numbers with 0 <= min <= max <= 1")
    total = math.fsum(pair[0] for pair in value.values())
    if total > 1 + 1e-9:
        raise ValidationError(f"the minimums add up to {total:g}: no spend can meet them "
                              "(at most 1)")


def quarter_index(label: Any) -> int | None:
    """Quarters counted from year 0 ("2027Q1" -> 8108), None when not a quarter label."""
    match = QUARTER.match(label) if isinstance(label, str) else None
    if match is None or not QUARTER_YEARS[0] <= int(match[1]) <= QUARTER_YEARS[1]:
        return None
    return int(match[1]) * 4 + int(match[2]) - 1


def validate_quarters(value: Any) -> None:
    if not isinstance(value, list):
        raise ValidationError('give a list of quarters like ["2027Q1", "2027Q2"]')
    if len(value) > MAX_QUARTERS:
        raise ValidationError(f"at most {MAX_QUARTERS} quarters (10 years)")
    for position, label in enumerate(value):
        index = quarter_index(label)
        if index is None:
            raise ValidationError(f'quarters[{position}]: {label!r} is not a quarter like '
                                  f'"2027Q1"')
        if position and index != quarter_index(value[position - 1]) + 1:  # type: ignore[operator]
            raise ValidationError(f"quarters[{position}]: {label!r} does not follow "
                                  f"{value[position - 1]!r} (give consecutive quarters)")


def validate_capacity(value: Any) -> None:
    if not isinstance(value, dict):
        raise ValidationError('capacity maps "team|quarter" to a number of effort units')
    if len(value) > MAX_CAPACITY_ENTRIES:
        raise ValidationError(f"at most {MAX_CAPACITY_ENTRIES} entries")
    for key, units in value.items():
        team, bar, quarter = str(key).partition("|")
        if not bar or not team.strip() or len(team) > 100:
            raise ValidationError(f'"{key}": use "team|quarter"')
        if quarter_index(quarter) is None:
            raise ValidationError(f'"{key}": {quarter!r} is not a quarter like "2027Q1"')
        if not is_number(units) or not CAPACITY_UNITS[0] <= units <= CAPACITY_UNITS[1]:
            raise ValidationError(f'"{key}": give a number from 0 to {CAPACITY_UNITS[1]:.0f}')


def validate_min_coverage(value: Any) -> None:
    if not isinstance(value, dict):
        raise ValidationError("give an object: segment id -> at least this many chosen items")
    if len(value) > MAX_COVERAGE_ENTRIES:
        raise ValidationError(f"at most {MAX_COVERAGE_ENTRIES} segments")
    for key, count in value.items():
        if not str(key).isdigit():
            raise ValidationError(f"{key!r} is not a segment of this workspace")
        if not is_whole(count) or not COVERAGE[0] <= count <= COVERAGE[1]:
            raise ValidationError(f"segment {key}: give a whole number of items from "
                                  f"{COVERAGE[0]} to {COVERAGE[1]}")


def validate_frontier_points(value: int) -> None:
    if value == 1:
        raise ValidationError("0 (no frontier) or 2 to 50 points")


class Roadmap(models.TextChoices):
    CORE = "core"
    EXPERIMENTAL = "experimental"
    NICHE = "niche"


class ValueBasis(models.TextChoices):
    LTV_90 = "ltv_90", "LTV at 90 days"
    LTV_365 = "ltv_365", "LTV at 365 days"
    PREDICTED_CLV = "predicted_clv", "Predicted CLV (1 year)"
    ARPU = "revenue_per_active_user", "Revenue per active user (30 days) x horizon"


class MappingKind(models.TextChoices):
    IDENTITY = "identity", "Value itself (one to one)"
    ENTERED = "entered", "Entered with an interval and a source"
    MEASURED = "measured", "Measured from the segment's data (observational)"


def mapping_errors(kind: Any, low: Any, mid: Any, high: Any, source: Any) -> dict[str, str]:
    """What is wrong with a value model's interval, by field (empty: nothing)."""
    if kind != MappingKind.ENTERED:
        return {}
    errors: dict[str, str] = {}
    for name, value in (("low", low), ("mid", mid), ("high", high)):
        if value is None:
            errors[name] = "an entered mapping needs low, mid and high"
    if errors:
        return errors
    if low > mid:
        errors["low"] = f"must not exceed mid ({mid:g})"
    elif high < mid:
        errors["high"] = f"must not be below mid ({mid:g})"
    elif high <= low:
        errors["high"] = ("the interval has no width: give the range you believe the mapping "
                          "lies in (only 'value itself' maps exactly)")
    if not (source or "").strip():
        errors["source"] = "say where the entered mapping comes from"
    return errors


class ValueModel(models.Model):
    """How a relative lift of a hypothesis's metric moves an investment's value: an elasticity
    (value's relative change per relative change of the metric) with its interval, measured
    from a segment's users, entered with a source, or 1 when the metric is value itself."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE,
                                  related_name="value_models")
    name = models.CharField(max_length=200)
    metric = models.CharField(max_length=100, blank=True,
                              help_text="the hypothesis metric it maps, e.g. onboarded_7d")
    kind = models.CharField(max_length=16, choices=MappingKind.choices,
                            default=MappingKind.ENTERED)
    low = models.FloatField(null=True, blank=True, validators=within(*ELASTICITY),
                            help_text="elasticity, -100 to 100; entered: the 80% interval's low")
    mid = models.FloatField(null=True, blank=True, validators=within(*ELASTICITY),
                            help_text="elasticity: 0.5 = a +10% lift on the metric is +5% value")
    high = models.FloatField(null=True, blank=True, validators=within(*ELASTICITY),
                             help_text="elasticity, -100 to 100; entered: the 80% interval's high")
    source = models.TextField(blank=True, help_text="where an entered mapping comes from")
    # Measured: the segment's users, the metric per user, and value = revenue in N days.
    segment = models.ForeignKey(Segment, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="value_models")
    metric_spec = models.JSONField(default=dict, blank=True,
                                   help_text='measured: {"kind": "conversion", "event": '
                                             '"onboarding_completed", "window_days": 7}')
    value_days = models.PositiveIntegerField(default=90, validators=within(*VALUE_DAYS),
                                             help_text="measured: value = revenue in the first "
                                                       "N days after signup (1 to 3650)")
    fit = models.JSONField(default=dict, blank=True)
    measured_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"],
                                    name="value_model_name_per_workspace"),
            in_range("low", *ELASTICITY, name="value_model_low_range", null=True),
            in_range("mid", *ELASTICITY, name="value_model_mid_range", null=True),
            in_range("high", *ELASTICITY, name="value_model_high_range", null=True),
            in_range("value_days", *VALUE_DAYS, name="value_model_days_range"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = mapping_errors(self.kind, self.low, self.mid, self.high, self.source)
        if self.kind == MappingKind.MEASURED and not self.segment_id:
            errors["segment"] = "a measured mapping needs the segment whose users it reads"
        if errors:
            raise ValidationError(errors)


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
    cost = models.FloatField(validators=within(*COST),
                             help_text="money: 0.01 to 1,000,000,000,000")
    effort = models.JSONField(default=dict, blank=True, validators=[validate_effort],
                              help_text='team -> effort units (0 to 1,000,000 each; up to 100 '
                                        'teams; a total of 0 or at least 0.01): a number is the '
                                        "team's total, spread evenly over the item's quarters; "
                                        'a list is its effort in each quarter from the start, '
                                        'e.g. {"growth": 2, "design": [2, 0], "platform": [0, 3]}')
    duration_quarters = models.PositiveSmallIntegerField(
        default=1, validators=within(*DURATION_QUARTERS), help_text="quarters: 1 to 40")
    target_segments = models.ManyToManyField(Segment, blank=True, related_name="investments")
    hypotheses = models.ManyToManyField(Hypothesis, blank=True, related_name="investments")
    value_model = models.ForeignKey(ValueModel, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="investments",
                                    help_text="how the hypothesis's metric maps to this value")
    depends_on = models.ManyToManyField("self", symmetrical=False, blank=True,
                                        related_name="enables")
    exclusion_group = models.CharField(max_length=100, blank=True,
                                       help_text="items sharing a group are alternatives")
    must_do = models.BooleanField(default=False)
    must_not = models.BooleanField(default=False)
    external_ref = models.CharField(
        max_length=200, blank=True,
        help_text="the item's key in a roadmap tool (e.g. Jira PLAN-12); exports carry it")
    status = models.CharField(max_length=16, choices=InvestmentStatus.choices,
                              default=InvestmentStatus.PROPOSED)
    owner = user_link()
    adoption = models.FloatField(default=0.2, validators=within(*SHARE),
                                 help_text="expected share of the segment reached: 0 to 1")
    value_basis = models.CharField(max_length=32, choices=ValueBasis.choices,
                                   default=ValueBasis.LTV_90)
    horizon_months = models.PositiveSmallIntegerField(
        default=12, validators=within(*HORIZON_MONTHS),
        help_text="months of revenue per active user counted: 1 to 60")
    # Assumptions used when no segment snapshot or hypothesis supplies the figure.
    assumed_reach = models.PositiveIntegerField(null=True, blank=True, validators=within(*REACH),
                                                help_text="users: 0 to 1,000,000,000")
    assumed_value_per_user = models.FloatField(null=True, blank=True,
                                               validators=within(*VALUE_PER_USER),
                                               help_text="money per user: 0 to 1,000,000")
    assumed_lift = models.FloatField(null=True, blank=True, validators=within(*LIFT),
                                     help_text="relative: -1 (-100%) to 10 (+1,000%)")
    # Alternative rankings' inputs (RICE / ICE), on the usual scales.
    impact = models.FloatField(default=1.0, validators=within(*IMPACT),
                               help_text="RICE impact 0.25, 0.5, 1, 2, 3 (or ICE 1 to 10): "
                                         "0 to 10")
    confidence = models.FloatField(default=0.5, validators=within(*CONFIDENCE),
                                   help_text="0 to 1")
    ease = models.FloatField(default=5.0, validators=within(*EASE), help_text="ICE ease: 1 to 10")
    # Computed, with where each figure came from.
    expected_value = models.FloatField(default=0.0, validators=within(*VALUE),
                                       help_text="computed: -1e15 to 1e15")
    value_low = models.FloatField(default=0.0, validators=within(*VALUE),
                                  help_text="computed: -1e15 to 1e15")
    value_high = models.FloatField(default=0.0, validators=within(*VALUE),
                                   help_text="computed: -1e15 to 1e15")
    value_sources = models.JSONField(default=dict, blank=True)
    reach_users = models.FloatField(default=0.0, validators=within(*REACH_USERS),
                                    help_text="users reached: reach x adoption (0 to 1e12)")
    effort_total = models.FloatField(default=0.0, validators=within(0.0, EFFORT_TOTAL[1]),
                                     help_text="sum of team effort units: 0, or 0.01 to 1e8")
    value_computed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    # The change feed (``?updated_since=``): moves whenever anything the investment API returns
    # changes, edits and re-valuations from elsewhere and rank moves alike (planner.changes).
    changed_at = models.DateTimeField(default=timezone.now)
    rank = models.PositiveIntegerField(null=True, blank=True,
                                       help_text="computed: place in the workspace's backlog "
                                                 "by value per cost (1 = best)")

    class Meta:
        ordering = ["-expected_value", "id"]
        indexes = [models.Index(fields=["workspace", "roadmap", "status"]),
                   # The backlog page cache's version: latest edit and re-valuation by index.
                   models.Index(fields=["workspace", "updated_at"], name="inv_ws_updated"),
                   models.Index(fields=["workspace", "value_computed_at"],
                                name="inv_ws_valued"),
                   models.Index(fields=["workspace", "changed_at"], name="inv_ws_changed"),
                   models.Index(fields=["changed_at"], name="inv_changed")]
        constraints = [
            in_range("cost", *COST, name="investment_cost_range"),
            in_range("duration_quarters", *DURATION_QUARTERS,
                     name="investment_duration_range"),
            in_range("adoption", *SHARE, name="investment_adoption_range"),
            in_range("horizon_months", *HORIZON_MONTHS, name="investment_horizon_range"),
            in_range("assumed_reach", *REACH, name="investment_reach_range", null=True),
            in_range("assumed_value_per_user", *VALUE_PER_USER,
                     name="investment_value_per_user_range", null=True),
            in_range("assumed_lift", *LIFT, name="investment_lift_range", null=True),
            in_range("impact", *IMPACT, name="investment_impact_range"),
            in_range("confidence", *CONFIDENCE, name="investment_confidence_range"),
            in_range("ease", *EASE, name="investment_ease_range"),
            in_range("expected_value", *VALUE, name="investment_value_range"),
            in_range("value_low", *VALUE, name="investment_value_low_range"),
            in_range("value_high", *VALUE, name="investment_value_high_range"),
            in_range("reach_users", *REACH_USERS, name="investment_reach_users_range"),
            models.CheckConstraint(
                condition=models.Q(effort_total=0) | models.Q(effort_total__gte=EFFORT_TOTAL[0],
                                                              effort_total__lte=EFFORT_TOTAL[1]),
                name="investment_effort_total_range"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def label(self) -> str:
        """How messages name it: #12 'Checkout v2'."""
        return f"#{self.pk} '{self.title}'"

    def clean(self) -> None:
        if self.must_do and self.must_not:
            raise ValidationError("an item cannot be both must-do and must-not")
        problem = effort_duration_problem(self.effort, self.duration_quarters)
        if problem:
            raise ValidationError({"effort": problem})


class BacklogVersion(models.Model):
    """A workspace's count of committed changes to its investments (``planner.changes.
    backlog_touched``, in the writing transaction). The API list cache's stamp reads it: a
    write that committed after a later-timed one moves it even when no maximum time moves,
    and concurrent writers take turns on the row, so every commit gets its own number."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, primary_key=True,
                                     related_name="backlog_version")
    version = models.BigIntegerField(default=0)


class ValueEstimate(models.Model):
    """History of an investment's computed value: every change, with its sources and reason."""

    investment = models.ForeignKey(Investment, on_delete=models.CASCADE, related_name="estimates")
    expected_value = models.FloatField(validators=within(*VALUE))
    value_low = models.FloatField(validators=within(*VALUE))
    value_high = models.FloatField(validators=within(*VALUE))
    sources = models.JSONField(default=dict)
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [in_range("expected_value", *VALUE, name="estimate_value_range"),
                       in_range("value_low", *VALUE, name="estimate_value_low_range"),
                       in_range("value_high", *VALUE, name="estimate_value_high_range")]


class Scenario(models.Model):
    """Budget, roadmap shares, capacities and options for one optimizer run."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="scenarios")
    name = models.CharField(max_length=200)
    budget = models.FloatField(validators=within(*BUDGET),
                               help_text="money: 0 to 1,000,000,000,000,000")
    shares = models.JSONField(default=dict, blank=True, validators=[validate_shares],
                              help_text="roadmap -> [min, max] share of spend, "
                                        "0 <= min <= max <= 1, the minimums adding up to at "
                                        "most 1")
    capacity = models.JSONField(default=dict, blank=True, validators=[validate_capacity],
                                help_text='"team|quarter" -> capacity units (0 to 1,000,000); '
                                          "the quarter one of the quarters when they are given")
    quarters = models.JSONField(default=list, blank=True, validators=[validate_quarters],
                                help_text='up to 40 consecutive quarters, e.g. ["2027Q1", '
                                          '"2027Q2"]')
    min_coverage = models.JSONField(default=dict, blank=True, validators=[validate_min_coverage],
                                    help_text="segment id (of this workspace) -> at least k "
                                              "chosen items, k from 0 to 1000")
    schedule = models.BooleanField(default=False)
    keep_approved = models.BooleanField(
        default=True, help_text="items approved on the current roadmap version are must-do "
                                "in this scenario's runs (until the council revokes them)")
    robust_draws = models.PositiveIntegerField(
        default=0, validators=within(*ROBUST_DRAWS),
        help_text="Monte Carlo draws of robust mode: 0 (off) to 100,000, within the job memory "
                  "budget")
    frontier_points = models.PositiveSmallIntegerField(
        default=10, validators=[*within(*FRONTIER_POINTS), validate_frontier_points],
        help_text="budgets on the efficient frontier: 0 (off) or 2 to 50")
    time_limit = models.FloatField(default=30.0, validators=within(*TIME_LIMIT),
                                   help_text="solver seconds: 1 to 600")
    created_by = user_link()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"],
                                    name="scenario_name_per_workspace"),
            in_range("budget", *BUDGET, name="scenario_budget_range"),
            in_range("robust_draws", *ROBUST_DRAWS, name="scenario_draws_range"),
            models.CheckConstraint(
                condition=models.Q(frontier_points=0) | models.Q(frontier_points__gte=2,
                                                                 frontier_points__lte=50),
                name="scenario_frontier_points_range"),
            in_range("time_limit", *TIME_LIMIT, name="scenario_time_limit_range"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """What one field cannot tell: capacity quarters, scheduling, coverage segments."""
        errors: dict[str, str] = {}
        quarters = self.quarters if isinstance(self.quarters, list) else []
        if quarters and isinstance(self.capacity, dict):
            for key in self.capacity:
                quarter = str(key).partition("|")[2]
                if quarter_index(quarter) is not None and quarter not in quarters:
                    errors["capacity"] = (f'"{key}": quarter {quarter} is not one of the '
                                          "scenario's quarters")
                    break
        if self.schedule and not quarters and not self.capacity:
            errors["schedule"] = "scheduling needs quarters"
        if self.workspace_id and isinstance(self.min_coverage, dict) and self.min_coverage:
            ids = {str(k) for k in self.min_coverage if str(k).isdigit()}
            known = {str(pk) for pk in Segment.objects.filter(
                workspace_id=self.workspace_id, pk__in=[int(i) for i in ids]).values_list(
                "pk", flat=True)}
            for key in self.min_coverage:
                if str(key).isdigit() and str(key) not in known:
                    errors["min_coverage"] = f"{key!r} is not a segment of this workspace"
                    break
        if self.workspace_id and "capacity" not in errors:
            problem = self.items_problem()
            if problem is not None:
                errors[problem[0]] = problem[1]
        if self.workspace_id and not errors:
            problem = self.memory_problem()
            if problem is not None:
                errors[problem[0] or NON_FIELD_ERRORS] = problem[1]
        if errors:
            raise ValidationError(errors)

    def items_problem(self) -> tuple[str, str] | None:
        """(field, message) when the workspace's candidate items do not fit this scenario: an
        item needs a team the (non-empty) capacity table has no row for, or, when scheduling,
        its effort profile is longer than the scenario's quarters."""
        capacity = self.capacity if isinstance(self.capacity, dict) else {}
        teams = {str(key).partition("|")[0] for key in capacity}
        quarters = self.quarters if isinstance(self.quarters, list) else []
        if not teams and not self.schedule:
            return None
        candidates = Investment.objects.filter(workspace_id=self.workspace_id).exclude(
            status__in=[InvestmentStatus.REJECTED, InvestmentStatus.DONE]).exclude(
            must_not=True).order_by("pk").only("pk", "title", "effort")
        for inv in candidates:
            effort = inv.effort if isinstance(inv.effort, dict) else {}
            for team, units in effort.items():
                amounts = effort_units(units) or []
                if teams and team not in teams and math.fsum(amounts) > 0:
                    return ("capacity", f"{inv.label} needs team {team!r} (its effort), which "
                                        "has no row in the capacity table: give it a capacity "
                                        "(0 if it has none)")
                if self.schedule and isinstance(units, list) and len(units) > len(quarters):
                    return ("quarters", f"{inv.label}: effort of team {team!r} is given for "
                                        f"{len(units)} quarters but the plan has "
                                        f"{len(quarters)}")
        return None

    def memory_problem(self, items: int | None = None) -> tuple[str, str] | None:
        """(field, message) when a run would exceed the job memory budget (settings
        ``JOB_MEMORY_BUDGET_MB``) with ``items`` items (default: the workspace's candidates)."""
        draws, points = self.robust_draws, self.frontier_points
        if not (isinstance(draws, int) and isinstance(points, int)
                and ROBUST_DRAWS[0] <= draws <= ROBUST_DRAWS[1]
                and FRONTIER_POINTS[0] <= points <= FRONTIER_POINTS[1]):
            return None  # the fields' own validators say what is wrong
        if items is None:
            items = Investment.objects.filter(workspace_id=self.workspace_id).exclude(
                status__in=[InvestmentStatus.REJECTED, InvestmentStatus.DONE]).count()
        quarters = len(self.quarters) if isinstance(self.quarters, list) else 0
        if draws > 0:  # robust mode computes the value of information on its draws too
            voi_problem = voi.over_budget(settings.JOB_MEMORY_BUDGET_MB, items=items,
                                          draws=draws, frontier_points=points,
                                          quarters=quarters, schedule=bool(self.schedule))
            if voi_problem is not None:
                return voi_problem
        return sizing.over_budget(settings.JOB_MEMORY_BUDGET_MB, items=items, draws=draws,
                                  frontier_points=points, quarters=quarters,
                                  schedule=bool(self.schedule))


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
    cost = models.FloatField(validators=within(*COST))
    value = models.FloatField(validators=within(*VALUE))
    inclusion_probability = models.FloatField(null=True, blank=True, validators=within(0.0, 1.0))
    entry_value = models.FloatField(null=True, blank=True,
                                    help_text="computed, finite (none when no value gets the "
                                              "item in)")

    class Meta:
        ordering = ["run", "-chosen", "-value"]
        constraints = [models.UniqueConstraint(fields=["run", "investment"],
                                               name="one_allocation_per_item"),
                       in_range("cost", *COST, name="allocation_cost_range"),
                       in_range("value", *VALUE, name="allocation_value_range"),
                       in_range("inclusion_probability", 0, 1,
                                name="allocation_probability_range", null=True)]


class Verdict(models.TextChoices):
    APPROVE = "approve"
    DEFER = "defer"
    REJECT = "reject"
    REVOKE = "revoke", "revoke (back to proposed)"


class ItemState(models.TextChoices):
    PROPOSED = "proposed"
    APPROVE = "approve", "approved"
    DEFER = "defer", "deferred"
    REJECT = "reject", "rejected"


class RoadmapVersion(models.Model):
    """One version of a workspace's approved roadmap: the run (all of it or chosen items) the
    council adopted, and the context it was adopted in (budget, spend, what bound)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE,
                                  related_name="roadmap_versions")
    number = models.PositiveIntegerField()
    adopted_from = models.ForeignKey(OptimizationRun, null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="adoptions")
    adopted_by = user_link()
    adopted_at = models.DateTimeField(default=timezone.now)
    note = models.TextField(blank=True)
    # budget, spend, roadmap_spend, shares, capacity_use of the run at adoption (diff reasons)
    context = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["workspace", "number"],
                                               name="one_roadmap_version_number")]

    def __str__(self) -> str:
        return f"roadmap v{self.number}"


class RoadmapItem(models.Model):
    """An investment on a roadmap version: its figures at adoption and the council's state."""

    version = models.ForeignKey(RoadmapVersion, on_delete=models.CASCADE, related_name="items")
    investment = models.ForeignKey(Investment, on_delete=models.CASCADE,
                                   related_name="roadmap_items")
    title = models.CharField(max_length=200)
    roadmap = models.CharField(max_length=16, choices=Roadmap.choices)
    start_quarter = models.CharField(max_length=20, blank=True)
    duration_quarters = models.PositiveSmallIntegerField(default=1)
    value = models.FloatField(validators=within(*VALUE))
    cost = models.FloatField(validators=within(*COST))
    teams = models.JSONField(default=dict, blank=True, help_text="effort by team at adoption")
    evidence = models.CharField(max_length=20, blank=True,
                                help_text="evidence level behind the value at adoption")
    depends_on = models.JSONField(default=list, blank=True,
                                  help_text="investment ids it depended on at adoption")
    chosen_by_optimizer = models.BooleanField(default=True)
    state = models.CharField(max_length=10, choices=ItemState.choices,
                             default=ItemState.PROPOSED)

    class Meta:
        ordering = ["version", "roadmap", "-value", "id"]
        constraints = [models.UniqueConstraint(fields=["version", "investment"],
                                               name="one_item_per_roadmap_version"),
                       in_range("value", *VALUE, name="roadmap_item_value_range"),
                       in_range("cost", *COST, name="roadmap_item_cost_range")]


class Decision(models.Model):
    """The council's verdict on an investment of a roadmap version (or, recorded before
    versions existed or through the run endpoint, of a run), with its rationale."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="decisions")
    run = models.ForeignKey(OptimizationRun, null=True, blank=True, on_delete=models.CASCADE,
                            related_name="decisions")
    version = models.ForeignKey(RoadmapVersion, null=True, blank=True,
                                on_delete=models.CASCADE, related_name="decisions")
    investment = models.ForeignKey(Investment, on_delete=models.CASCADE, related_name="decisions")
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    rationale = models.TextField()
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                   on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-decided_at", "-id"]

    def __str__(self) -> str:
        where = f" (v{self.version.number})" if self.version_id else (
            f" (run #{self.run_id})" if self.run_id else "")
        return f"{self.verdict} '{self.investment}'{where}"
