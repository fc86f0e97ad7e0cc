"""Pages. Thin: fetch through selectors, write through services."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from accounts import selectors as ws_selectors
from jobs.models import Job

from . import services
from .forms import DatasetForm, ImportForm
from .models import Dataset, Import


@login_required
def home(request: HttpRequest) -> HttpResponse:
    spaces = list(ws_selectors.workspaces_for(request.user).order_by("name"))
    if len(spaces) == 1:
        return redirect("workspace", slug=spaces[0].slug)
    return render(request, "segments/home.html", {"workspaces": spaces})


@login_required
def workspace_detail(request: HttpRequest, slug: str) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    form = DatasetForm(request.POST or None)
    if request.method == "POST":
        if not membership.can("import"):
            raise PermissionDenied
        if form.is_valid():
            try:
                dataset = services.dataset_create(workspace=workspace, **form.cleaned_data)
            except IntegrityError:
                form.add_error("name", "A dataset with this name exists in the workspace.")
            else:
                return redirect("dataset", slug=slug, pk=dataset.pk)
    context = {
        "workspace": workspace,
        "membership": membership,
        "datasets": Dataset.objects.filter(workspace=workspace).order_by("name"),
        "jobs": Job.objects.filter(workspace=workspace).order_by("-created_at")[:5],
        "form": form,
    }
    from planner.dashboard import dashboard  # the home page brings every capability together

    context["dash"] = dashboard(workspace, request.user)
    return render(request, "segments/workspace.html", context)


def _sparkline(counts: list[int], width: int = 120, height: int = 28) -> str:
    if not counts:
        return ""
    top = max(max(counts), 1)
    step = width / max(len(counts) - 1, 1)
    points = " ".join(f"{i * step:.1f},{height - 2 - (c / top) * (height - 4):.1f}"
                      for i, c in enumerate(counts))
    return points


@login_required
def dataset_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    dataset = get_object_or_404(Dataset, workspace=workspace, pk=pk)
    events: list[dict[str, Any]] = []
    for entry in dataset.event_catalog:
        counts = entry.get("weekly", {}).get("counts", [])
        events.append({**entry, "spark": _sparkline(counts), "weeks": entry["weekly"]["weeks"],
                       "last_week": counts[-1] if counts else 0})
    context = {
        "workspace": workspace,
        "membership": membership,
        "dataset": dataset,
        "events": events,
        "attributes": dataset.attribute_catalog,
        "imports": Import.objects.filter(dataset=dataset).select_related("job")[:20],
        "form": ImportForm(),
        "max_upload": settings.MAX_UPLOAD_BYTES,
    }
    return render(request, "segments/dataset.html", context)


@login_required
def import_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    record = get_object_or_404(Import.objects.select_related("dataset", "job"),
                               workspace=workspace, pk=pk)
    sections = []
    for part in ("events", "users"):
        block = record.report.get(part)
        if block:
            sections.append({"name": part, **block})
    context = {
        "workspace": workspace,
        "membership": membership,
        "record": record,
        "sections": sections,
        "summary": record.report.get("summary", {}),
        "report_json": json.dumps(record.report, indent=2),
    }
    return render(request, "segments/import.html", context)
