"""Forms for hypotheses, experiment designs, power and concluding."""
from __future__ import annotations

from django import forms

from accounts.forms import WorkspaceModelForm
from experiments.models import POWER_INPUTS, Hypothesis, Metric
from segments.models import Segment


class HypothesisForm(WorkspaceModelForm):
    guardrail_metrics = forms.CharField(required=False, help_text="comma-separated metric names")

    class Meta:
        model = Hypothesis
        fields = ["statement", "segments", "mechanism", "metric", "guardrail_metrics",
                  "expected_lift", "expected_lift_low", "expected_lift_high", "basis",
                  "evidence", "exploratory"]
        widgets = {"mechanism": forms.Textarea(attrs={"rows": 2}),
                   "basis": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, workspace=None, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, workspace=workspace, **kwargs)
        self.fields["segments"].queryset = Segment.objects.filter(workspace=workspace)
        if self.instance.pk:
            self.initial["guardrail_metrics"] = ", ".join(self.instance.guardrail_metrics or [])

    def clean_guardrail_metrics(self) -> list[str]:
        raw = self.cleaned_data.get("guardrail_metrics") or ""
        return [p.strip() for p in raw.split(",") if p.strip()]

    # The lifts' ranges and their order are the model's (validators and clean()).


def _percent(label: str, low: float, high: float, initial: float, help_text: str
             ) -> forms.FloatField:
    return forms.FloatField(label=label, min_value=low, max_value=high, initial=initial,
                            help_text=help_text)


