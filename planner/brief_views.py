"""The council's quarterly brief: one printable page (prints cleanly to PDF)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts import selectors as ws_selectors

from .dashboard import dashboard


@login_required
def council_brief(request: HttpRequest, slug: str) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    return render(request, "planner/brief.html", {
        "workspace": workspace, "membership": membership, "d": dashboard(workspace, request.user),
        "printed_at": timezone.now(),
    })
