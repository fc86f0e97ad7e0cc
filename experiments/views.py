"""Pages for hypotheses, experiments (design, data, results, conclusion) and learnings."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from accounts import selectors as ws_selectors
from experiments import metric_services as ms
from experiments import readout
from experiments import services as xs
from experiments.forms import (
    ABExperimentForm,
    ConcludeForm,
    DecisionRuleForm,
    HypothesisForm,
    PowerForm,
    experiment_form_class,
)
from experiments.models import (
    TRANSITIONS,
    Experiment,
    ExperimentKind,
    Hypothesis,
    HypothesisStatus,
    Outcome,
)
from jobs.services import JobFailed
from security import uploads
from segments.models import Segment

from . import selectors


@login_required
def hypotheses(request: HttpRequest, slug: str) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    qs = (
        selectors.hypotheses_for(request.user)
        .filter(workspace=workspace)
        .prefetch_related("experiments", "investments")
    )
    if status := request.GET.get("status"):
        qs = qs.filter(status=status)
    if segment := request.GET.get("segment"):
        qs = qs.filter(segments__id=segment)
    return render(
        request,
        "experiments/hypotheses.html",
        {
            "workspace": workspace,
            "membership": membership,
            "hypotheses": qs.distinct()[:300],
            "statuses": HypothesisStatus.choices,
            "filters": request.GET,
            "segments": Segment.objects.filter(workspace=workspace).order_by("name"),
        },
    )


@login_required
def hypothesis_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    hypothesis = get_object_or_404(
        selectors.hypotheses_for(request.user).filter(workspace=workspace), pk=pk
    )
    if request.method == "POST":
        if not membership.can("define"):
            raise PermissionDenied
        try:
            xs.hypothesis_transition(
                hypothesis=hypothesis,
                to_status=request.POST.get("status", ""),
                user=request.user,
                note=request.POST.get("note", ""),
            )
        except xs.ExperimentInvalid as exc:
            messages.error(request, exc.message)
        else:
            xs.hypothesis_changed(
                hypothesis, reason=f"hypothesis #{hypothesis.pk} now {hypothesis.status}"
            )
            messages.success(request, f"Status is now {hypothesis.status}.")
        return redirect("hypothesis", slug=slug, pk=pk)
    return render(
        request,
        "experiments/hypothesis.html",
        {
            "workspace": workspace,
            "membership": membership,
            "h": hypothesis,
            "next_statuses": [
                (s, HypothesisStatus(s).label) for s in TRANSITIONS.get(hypothesis.status, ())
            ],
            "changes": hypothesis.status_changes.select_related("changed_by")[:50],
            "experiments": hypothesis.experiments.all(),
            "learnings": hypothesis.learnings.select_related("experiment"),
            "investments": hypothesis.investments.all(),
            "check": selectors.forecast_check(hypothesis),
        },
    )


@login_required
def hypothesis_form(request: HttpRequest, slug: str, pk: int | None = None) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug, "define")
    instance = get_object_or_404(Hypothesis, workspace=workspace, pk=pk) if pk else None
    form = HypothesisForm(request.POST or None, instance=instance, workspace=workspace)
    if request.method == "POST" and form.is_valid():
        hypothesis = form.save_owned(request.user)
        xs.hypothesis_changed(hypothesis, reason=f"hypothesis #{hypothesis.pk} changed")
        return redirect("hypothesis", slug=slug, pk=hypothesis.pk)
    return render(
        request,
        "experiments/hypothesis_form.html",
        {"workspace": workspace, "membership": membership, "form": form, "h": instance},
    )


@login_required
def experiment_form(
    request: HttpRequest, slug: str, pk: int | None = None, hypothesis_pk: int | None = None,
    kind: str = "ab",
) -> HttpResponse:
    """Design or edit an experiment: the A/B form or the quasi-experiments' own."""
    workspace, membership = ws_selectors.workspace_get(request.user, slug, "define")
    if pk:
        experiment = get_object_or_404(Experiment, workspace=workspace, pk=pk)
        hypothesis = experiment.hypothesis
        form_class = experiment_form_class(experiment.kind)
        initial = form_class.initial_from(experiment)
    else:
        hypothesis = get_object_or_404(Hypothesis, workspace=workspace, pk=hypothesis_pk)
        experiment = Experiment(hypothesis=hypothesis, workspace=workspace)
        form_class = experiment_form_class(kind)
        dataset = workspace.datasets.order_by("pk").first()
        initial = {
            "dataset": dataset.pk if dataset else None,
            "name": f"Test: {hypothesis.statement}"[:200],
        }
    form = form_class(request.POST or None, initial=initial, workspace=workspace)
    if request.method == "POST" and form.is_valid():
        try:
            breakdown, guardrails = form.apply(experiment)
            with transaction.atomic():
                xs.experiment_save(experiment, breakdown=breakdown, user=request.user)
                ms.experiment_link_metrics(experiment, guardrails)
        except xs.ExperimentInvalid as exc:
            form.add_error(None, f"{exc.field}: {exc.message}")
        except IntegrityError:
            form.add_error("name", "an experiment with this name exists in this workspace")
        else:
            return redirect("experiment", slug=slug, pk=experiment.pk)
    return render(
        request,
        "experiments/experiment_form.html",
        {
            "workspace": workspace,
            "membership": membership,
            "form": form,
            "quasi": form_class is not ABExperimentForm,
            "experiment": experiment if pk else None,
            "hypothesis": hypothesis,
            "no_metrics": not form.metrics.exists(),
        },
    )


