"""Forms for hypotheses, experiment designs, power and concluding."""
from __future__ import annotations

from django import forms

from accounts.forms import WorkspaceModelForm
from experiments.models import POWER_INPUTS, Hypothesis
from segments.models import Segment

METRIC_KIND_CHOICES = [("conversion", "Conversion (did the event happen)"),
                       ("count", "Count of the event"), ("revenue", "Revenue")]


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


class ExperimentForm(forms.Form):
    """The experiment design as plain fields; experiment_services validates the whole."""

    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=[("ab", "Randomized A/B"),
                                      ("did", "Difference-in-differences (quasi)"),
                                      ("its", "Interrupted time series (quasi)")])
    dataset = forms.ModelChoiceField(queryset=None, required=False)
    segment = forms.ModelChoiceField(queryset=None, required=False,
                                     help_text="target segment (A/B): analysis restricted to it")
    breakdown_segments = forms.ModelMultipleChoiceField(queryset=None, required=False,
                                                        help_text="results per segment")
    arms = forms.CharField(initial="control:0.5, treatment:0.5",
                           help_text="name:weight, comma-separated; the first is the control")
    metric_kind = forms.ChoiceField(choices=METRIC_KIND_CHOICES, label="Primary metric")
    metric_event = forms.CharField(required=False, label="Metric event")
    metric_window_days = forms.FloatField(initial=7, label="Metric window (days)")
    guardrails = forms.CharField(required=False, help_text="kind:event:days, comma-separated, "
                                                           "e.g. count:session_start:14")
    mde = forms.FloatField(initial=0.05, help_text="relative, 0.05 = 5%")
    cost = forms.FloatField(required=False, min_value=0, max_value=1e12,
                            help_text="money to run the test, in the budget's currency: ranks "
                                      "experiments by value of information per cost")
    alpha = forms.FloatField(initial=0.05)
    power = forms.FloatField(initial=0.8)
    data_source = forms.ChoiceField(choices=[("events", "Exposure events in the event store"),
                                             ("assignments", "Uploaded assignment table"),
                                             ("summary", "Per-arm summary statistics")])
    assignment_event = forms.CharField(required=False, initial="experiment_assigned")
    experiment_id = forms.CharField(required=False,
                                    help_text="value of the 'experiment' property")
    cuped_pre_days = forms.FloatField(initial=0, help_text="0 = no CUPED")
    sequential = forms.BooleanField(required=False)
    correction = forms.ChoiceField(choices=[("holm", "Holm"), ("bh", "Benjamini-Hochberg"),
                                            ("none", "None")])
    treated_segment = forms.ModelChoiceField(queryset=None, required=False,
                                             help_text="quasi-experiments")
    control_segment = forms.ModelChoiceField(queryset=None, required=False)
    launch = forms.CharField(required=False, help_text="launch date, e.g. 2026-06-01")
    period_days = forms.FloatField(initial=7, required=False)
    pre_periods = forms.IntegerField(initial=8, required=False)
    post_periods = forms.IntegerField(initial=8, required=False)

    def __init__(self, *args, workspace=None, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        from events.models import Dataset

        segments = Segment.objects.filter(workspace=workspace, archived=False).order_by("name")
        self.fields["dataset"].queryset = Dataset.objects.filter(workspace=workspace)
        for name in ("segment", "breakdown_segments", "treated_segment", "control_segment"):
            self.fields[name].queryset = segments

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

    def clean_guardrails(self) -> list[dict]:
        out = []
        for part in (self.cleaned_data.get("guardrails") or "").split(","):
            if not part.strip():
                continue
            bits = [b.strip() for b in part.split(":")]
            if len(bits) != 3:
                raise forms.ValidationError(f"'{part.strip()}': write kind:event:days")
            try:
                out.append({"kind": bits[0], "event": bits[1] or None,
                            "window_days": float(bits[2])})
            except ValueError:
                raise forms.ValidationError(f"'{part.strip()}': days must be a number") from None
        return out

    @staticmethod
    def initial_from(experiment) -> dict:  # type: ignore[no-untyped-def]
        q = experiment.quasi or {}
        m = experiment.primary_metric or {}
        a = experiment.assignment or {}
        return {
            "name": experiment.name, "kind": experiment.kind, "dataset": experiment.dataset_id,
            "segment": experiment.segment_id,
            "breakdown_segments": list(experiment.breakdown_segments.values_list("pk", flat=True)),
            "arms": ", ".join(f"{x['name']}:{x['weight']}" for x in experiment.arms),
            "metric_kind": m.get("kind"), "metric_event": m.get("event") or "",
            "metric_window_days": m.get("window_days", 7),
            "guardrails": ", ".join(f"{g['kind']}:{g.get('event') or ''}:{g['window_days']}"
                                    for g in experiment.guardrail_metrics),
            "mde": experiment.mde, "alpha": experiment.alpha, "power": experiment.power,
            "cost": experiment.cost, "data_source": experiment.data_source, "assignment_event": a.get("event", ""),
            "experiment_id": a.get("experiment_id", ""),
            "cuped_pre_days": experiment.cuped_pre_days, "sequential": experiment.sequential,
            "correction": experiment.correction,
            "treated_segment": q.get("treated_segment"), "control_segment": q.get("control_segment"),
            "launch": q.get("launch", ""), "period_days": q.get("period_days", 7),
            "pre_periods": q.get("pre_periods", 8), "post_periods": q.get("post_periods", 8),
        }

    def apply(self, experiment) -> list:  # type: ignore[no-untyped-def]
        """Copy the cleaned fields onto the experiment; returns the breakdown segments."""
        d = self.cleaned_data
        experiment.name = d["name"]
        experiment.kind = d["kind"]
        experiment.dataset = d.get("dataset")
        experiment.segment = d.get("segment")
        experiment.arms = d["arms"]
        experiment.primary_metric = {"kind": d["metric_kind"],
                                     "event": d.get("metric_event") or None,
                                     "window_days": d["metric_window_days"]}
        experiment.guardrail_metrics = d.get("guardrails") or []
        experiment.mde, experiment.alpha, experiment.power = d["mde"], d["alpha"], d["power"]
        experiment.cost = d.get("cost")
        experiment.data_source = d["data_source"]
        experiment.assignment = {"event": d.get("assignment_event") or "",
                                 "experiment_key": "experiment",
                                 "experiment_id": d.get("experiment_id") or "", "arm_key": "arm"}
        experiment.cuped_pre_days = d.get("cuped_pre_days") or 0.0
        experiment.sequential = bool(d.get("sequential"))
        experiment.correction = d["correction"]
        quasi = {}
        if d["kind"] in ("did", "its"):
            quasi = {"treated_segment": d["treated_segment"].pk if d.get("treated_segment")
                     else None,
                     "control_segment": d["control_segment"].pk if d.get("control_segment")
                     else None,
                     "launch": d.get("launch") or "", "period_days": d.get("period_days") or 7,
                     "pre_periods": d.get("pre_periods") or 8,
                     "post_periods": d.get("post_periods") or 8}
        experiment.quasi = quasi
        return list(d.get("breakdown_segments") or [])


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
