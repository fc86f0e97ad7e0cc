"""Hypothesis, experiment and learning reads, scoped to the user's workspaces."""


from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts.selectors import filter_given, workspaces_for
from experiments import calibration
from experiments.models import CONCLUDED, Experiment, Hypothesis, HypothesisStatus, Learning


def hypotheses_for(user: object) -> QuerySet[Hypothesis]:
    return Hypothesis.objects.filter(workspace__in=workspaces_for(user)).select_related(
        "workspace", "owner").prefetch_related("segments")


def experiments_for(user: object) -> QuerySet[Experiment]:
    return Experiment.objects.filter(workspace__in=workspaces_for(user)).select_related(
        "workspace", "hypothesis", "segment", "dataset").prefetch_related("breakdown_segments")


def learnings_for(user: object, *, query: str = "", segment: int | None = None,
                  outcome: str = "", since: object = None,
                  until: object = None) -> QuerySet[Learning]:
    """The learnings library: failures listed as prominently as successes (newest first)."""
    qs = Learning.objects.filter(workspace__in=workspaces_for(user)).select_related(
        "workspace", "hypothesis", "experiment", "created_by").prefetch_related("segments")
    if query:
        from django.db.models import Q

        qs = qs.filter(Q(hypothesis__statement__icontains=query) | Q(happened__icontains=query)
                       | Q(now_believe__icontains=query) | Q(decision__icontains=query)
                       | Q(believed__icontains=query) | Q(tags__icontains=query))
    qs = filter_given(qs, segments=segment, outcome=outcome, created_at__gte=since,
                      created_at__lt=until)
    return qs.distinct().order_by("-created_at", "-id")


def calibration_forecasts(workspace: Any) -> list[calibration.Forecast]:
    """Every concluded hypothesis of ``workspace`` as a forecast: the expectation as it stood
    when its latest experiment concluded (``Learning.estimates["forecast"]``, else the
    hypothesis's own fields), the measured lift, and whether it was validated."""
    hyps = (Hypothesis.objects.filter(workspace=workspace, status__in=CONCLUDED)
            .select_related("owner").order_by("pk"))
    latest: dict[int, dict[str, Any]] = {}
    for hyp_id, estimates in (Learning.objects.filter(workspace=workspace)
                              .order_by("created_at", "id")
                              .values_list("hypothesis_id", "estimates")):
        forecast = (estimates or {}).get("forecast")
        if isinstance(forecast, dict):
            latest[hyp_id] = forecast
    out = []
    for h in hyps:
        stated = latest.get(h.pk, {})
        out.append(calibration.Forecast(
            key=h.pk, label=f"#{h.pk} {h.statement}"[:120],
            author=h.owner.username if h.owner else "(no author)",
            evidence=stated.get("evidence", h.evidence),
            predicted=float(stated.get("expected_lift", h.expected_lift)),
            low=stated.get("expected_lift_low", h.expected_lift_low),
            high=stated.get("expected_lift_high", h.expected_lift_high),
            validated=h.status == HypothesisStatus.VALIDATED,
            realized=h.measured_lift if h.status != HypothesisStatus.INCONCLUSIVE else None,
            realized_low=h.measured_lift_low, realized_high=h.measured_lift_high))
    return out


def workspace_calibration(workspace: Any) -> calibration.Calibration:
    """The workspace's forecast calibration (``experiments.calibration``)."""
    return calibration.calibrate(calibration_forecasts(workspace))


def forecast_record(hypothesis: Hypothesis) -> dict[str, Any]:
    """The forecast as it stands, kept on a learning when the hypothesis is concluded."""
    return {"expected_lift": hypothesis.expected_lift,
            "expected_lift_low": hypothesis.expected_lift_low,
            "expected_lift_high": hypothesis.expected_lift_high,
            "evidence": hypothesis.evidence,
            "author": hypothesis.owner.username if hypothesis.owner_id else None}


def forecast_check(hypothesis: Hypothesis) -> dict[str, Any] | None:
    """A concluded hypothesis's expectation beside its measurement (None before)."""
    if hypothesis.status not in CONCLUDED:
        return None
    h = hypothesis
    has_interval = (h.expected_lift_low is not None and h.expected_lift_high is not None
                    and h.expected_lift_high > h.expected_lift_low)
    out: dict[str, Any] = {
        "expected": h.expected_lift, "expected_interval": [h.expected_lift_low,
                                                           h.expected_lift_high],
        "interval_level": calibration.STATED_LEVEL, "measured": h.measured_lift,
        "measured_interval": [h.measured_lift_low, h.measured_lift_high],
        "has_interval": has_interval, "inside": None, "ratio": None, "probability": None,
        "validated": h.status == HypothesisStatus.VALIDATED}
    if has_interval:
        out["probability"] = calibration.forecast_probability(
            h.expected_lift, h.expected_lift_low, h.expected_lift_high)  # type: ignore[arg-type]
    if h.measured_lift is not None and h.status != HypothesisStatus.INCONCLUSIVE:
        if has_interval:
            out["inside"] = bool(h.expected_lift_low <= h.measured_lift
                                 <= h.expected_lift_high)  # type: ignore[operator]
        if h.expected_lift:
            out["ratio"] = h.measured_lift / h.expected_lift
    return out