def _forest(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for the effect-interval plot: relative effect (else absolute) with its interval."""
    rows = []
    for r in result.get("rows", []):
        use_rel = r.get("relative") is not None
        est = r.get("relative") if use_rel else r.get("absolute")
        ci = r.get("relative_ci") if use_rel else r.get("absolute_ci")
        rows.append(
            {
                "label": f"{r['metric']} · {r['scope_label']} · {r['arm']}",
                "estimate": est,
                "low": ci[0] if ci else None,
                "high": ci[1] if ci else None,
                "relative": use_rel,
                "primary": r.get("primary"),
                "significant": r.get("significant"),
                "status": r.get("status"),
            }
        )
    return rows


@login_required
def experiment_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    experiment = get_object_or_404(
        selectors.experiments_for(request.user).filter(workspace=workspace), pk=pk
    )
    can = membership.can("define")
    power_form = PowerForm(request.POST if request.POST.get("action") == "power" else None)
    conclude_form = ConcludeForm(request.POST if request.POST.get("action") == "conclude" else None)
    scopes = [("all", "All assigned")] + [
        (f"segment:{s.pk}", s.name) for s in experiment.breakdown_segments.order_by("name")
    ]
    conclude_form.fields["scope"].choices = scopes
    if request.method == "POST":
        if not can:
            raise PermissionDenied
        action = request.POST.get("action")
        try:
            if action == "start":
                xs.experiment_start(experiment=experiment, user=request.user)
                messages.success(request, "Experiment running; the hypothesis is being tested.")
            elif action == "analyze":
                xs.analyze_start(experiment=experiment, user=request.user)
                messages.success(request, "Analysis queued.")
            elif action == "assignments" and request.FILES.get("file"):
                f = request.FILES["file"]
                n = xs.assignments_upload(
                    experiment=experiment, data=uploads.experiment_table(f), filename=f.name
                )
                messages.success(request, f"Stored {n:,} assignments.")
            elif action == "summaries" and request.FILES.get("file"):
                f = request.FILES["file"]
                n = xs.summaries_upload(
                    experiment=experiment, data=uploads.experiment_table(f), filename=f.name
                )
                messages.success(request, f"Stored {n:,} summary rows.")
            elif action == "power" and power_form.is_valid():
                xs.experiment_power(
                    experiment=experiment,
                    **{k: v for k, v in power_form.cleaned_data.items() if v is not None},
                )
                messages.success(request, "Sample size computed.")
            elif action == "conclude" and conclude_form.is_valid():
                d = conclude_form.cleaned_data
                xs.experiment_conclude(
                    experiment=experiment,
                    outcome=d["outcome"],
                    now_believe=d["now_believe"],
                    decision=d["decision"],
                    happened=d.get("happened") or "",
                    scope=d["scope"],
                    tags=[t for t in (d.get("tags") or "").split(",")],
                    user=request.user,
                    override_reason=d.get("override_reason") or "",
                )
                messages.success(
                    request,
                    "Concluded: the learning is recorded and the linked investments re-valued.",
                )
            elif action in ("power", "conclude"):
                messages.error(request, "Check the form below.")
                return _detail(
                    request, workspace, membership, experiment, power_form, conclude_form
                )
            else:
                messages.error(request, "Nothing to do: choose a file or an action.")
        except xs.ExperimentInvalid as exc:
            if action == "conclude" and exc.field in conclude_form.fields:
                # nothing was saved: the form comes back with the error on its field
                conclude_form.add_error(exc.field, exc.message)
                messages.error(request, "Check the form below.")
                return _detail(
                    request, workspace, membership, experiment, power_form, conclude_form
                )
            messages.error(request, f"{exc.field}: {exc.message}")
        except JobFailed as exc:
            messages.error(request, str(exc))
        except uploads.UploadRefused as exc:
            messages.error(request, exc.message)
        return redirect("experiment", slug=slug, pk=pk)
    return _detail(request, workspace, membership, experiment, power_form, conclude_form)


def _detail(
    request,
    workspace,
    membership,
    experiment,
    power_form,  # type: ignore[no-untyped-def]
    conclude_form,
) -> HttpResponse:
    result = experiment.result or {}
    charts: dict[str, Any] = {"kind": result.get("kind")}
    if result.get("kind") == "ab":
        charts["forest"] = _forest(result)
    elif result.get("kind") in ("did", "its"):
        charts["series"] = result.get("series", [])
        charts["launch_period"] = 0
    labels = {r["scope"]: r["scope_label"] for r in result.get("rows", [])}
    srm_rows = [
        {"scope": k, "label": labels.get(k, k), **v} for k, v in (result.get("srm") or {}).items()
    ]
    rule = xs.decision_rule_get(workspace.pk)
    proposal = xs.experiment_proposal(experiment) if result else None
    line = readout.verdict_line(result, proposal.to_dict()) if proposal else None
    tl = result.get("timeline") or {}
    if tl.get("dates"):
        charts["timeline"] = {k: tl[k] for k in ("dates", "unit", "exposures", "effects",
                                                  "metric", "alpha")}
    progress = None
    planned = (experiment.design or {}).get("arm_n") or (
        [experiment.design["n_per_arm"]] * len(experiment.arms)
        if (experiment.design or {}).get("n_per_arm") else None)
    if planned and result.get("kind") == "ab":
        progress = readout.planned_vs_obtained(
            arms=result.get("arms") or experiment.arm_names, planned=planned,
            obtained=result.get("counts") or [], dates=tl.get("dates"),
            cumulative=tl.get("exposures"))
    return render(
        request,
        "experiments/experiment.html",
        {
            "workspace": workspace,
            "membership": membership,
            "x": experiment,
            "result": result,
            "charts": charts,
            "srm_rows": srm_rows,
            "power_form": power_form,
            "conclude_form": conclude_form,
            "job": experiment.analysis_job,
            "summaries": experiment.summaries.all(),
            "learnings": experiment.learnings.all(),
            "is_quasi": experiment.kind != ExperimentKind.AB,
            "rule": rule,
            "proposal": proposal,
            "bayes_rows": [r for r in result.get("rows", []) if r.get("bayes")],
            "verdict_line": line,
            "timeline": tl,
            "progress": progress,
            "ways_forward": (experiment.design or {}).get("ways_forward"),
        },
    )


@login_required
def decision_rule(request: HttpRequest, slug: str) -> HttpResponse:
    """The workspace's decision rule and Bayesian prior (the manage role changes them)."""
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    rule = xs.decision_rule_get(workspace.pk)
    initial = {name: getattr(rule, name) for name in xs.RULE_FIELDS}
    form = DecisionRuleForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if not membership.can("manage"):
            raise PermissionDenied
        if form.is_valid():
            try:
                xs.decision_rule_set(workspace_id=workspace.pk, user=request.user,
                                     **form.cleaned_data)
            except xs.ExperimentInvalid as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, "Decision rule saved; it applies to proposals now "
                                          "and to Bayesian reads from the next analysis.")
                return redirect("decision-rule", slug=slug)
    return render(request, "experiments/decision_rule.html",
                  {"workspace": workspace, "membership": membership, "form": form,
                   "rule": rule, "can_manage": membership.can("manage")})


def _date(value: str | None) -> Any:
    from django.utils.dateparse import parse_date

    try:
        return parse_date(value or "")
    except ValueError:
        return None


@login_required
def learnings(request: HttpRequest, slug: str) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    segment = request.GET.get("segment", "")
    qs = selectors.learnings_for(
        request.user,
        query=request.GET.get("q", "").strip(),
        segment=int(segment) if segment.isdigit() else None,
        outcome=request.GET.get("outcome", ""),
        since=_date(request.GET.get("since")),
        until=_date(request.GET.get("until")),
    ).filter(workspace=workspace)
    rows = list(qs[:300])
    counts = {o: sum(1 for r in rows if r.outcome == o) for o in Outcome.values}
    return render(
        request,
        "experiments/learnings.html",
        {
            "workspace": workspace,
            "membership": membership,
            "learnings": rows,
            "counts": counts,
            "outcomes": Outcome.choices,
            "filters": request.GET,
            "segments": Segment.objects.filter(workspace=workspace).order_by("name"),
        },
    )
