"""The home page and a workspace's dashboard: every capability brought together."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts import selectors as ws_selectors
from events import services as event_services
from events.forms import DatasetForm
from events.models import Dataset
from jobs.models import Job

from .dashboard import dashboard


@login_required
def home(request: HttpRequest) -> HttpResponse:
    spaces = list(ws_selectors.workspaces_for(request.user).order_by("name"))
    if len(spaces) == 1:
        return redirect("workspace", slug=spaces[0].slug)
    return render(request, "planner/home.html", {"workspaces": spaces})


@login_required
def workspace_detail(request: HttpRequest, slug: str) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    form = DatasetForm(request.POST or None)
    if request.method == "POST":
        if not membership.can("import"):
            raise PermissionDenied
        if form.is_valid():
            try:
                dataset = event_services.dataset_create(workspace=workspace, **form.cleaned_data)
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
    context["dash"] = dashboard(workspace, request.user)
    return render(request, "planner/workspace.html", context)