class _DesignForm(forms.Form):
    """What every design shares: name, dataset, primary metric from the library, α."""

    name = forms.CharField(max_length=200, label="Name")
    dataset = forms.ModelChoiceField(queryset=None, required=False, label="Dataset",
                                     help_text="the events the analysis reads")
    primary_metric = forms.ModelChoiceField(
        queryset=None, label="Primary metric",
        help_text="from the workspace's metric library: the metric the decision rests on")
    alpha = _percent("Significance level (%)", 0.1, 20, 5,
                     "chance of a false positive accepted: 5 = 5%")

    def __init__(self, *args, workspace=None, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        from events.models import Dataset

        self.segments = Segment.objects.filter(workspace=workspace,
                                               archived=False).order_by("name")
        self.metrics = Metric.objects.filter(workspace=workspace).order_by("name")
        self.fields["dataset"].queryset = Dataset.objects.filter(workspace=workspace)
        self.fields["primary_metric"].queryset = self.metrics
        for name, field in self.fields.items():
            if isinstance(field, forms.ModelChoiceField) and "segment" in name:
                field.queryset = self.segments
        if "guardrails" in self.fields:
            self.fields["guardrails"].queryset = self.metrics

    @staticmethod
    def _common_initial(experiment) -> dict:  # type: ignore[no-untyped-def]
        return {"name": experiment.name, "dataset": experiment.dataset_id,
                "primary_metric": experiment.primary_metric_ref_id,
                "alpha": round(experiment.alpha * 100, 10)}

    def _apply_common(self, experiment) -> None:  # type: ignore[no-untyped-def]
        d = self.cleaned_data
        experiment.name = d["name"]
        experiment.dataset = d.get("dataset")
        experiment.alpha = d["alpha"] / 100


class ABExperimentForm(_DesignForm):
    """A randomized A/B test: arms, target, metrics, sizing, data and analysis options."""

    kind = "ab"
    segment = forms.ModelChoiceField(queryset=None, required=False, label="Target segment",
                                     help_text="only its users are analysed (blank: everyone "
                                               "assigned)")
    breakdown_segments = forms.ModelMultipleChoiceField(
        queryset=None, required=False, label="Results per segment",
        help_text="each segment also gets its own result")
    arms = forms.CharField(initial="control:0.5, treatment:0.5", label="Arms and weights",
                           help_text="name:weight, comma-separated; the first arm is the "
                                     "control; weights add up to 1")
    guardrails = forms.ModelMultipleChoiceField(
        queryset=None, required=False, label="Guardrail metrics",
        help_text="metrics that must not get worse")
    mde = _percent("Minimum detectable effect (relative, %)", 0.1, 1000, 5,
                   "the smallest lift worth finding: 5 = +5% on the primary metric")
    power = _percent("Power (%)", 50, 99, 80,
                     "chance of detecting the minimum effect when it is there")
    cost = forms.FloatField(required=False, min_value=0, max_value=1e12,
                            label="Cost of the test (budget currency)",
                            help_text="build, traffic and analysis: ranks experiments by "
                                      "value of information per cost")
    data_source = forms.ChoiceField(label="Where the data comes from",
                                    choices=[("events", "Exposure events in the event store"),
                                             ("assignments", "Uploaded assignment table"),
                                             ("summary", "Per-arm summary statistics (CSV)")])
    assignment_event = forms.CharField(required=False, initial="experiment_assigned",
                                       label="Exposure event",
                                       help_text="the event that records each user's arm")
    experiment_id = forms.CharField(required=False, label="Experiment id",
                                    help_text="the exposure event's 'experiment' property")
    cuped_pre_days = forms.FloatField(initial=0, min_value=0, max_value=365,
                                      label="CUPED pre-period (days)",
                                      help_text="variance reduction from the metric before "
                                                "assignment; 0 = off")
    sequential = forms.BooleanField(required=False, label="Always-valid (sequential) intervals",
                                    help_text="for teams that look at results before the end")
    correction = forms.ChoiceField(label="Multiple-comparison correction",
                                   choices=[("holm", "Holm"), ("bh", "Benjamini-Hochberg"),
                                            ("none", "None")])

    field_order = ["name", "dataset", "segment", "breakdown_segments", "arms", "primary_metric",
                   "guardrails", "mde", "alpha", "power", "cost", "data_source",
                   "assignment_event", "experiment_id", "cuped_pre_days", "sequential",
                   "correction"]

    def clean_arms(self) -> list[dict]:
        arms = []
        for part in (self.cleaned_data.get("arms") or "").split(","):
            if not part.strip():
                continue
            name, _, weight = part.strip().rpartition(":")
            try:
                arms.append({"name": name.strip(), "weight": float(weight)})
            except ValueError:
                raise forms.ValidationError(f"'{part.strip()}': write name:weight") from None
        return arms

    def clean(self) -> dict:
        d = super().clean()
        primary, guards = d.get("primary_metric"), d.get("guardrails") or []
        if primary is not None and primary in guards:
            self.add_error("guardrails", f"'{primary.name}' is the primary metric: it cannot "
                                         "be a guardrail too")
        return d

    @classmethod
    def initial_from(cls, experiment) -> dict:  # type: ignore[no-untyped-def]
        a = experiment.assignment or {}
        return {
            **cls._common_initial(experiment), "segment": experiment.segment_id,
            "breakdown_segments": list(experiment.breakdown_segments.values_list("pk",
                                                                                 flat=True)),
            "arms": ", ".join(f"{x['name']}:{x['weight']}" for x in experiment.arms),
            "guardrails": list(experiment.guardrail_metric_refs.values_list("pk", flat=True)),
            "mde": round(experiment.mde * 100, 10), "power": round(experiment.power * 100, 10),
            "cost": experiment.cost, "data_source": experiment.data_source,
            "assignment_event": a.get("event", ""), "experiment_id": a.get("experiment_id", ""),
            "cuped_pre_days": experiment.cuped_pre_days, "sequential": experiment.sequential,
            "correction": experiment.correction,
        }

    def apply(self, experiment) -> tuple[list, list]:  # type: ignore[no-untyped-def]
        """Copy the cleaned fields onto the experiment: (breakdown segments, guardrails)."""
        from experiments.metric_services import experiment_use_metrics

        d = self.cleaned_data
        self._apply_common(experiment)
        experiment.kind = "ab"
        experiment.segment = d.get("segment")
        experiment.arms = d["arms"]
        guardrails = list(d.get("guardrails") or [])
        experiment_use_metrics(experiment, d["primary_metric"], guardrails)
        experiment.mde, experiment.power = d["mde"] / 100, d["power"] / 100
        experiment.cost = d.get("cost")
        experiment.data_source = d["data_source"]
        experiment.assignment = {"event": d.get("assignment_event") or "",
                                 "experiment_key": "experiment",
                                 "experiment_id": d.get("experiment_id") or "", "arm_key": "arm"}
        experiment.cuped_pre_days = d.get("cuped_pre_days") or 0.0
        experiment.sequential = bool(d.get("sequential"))
        experiment.correction = d["correction"]
        experiment.quasi = {}
        return list(d.get("breakdown_segments") or []), guardrails


class QuasiExperimentForm(_DesignForm):
    """A quasi-experiment around a launch: difference-in-differences or interrupted time
    series."""

    kind = "quasi"
    design = forms.ChoiceField(label="Design", choices=[
        ("did", "Difference-in-differences: a treated segment against a control segment"),
        ("its", "Interrupted time series: one segment before and after")])
    treated_segment = forms.ModelChoiceField(queryset=None, label="Treated segment",
                                             help_text="the users the launch reached")
    control_segment = forms.ModelChoiceField(queryset=None, required=False,
                                             label="Control segment",
                                             help_text="difference-in-differences: users it "
                                                       "did not reach")
    launch = forms.DateField(label="Launch date", help_text="e.g. 2026-06-01 (UTC)")
    period_days = forms.FloatField(initial=7, min_value=1, max_value=365,
                                   label="Period length (days)")
    pre_periods = forms.IntegerField(initial=8, min_value=2, max_value=520,
                                     label="Periods before the launch")
    post_periods = forms.IntegerField(initial=8, min_value=1, max_value=520,
                                      label="Periods after the launch")

    field_order = ["name", "design", "dataset", "primary_metric", "treated_segment",
                   "control_segment", "launch", "period_days", "pre_periods", "post_periods",
                   "alpha"]

    def clean(self) -> dict:
        d = super().clean()
        if d.get("design") == "did" and not d.get("control_segment"):
            self.add_error("control_segment", "difference-in-differences needs a control "
                                              "segment")
        if d.get("control_segment") and d.get("control_segment") == d.get("treated_segment"):
            self.add_error("control_segment", "must differ from the treated segment")
        return d

    @classmethod
    def initial_from(cls, experiment) -> dict:  # type: ignore[no-untyped-def]
        q = experiment.quasi or {}
        return {**cls._common_initial(experiment), "design": experiment.kind,
                "treated_segment": q.get("treated_segment"),
                "control_segment": q.get("control_segment"), "launch": q.get("launch", ""),
                "period_days": q.get("period_days", 7), "pre_periods": q.get("pre_periods", 8),
                "post_periods": q.get("post_periods", 8)}

    def apply(self, experiment) -> tuple[list, list]:  # type: ignore[no-untyped-def]
        from experiments.metric_services import experiment_use_metrics

        d = self.cleaned_data
        self._apply_common(experiment)
        experiment.kind = d["design"]
        experiment_use_metrics(experiment, d["primary_metric"], [])
        if not experiment.arms:
            experiment.arms = [{"name": "control", "weight": 0.5},
                               {"name": "treatment", "weight": 0.5}]
        experiment.data_source = "events"
        experiment.quasi = {
            "treated_segment": d["treated_segment"].pk,
            "control_segment": d["control_segment"].pk if d.get("control_segment") else None,
            "launch": d["launch"].isoformat(), "period_days": d["period_days"],
            "pre_periods": d["pre_periods"], "post_periods": d["post_periods"]}
        return [], []


def experiment_form_class(kind: str) -> type[_DesignForm]:
    """The form for an experiment kind: A/B, or the quasi-experiments' own."""
    return ABExperimentForm if kind == "ab" else QuasiExperimentForm


class MetricForm(forms.ModelForm):
    """A library metric; experiments.metric_services.metric_check validates the whole."""

    class Meta:
        model = Metric
        fields = ["name", "description", "kind", "event", "value", "numerator_event",
                  "numerator_value", "denominator_event", "denominator_value", "window_days",
                  "direction", "unit"]
        labels = {"kind": "Kind", "event": "Event", "value": "Mean of",
                  "numerator_event": "Numerator event", "numerator_value": "Numerator",
                  "denominator_event": "Denominator event", "denominator_value": "Denominator",
                  "window_days": "Window after assignment (days)",
                  "direction": "Direction", "unit": "Unit"}
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}


