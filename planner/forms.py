from __future__ import annotations

import json

from django import forms

from accounts.forms import WorkspaceModelForm
from experiments.models import Hypothesis
from segments.models import Segment

from .models import Investment, Scenario, Verdict


class InvestmentForm(WorkspaceModelForm):
    effort = forms.CharField(required=False, help_text='JSON, e.g. {"growth": 2, "web": 1}',
                             widget=forms.TextInput())

    class Meta:
        model = Investment
        fields = ["title", "description", "roadmap", "cost", "effort", "duration_quarters",
                  "target_segments", "hypotheses", "depends_on", "exclusion_group", "must_do",
                  "must_not", "adoption", "value_basis", "horizon_months", "assumed_reach",
                  "assumed_value_per_user", "assumed_lift", "impact", "confidence", "ease"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, workspace=None, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, workspace=workspace, **kwargs)
        self.fields["target_segments"].queryset = Segment.objects.filter(workspace=workspace)
        self.fields["hypotheses"].queryset = Hypothesis.objects.filter(workspace=workspace)
        deps = Investment.objects.filter(workspace=workspace)
        if self.instance.pk:
            deps = deps.exclude(pk=self.instance.pk)
        self.fields["depends_on"].queryset = deps
        if self.instance.pk:
            self.initial["effort"] = json.dumps(self.instance.effort)

    def clean_effort(self) -> dict:
        raw = self.cleaned_data.get("effort") or "{}"
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"not valid JSON: {exc}") from None
        if not isinstance(value, dict) or not all(
            isinstance(v, int | float) and v >= 0 for v in value.values()
        ):
            raise forms.ValidationError("map team names to non-negative numbers")
        return value

    def clean_cost(self) -> float:
        cost = self.cleaned_data["cost"]
        if cost <= 0:
            raise forms.ValidationError("cost must be positive")
        return cost

    def clean_adoption(self) -> float:
        value = self.cleaned_data["adoption"]
        if not 0 <= value <= 1:
            raise forms.ValidationError("a share between 0 and 1")
        return value

    def clean(self):  # type: ignore[no-untyped-def]
        data = super().clean()
        if data.get("must_do") and data.get("must_not"):
            raise forms.ValidationError("an item cannot be both must-do and must-not")
        return data


class ScenarioForm(forms.ModelForm):
    shares = forms.CharField(required=False, widget=forms.TextInput(),
                             help_text='JSON, default {"core": [0.6, 0.8], "experimental": '
                                       '[0.15, 0.3], "niche": [0, 0.1]}')
    capacity = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                               help_text='JSON, e.g. {"growth|2027Q1": 2}')
    quarters = forms.CharField(required=False, help_text="comma-separated, e.g. 2027Q1,2027Q2")

    class Meta:
        model = Scenario
        fields = ["name", "budget", "shares", "capacity", "quarters", "schedule", "robust_draws",
                  "frontier_points", "time_limit"]

    def _json(self, name: str) -> dict:
        raw = self.cleaned_data.get(name) or "{}"
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("give a JSON object")
        return value

    def clean_shares(self) -> dict:
        value = self._json("shares")
        for key, pair in value.items():
            if key not in ("core", "experimental", "niche"):
                raise forms.ValidationError(f"unknown roadmap {key!r}")
            if not (isinstance(pair, list) and len(pair) == 2 and 0 <= pair[0] <= pair[1] <= 1):
                raise forms.ValidationError(f"{key}: [min, max] with 0 <= min <= max <= 1")
        return value

    def clean_capacity(self) -> dict:
        value = self._json("capacity")
        for key, cap in value.items():
            if "|" not in key or not isinstance(cap, int | float) or cap < 0:
                raise forms.ValidationError(f'{key!r}: use "team|quarter": non-negative number')
        return value

    def clean_quarters(self) -> list[str]:
        raw = self.cleaned_data.get("quarters") or ""
        return [q.strip() for q in raw.split(",") if q.strip()]

    def clean_budget(self) -> float:
        if self.cleaned_data["budget"] < 0:
            raise forms.ValidationError("budget cannot be negative")
        return self.cleaned_data["budget"]


class DecisionForm(forms.Form):
    investment = forms.IntegerField(widget=forms.HiddenInput())
    verdict = forms.ChoiceField(choices=Verdict.choices)
    rationale = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


