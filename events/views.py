"""Dataset and import pages. Thin: fetch through selectors, write through services."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from accounts import selectors as ws_selectors

from . import retention_services, selectors
from .forms import ImportForm
from .models import Dataset, Import


def _sparkline(counts: list[int], width: int = 120, height: int = 28) -> str:
    if not counts:
        return ""
    top = max(max(counts), 1)
    step = width / max(len(counts) - 1, 1)
    points = " ".join(f"{i * step:.1f},{height - 2 - (c / top) * (height - 4):.1f}"
                      for i, c in enumerate(counts))
    return points


# Event names per page of the dataset page's catalog.
CATALOG_PAGE = 50


@login_required
def dataset_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    dataset = get_object_or_404(Dataset, workspace=workspace, pk=pk)
    search = request.GET.get("q", "")[:200]
    catalog = Paginator(selectors.catalog_matching(dataset, search), CATALOG_PAGE)
    page = catalog.get_page(request.GET.get("page"))
    events: list[dict[str, Any]] = []
    for entry in retention_services.catalog_with_kinds(dataset, page.object_list):
        counts = entry.get("weekly", {}).get("counts", [])
        events.append({**entry, "spark": _sparkline(counts), "weeks": entry["weekly"]["weeks"],
                       "last_week": counts[-1] if counts else 0})
    context = {
        "workspace": workspace,
        "membership": membership,
        "dataset": dataset,
        "events": events,
        "catalog_page": page,
        "catalog_search": search,
        "catalog_total": len(dataset.event_catalog or []),
        "attributes": dataset.attribute_catalog,
        "imports": Import.objects.filter(dataset=dataset).select_related("job")[:20],
        "form": ImportForm(),
        "max_upload": settings.MAX_UPLOAD_BYTES,
        "retention": retention_services.retention_setup(dataset),
        # Every name as a choice only when there are few; else the names are typed.
        "all_events": [str(e.get("event")) for e in (dataset.event_catalog or [])]
        if len(dataset.event_catalog or []) <= CATALOG_PAGE else [],
        "can_define": membership.can("define"),
    }
    return render(request, "events/dataset.html", context)


@login_required
def dataset_retention(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Change the event kinds (the catalog's selects) or the retention definition."""
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    dataset = get_object_or_404(Dataset, workspace=workspace, pk=pk)
    if request.method != "POST" or not membership.can("define"):
        raise PermissionDenied
    post = request.POST
    try:
        if post.get("part") == "kinds":
            kinds = {key[len("kind:"):]: value for key, value in post.items()
                     if key.startswith("kind:")}
            retention_services.dataset_retention_update(dataset=dataset, event_kinds=kinds)
            messages.success(request, "Saved the event kinds.")
        else:
            typed = [n.strip() for n in post.get("return_events_text", "").split(",")
                     if n.strip()]
            returns = (post.getlist("return_events") or typed) \
                if post.get("return_set") == "chosen" else []
            if post.get("return_set") == "chosen" and not returns:
                raise retention_services.RetentionInvalid(
                    "retention_return_events", "choose at least one return event")
            retention_services.dataset_retention_update(
                dataset=dataset, start_event=post.get("start_event", ""), return_events=returns)
            messages.success(request, "Saved the retention definition: refresh segments to "
                                      "measure D1/D7/D30 with it.")
    except retention_services.RetentionInvalid as exc:
        messages.error(request, f"{exc.field}: {exc.message}")
    return redirect("dataset", slug=slug, pk=pk)


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
    return render(request, "events/import.html", context)
