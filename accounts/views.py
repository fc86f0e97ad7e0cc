"""API tokens in the UI: create (the key is shown once), name, revoke."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from .models import ApiToken

MAX_ACTIVE = 20


@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    new_key = ""
    error = ""
    if request.method == "POST":
        if request.POST.get("revoke"):
            token = get_object_or_404(ApiToken, user=request.user, pk=request.POST["revoke"])
            if token.revoked_at is None:
                token.revoked_at = timezone.now()
                token.save(update_fields=["revoked_at"])
                messages.success(request, f"Revoked '{token.name}'.")
            return redirect("tokens")
        name = request.POST.get("name", "").strip()
        active = ApiToken.objects.filter(user=request.user, revoked_at__isnull=True).count()
        if not name:
            error = "Give the token a name (e.g. the tool that will use it)."
        elif len(name) > 100:
            error = "The name is longer than 100 characters."
        elif active >= MAX_ACTIVE:
            error = f"You have {MAX_ACTIVE} active tokens: revoke one first."
        else:
            _, new_key = ApiToken.issue(user=request.user, name=name)
    return render(request, "segments/tokens.html", {
        "tokens": ApiToken.objects.filter(user=request.user), "new_key": new_key,
        "error": error, "name": request.POST.get("name", "") if error else "",
    }, status=400 if error else 200)


@login_required
def workspace_settings(request: HttpRequest, slug: str) -> HttpResponse:
    """The workspace's settings: admins change them, other members read them."""
    from . import selectors as ws_selectors
    from .services import workspace_settings_update

    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    if request.method == "POST":
        if not membership.can("manage"):
            raise PermissionDenied
        workspace_settings_update(
            workspace=workspace,
            auto_refresh_segments=request.POST.get("auto_refresh_segments") == "on")
        messages.success(request, "Settings saved.")
        return redirect("workspace-settings", slug=slug)
    return render(request, "accounts/settings.html", {
        "workspace": workspace, "membership": membership,
        "can_manage": membership.can("manage")})