class ConcludeForm(forms.Form):
    # No outcome is selected until the user chooses one (the page shows the rule's proposal).
    outcome = forms.ChoiceField(choices=[("validated", "Validated"),
                                         ("invalidated", "Invalidated"),
                                         ("inconclusive", "Inconclusive")],
                                widget=forms.RadioSelect, label="Outcome",
                                help_text="choose the proposed outcome to confirm it")
    scope = forms.ChoiceField(choices=[("all", "All assigned")],
                              help_text="whose estimate becomes the hypothesis's measured lift")
    happened = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                               help_text="blank: the estimate with its interval")
    now_believe = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}),
                                  label="What we believe now")
    decision = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    tags = forms.CharField(required=False, help_text="comma-separated")
    override_reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                                      label="Reason for overriding the proposal",
                                      help_text="required when the outcome differs from the "
                                                "proposal; recorded on the learning")


class DecisionRuleForm(forms.Form):
    """The workspace's decision rule; experiments.services.decision_rule_set checks it."""

    read = forms.ChoiceField(choices=[("frequentist", "Frequentist: the interval excludes zero"),
                                      ("bayesian", "Bayesian: chance to win and risk")],
                             widget=forms.RadioSelect, label="Read the verdict uses")
    chance_to_win = forms.FloatField(label="Chance to beat control at least",
                                     help_text="Bayesian, 0.5 to 0.9999 (0.95 = 95%)")
    risk_tolerance = forms.FloatField(label="Expected loss of shipping at most",
                                      help_text="Bayesian, relative (0.0025 = 0.25%)")
    prior_proper = forms.BooleanField(required=False, label="Use a proper prior",
                                      help_text="off: flat prior, GrowthBook's default")
    prior_mean = forms.FloatField(label="Prior mean of the relative effect",
                                  help_text="-1 to 10 (0 = no effect expected)")
    prior_variance = forms.FloatField(label="Prior variance of the relative effect",
                                      help_text="greater than 0 (0.09 = sd 0.3)")


