from __future__ import annotations

import json

from django import forms

from accounts.forms import WorkspaceModelForm
from experiments.models import Hypothesis
from security import bodies
from segments.models import Segment

from . import services
from .models import Investment, Roadmap, Scenario, ValueModel, Verdict, quarter_index
from .table_fields import Column, RowError, TableField, number

MAX_OFFSET = 40


def _fmt(value: object) -> str:
    return f"{value:g}" if isinstance(value, int | float) and not isinstance(value, bool) \
        else str(value)


# ----- effort: team, quarter of the item (blank = the team's total, spread evenly), units -----
EFFORT_COLUMNS = (Column("team", "Team", placeholder="design"),
                  Column("quarter", "Quarter of the item (1 = first; blank = total over all)",
                         kind="number", placeholder="blank"),
                  Column("units", "Effort units", kind="number"))


def effort_rows(effort: object) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for team, units in (effort.items() if isinstance(effort, dict) else ()):
        if isinstance(units, list):
            rows.extend({"team": team, "quarter": str(k + 1), "units": _fmt(u)}
                        for k, u in enumerate(units) if u or k == len(units) - 1)
        else:
            rows.append({"team": team, "quarter": "", "units": _fmt(units)})
    return rows


def effort_build(rows: list[dict[str, str]], errors: dict[int, str]) -> dict[str, object]:
    totals: dict[str, float] = {}
    profiles: dict[str, dict[int, float]] = {}
    for k, row in enumerate(rows):
        try:
            team = row["team"]
            if not team:
                raise RowError("give the team")
            units = number(row["units"] or "0", "effort units")
            if units < 0:
                raise RowError(f"effort units must be 0 or more, got {units:g}")
            if row["quarter"]:
                offset = number(row["quarter"], "quarter of the item")
                if offset != int(offset) or not 1 <= offset <= MAX_OFFSET:
                    raise RowError(f"quarter of the item: give a whole number from 1 to "
                                   f"{MAX_OFFSET}")
                if team in totals:
                    raise RowError(f"team {team!r} has a total row too: give a quarter on "
                                   "every row of a team, or one total row")
                if int(offset) - 1 in profiles.setdefault(team, {}):
                    raise RowError(f"team {team!r}, quarter {int(offset)} is listed twice")
                profiles[team][int(offset) - 1] = units
            else:
                if team in profiles:
                    raise RowError(f"team {team!r} has rows by quarter: give a quarter here too")
                if team in totals:
                    raise RowError(f"team {team!r} is listed twice")
                totals[team] = units
        except RowError as exc:
            errors[k] = str(exc)
    effort: dict[str, object] = dict(totals)
    for team, by_offset in profiles.items():
        effort[team] = [by_offset.get(q, 0.0) for q in range(max(by_offset) + 1)]
    return effort


# ----- shares: roadmap, min, max (fractions of the chosen spend) -------------------------------
SHARE_COLUMNS = (Column("roadmap", "Roadmap", kind="select",
                        choices=tuple((v, v) for v in Roadmap.values)),
                 Column("min", "Min share of spend (0–1)", kind="number"),
                 Column("max", "Max share of spend (0–1)", kind="number"))


def share_rows(shares: object) -> list[dict[str, str]]:
    return [{"roadmap": r, "min": _fmt(pair[0]), "max": _fmt(pair[1])}
            for r, pair in (shares.items() if isinstance(shares, dict) else ())
            if isinstance(pair, list | tuple) and len(pair) == 2]


def share_build(rows: list[dict[str, str]], errors: dict[int, str]) -> dict[str, list[float]]:
    shares: dict[str, list[float]] = {}
    for k, row in enumerate(rows):
        try:
            roadmap = row["roadmap"]
            if roadmap not in Roadmap.values:
                raise RowError("choose a roadmap")
            if roadmap in shares:
                raise RowError(f"roadmap {roadmap} is listed twice")
            lo = number(row["min"] or "0", "min share")
            hi = number(row["max"] or "1", "max share")
            if not 0 <= lo <= hi <= 1:
                raise RowError(f"give 0 <= min <= max <= 1 (got {lo:g} and {hi:g})")
            shares[roadmap] = [lo, hi]
        except RowError as exc:
            errors[k] = str(exc)
    return shares


# ----- capacity: team, quarter, units ----------------------------------------------------------
CAPACITY_COLUMNS = (Column("team", "Team", placeholder="design"),
                    Column("quarter", "Quarter", placeholder="2027Q1"),
                    Column("units", "Effort units", kind="number"))


def capacity_rows(capacity: object) -> list[dict[str, str]]:
    rows = []
    for key, units in (capacity.items() if isinstance(capacity, dict) else ()):
        team, _, quarter = str(key).partition("|")
        rows.append({"team": team, "quarter": quarter, "units": _fmt(units)})
    return rows


def capacity_build(rows: list[dict[str, str]], errors: dict[int, str]) -> dict[str, float]:
    capacity: dict[str, float] = {}
    for k, row in enumerate(rows):
        try:
            if not row["team"]:
                raise RowError("give the team")
            if "|" in row["team"]:
                raise RowError("a team name cannot contain |")
            if quarter_index(row["quarter"]) is None:
                raise RowError(f"quarter: {row['quarter']!r} is not a quarter like 2027Q1")
            units = number(row["units"] or "", "effort units")
            if units < 0:
                raise RowError(f"effort units must be 0 or more, got {units:g}")
            key = f"{row['team']}|{row['quarter']}"
            if key in capacity:
                raise RowError(f"team {row['team']!r} in {row['quarter']} is listed twice")
            capacity[key] = units
        except RowError as exc:
            errors[k] = str(exc)
    return capacity


