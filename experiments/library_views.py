"""Pages for the metric library and the per-experiment CSV template for summary uploads."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from accounts import selectors as ws_selectors
from experiments import metric_services as ms
from experiments import services as xs
from experiments.forms import MetricForm
from experiments.models import Metric

from . import selectors


@login_required
def metrics(request: HttpRequest, slug: str, pk: int | None = None) -> HttpResponse:
    """The workspace's metrics; members who define can add one or edit one (``pk``)."""
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    instance = get_object_or_404(Metric, workspace=workspace, pk=pk) if pk else None
    can = membership.can("define")
    form = MetricForm(request.POST or None, instance=instance)
    if request.method == "POST":
        workspace, membership = ws_selectors.workspace_get(request.user, slug, "define")
        if form.is_valid():
            metric = form.save(commit=False)
            metric.workspace = workspace
            try:
                ms.metric_save(metric)
            except xs.ExperimentInvalid as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, f"Metric '{metric.name}' saved.")
                return redirect("metrics", slug=slug)
    library = Metric.objects.filter(workspace=workspace).prefetch_related(
        "primary_in", "guardrail_in")
    return render(request, "experiments/metrics.html",
                  {"workspace": workspace, "membership": membership, "form": form,
                   "metric": instance, "metrics": library, "can_define": can})


@login_required
def summary_template(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """The CSV the summary upload reads back: header and one row per arm x metric."""
    workspace, _ = ws_selectors.workspace_get(request.user, slug)
    experiment = get_object_or_404(
        selectors.experiments_for(request.user).filter(workspace=workspace), pk=pk)
    response = HttpResponse(ms.summary_template(experiment), content_type="text/csv")
    response["Content-Disposition"] = (
        f'attachment; filename="experiment-{experiment.pk}-summaries.csv"')
    return response