class PowerForm(forms.Form):
    """The power calculation's inputs, in the ranges of the API's (POWER_INPUTS)."""

    baseline_mean = forms.FloatField(required=False,
                                     min_value=POWER_INPUTS["baseline_mean"][0],
                                     max_value=POWER_INPUTS["baseline_mean"][1],
                                     help_text="blank: measured in the target segment")
    baseline_sd = forms.FloatField(required=False, min_value=POWER_INPUTS["baseline_sd"][0],
                                   max_value=POWER_INPUTS["baseline_sd"][1],
                                   help_text="continuous metrics only")
    daily_traffic = forms.FloatField(required=False,
                                     min_value=POWER_INPUTS["daily_traffic"][0],
                                     max_value=POWER_INPUTS["daily_traffic"][1],
                                     help_text="users/day; blank: measured in the segment")
    cuped_r2 = forms.FloatField(initial=0.0, min_value=POWER_INPUTS["cuped_r2"][0],
                                max_value=POWER_INPUTS["cuped_r2"][1],
                                help_text="R² of the pre-period covariate")
    cluster_size = forms.FloatField(initial=1.0, min_value=POWER_INPUTS["cluster_size"][0],
                                    max_value=POWER_INPUTS["cluster_size"][1])
    icc = forms.FloatField(initial=0.0, min_value=POWER_INPUTS["icc"][0],
                           max_value=POWER_INPUTS["icc"][1])