# ----- quarters: one per row, consecutive ------------------------------------------------------
QUARTER_COLUMNS = (Column("quarter", "Quarter", placeholder="2027Q1"),)


def quarter_rows(quarters: object) -> list[dict[str, str]]:
    return [{"quarter": str(q)} for q in (quarters if isinstance(quarters, list) else [])]


def quarter_build(rows: list[dict[str, str]], errors: dict[int, str]) -> list[str]:
    out = []
    for k, row in enumerate(rows):
        for label in (q.strip() for q in row["quarter"].split(",") if q.strip()):
            if quarter_index(label) is None:
                errors[k] = f"{label!r} is not a quarter like 2027Q1"
            out.append(label)
    return out


class InvestmentForm(WorkspaceModelForm):
    effort = TableField(columns=EFFORT_COLUMNS, build=effort_build, to_rows=effort_rows,
                        json_type=dict, caption="Effort by team",
                        help_text="One row per team with its total (spread evenly over the "
                                  "item's quarters), or one row per team and quarter of the "
                                  "item (1 = its first quarter): e.g. design 2 in quarter 1, "
                                  "platform 3 in quarter 2.")

    class Meta:
        model = Investment
        fields = ["title", "description", "roadmap", "cost", "effort", "duration_quarters",
                  "target_segments", "hypotheses", "depends_on", "exclusion_group", "must_do",
                  "must_not", "external_ref", "adoption", "value_model", "value_basis", "horizon_months", "assumed_reach",
                  "assumed_value_per_user", "assumed_lift", "impact", "confidence", "ease"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, workspace=None, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, workspace=workspace, **kwargs)
        self.fields["target_segments"].queryset = Segment.objects.filter(workspace=workspace)
        self.fields["hypotheses"].queryset = Hypothesis.objects.filter(workspace=workspace)
        self.fields["value_model"].queryset = ValueModel.objects.filter(workspace=workspace)
        deps = Investment.objects.filter(workspace=workspace)
        if self.instance.pk:
            deps = deps.exclude(pk=self.instance.pk)
        self.fields["depends_on"].queryset = deps
        if self.instance.pk:
            self.initial["effort"] = self.instance.effort

    def clean(self):  # type: ignore[no-untyped-def]
        """A quarter of the item after its last one is an error on that row."""
        data = super().clean()
        duration = data.get("duration_quarters")
        widget = self.fields["effort"].widget
        rows = widget.value_from_datadict(self.data, None, self.add_prefix("effort"))
        if isinstance(duration, int) and isinstance(rows, list) and "effort" in data:
            for k, row in enumerate(rows):
                quarter = row.get("quarter", "")
                if quarter.isdigit() and int(quarter) > duration:
                    message = (f"team {row.get('team')!r}: quarter {quarter} is after the "
                               f"item's last quarter (it takes {duration})")
                    widget.row_errors[k] = message
                    self.add_error("effort", f"row {k + 1}: {message}")
                    break
        return data

    def clean_depends_on(self):  # type: ignore[no-untyped-def]
        deps = self.cleaned_data.get("depends_on")
        problem = services.dependency_problem(self.instance if self.instance.pk else None,
                                              deps or [])
        if problem:
            raise forms.ValidationError(problem)
        return deps


class ScenarioForm(forms.ModelForm):
    shares = TableField(columns=SHARE_COLUMNS, build=share_build, to_rows=share_rows,
                        json_type=dict, caption="Roadmap shares of the chosen spend",
                        help_text="Leave empty for the defaults: core 0.6–0.8, experimental "
                                  "0.15–0.3, niche 0–0.1.")
    capacity = TableField(columns=CAPACITY_COLUMNS, build=capacity_build, to_rows=capacity_rows,
                          json_type=dict, caption="Team capacity per quarter",
                          help_text="Every team an item needs must have rows (0 if none); "
                                    "leave empty for no capacity limits.")
    quarters = TableField(columns=QUARTER_COLUMNS, build=quarter_build, to_rows=quarter_rows,
                          json_type=list, caption="Quarters of the plan",
                          help_text="Consecutive, e.g. 2027Q1, 2027Q2; or comma-separated in "
                                    "one row.")

    class Meta:
        model = Scenario
        fields = ["name", "budget", "shares", "capacity", "quarters", "schedule", "keep_approved",
                  "robust_draws", "frontier_points", "time_limit"]

    def __init__(self, *args, workspace=None, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        # The model's clean() reads the workspace (its items, for the memory estimate).
        if workspace is not None:
            self.instance.workspace = workspace



class DecisionForm(forms.Form):
    investment = forms.IntegerField(widget=forms.HiddenInput())
    verdict = forms.ChoiceField(choices=Verdict.choices)
    rationale = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))




class ValueModelForm(forms.ModelForm):
    """A value model: entered (an 80% interval and a source) or measured (a segment, the
    metric per user as JSON, the value's days); the service checks and measures it."""

    metric_spec = forms.CharField(
        required=False, widget=forms.TextInput(),
        help_text='measured: JSON, e.g. {"kind": "conversion", "event": '
                  '"onboarding_completed", "window_days": 7}')

    class Meta:
        model = ValueModel
        fields = ["name", "metric", "kind", "low", "mid", "high", "source", "segment",
                  "metric_spec", "value_days"]
        widgets = {"source": forms.TextInput()}

    def __init__(self, *args, workspace=None, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.workspace = workspace
        self.fields["segment"].queryset = Segment.objects.filter(workspace=workspace)
        if self.instance.pk:
            self.initial["metric_spec"] = json.dumps(self.instance.metric_spec or {})

    def clean_metric_spec(self) -> object:
        raw = (self.cleaned_data.get("metric_spec") or "").strip()
        if not raw:
            return {}
        try:
            return bodies.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"not valid JSON: {exc}") from None
