"""Pages: the erasure form on a dataset page (admins)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from accounts import selectors as ws_selectors

from .forms import ErasureForm
from .models import Dataset
from .privacy_services import ErasureInvalid, erase_user


@login_required
@require_POST
def dataset_erase(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    dataset = get_object_or_404(Dataset, workspace=workspace, pk=pk)
    if not membership.can("manage"):
        raise PermissionDenied
    form = ErasureForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Erasure: give the user id.")
    else:
        try:
            erasure, created = erase_user(dataset=dataset, user_id=form.cleaned_data["user_id"],
                                          requested_by=request.user,
                                          reason=form.cleaned_data["reason"])
        except ErasureInvalid as exc:
            messages.error(request, f"Erasure refused: {exc.message}")
        else:
            messages.success(request, f"Erasure #{erasure.pk} "
                                      f"{'queued' if created else 'is already queued'}.")
    return redirect("dataset", slug=slug, pk=pk)
