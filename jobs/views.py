"""The jobs page: every long task of a workspace with its state, progress, parameters by name,
how long it waited and ran, and a link to its result (jobs/listing.py)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts import selectors as ws_selectors

from .listing import job_rows
from .models import Job


@login_required
def job_list(request: HttpRequest, slug: str) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    jobs = (Job.objects.filter(workspace=workspace).select_related("created_by")
            .order_by("-created_at", "-id")[:100])
    return render(request, "jobs/list.html", {"workspace": workspace, "membership": membership,
                                              "rows": job_rows(jobs, workspace.slug)})
