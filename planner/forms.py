from __future__ import annotations

import json

from django import forms

from accounts.forms import WorkspaceModelForm
from experiments.models import Hypothesis
from security import bodies
from segments.models import Segment

from . import services
from .models import Investment, Scenario, Verdict


class InvestmentForm(WorkspaceModelForm):
    effort = forms.CharField(required=False, help_text='JSON, e.g. {"growth": 2, "web": 1}',
                             widget=forms.TextInput())

    class Meta:
        model = Investment
        fields = ["title", "description", "roadmap", "cost", "effort", "duration_quarters",
                  "target_segments", "hypotheses", "depends_on", "exclusion_group", "must_do",
                  "must_not", "external_ref", "adoption", "value_basis", "horizon_months", "assumed_reach",
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

    def clean_effort(self) -> object:
        """The JSON text parsed; the model's validator checks the teams and units."""
        raw = self.cleaned_data.get("effort") or "{}"
        try:
            return bodies.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"not valid JSON: {exc}") from None

    def clean_depends_on(self):  # type: ignore[no-untyped-def]
        deps = self.cleaned_data.get("depends_on")
        problem = services.dependency_problem(self.instance if self.instance.pk else None,
                                              deps or [])
        if problem:
            raise forms.ValidationError(problem)
        return deps


class ScenarioForm(forms.ModelForm):
    shares = forms.CharField(required=False, widget=forms.TextInput(),
                             help_text='JSON, default {"core": [0.6, 0.8], "experimental": '
                                       '[0.15, 0.3], "niche": [0, 0.1]}')
    capacity = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                               help_text='JSON, e.g. {"growth|2027Q1": 2}')
    quarters = forms.CharField(required=False, help_text="comma-separated, e.g. 2027Q1,2027Q2")

    class Meta:
        model = Scenario
        fields = ["name", "budget", "shares", "capacity", "quarters", "schedule", "keep_approved",
                  "robust_draws", "frontier_points", "time_limit"]

    def __init__(self, *args, workspace=None, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        # The model's clean() reads the workspace (its items, for the memory estimate).
        if workspace is not None:
            self.instance.workspace = workspace

    def _json(self, name: str) -> dict:
        raw = self.cleaned_data.get(name) or "{}"
        try:
            value = bodies.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("give a JSON object")
        return value

    # The JSON text parsed; the model's validators check the values (README "Number domains").
    def clean_shares(self) -> dict:
        return self._json("shares")

    def clean_capacity(self) -> dict:
        return self._json("capacity")

    def clean_quarters(self) -> list[str]:
        raw = self.cleaned_data.get("quarters") or ""
        return [q.strip() for q in raw.split(",") if q.strip()]


class DecisionForm(forms.Form):
    investment = forms.IntegerField(widget=forms.HiddenInput())
    verdict = forms.ChoiceField(choices=Verdict.choices)
    rationale = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


