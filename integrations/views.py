"""The webhooks page: subscriptions with their recent deliveries; admins manage them."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from accounts import selectors as ws_selectors

from . import webhooks
from .forms import WebhookForm
from .models import WebhookSubscription

RECENT_DELIVERIES = 5


@login_required
def webhooks_page(request: HttpRequest, slug: str) -> HttpResponse:
    workspace, membership = ws_selectors.workspace_get(request.user, slug)
    can_manage = membership.can("manage")
    form = WebhookForm(request.POST if request.POST.get("op") == "create" else None)
    created: WebhookSubscription | None = None
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied
        op = request.POST.get("op")
        if op == "create":
            if form.is_valid():
                try:
                    created = webhooks.subscription_create(
                        workspace=workspace, url=form.cleaned_data["url"],
                        events=form.cleaned_data["events"], user=request.user,
                        description=form.cleaned_data["description"])
                    form = WebhookForm()
                except webhooks.WebhookInvalid as exc:
                    form.add_error(exc.field, exc.message)
        else:
            sub = get_object_or_404(WebhookSubscription, workspace=workspace,
                                    pk=request.POST.get("subscription") or 0)
            if op == "toggle":
                webhooks.subscription_update(subscription=sub, active=not sub.active)
            elif op == "delete":
                webhooks.subscription_delete(subscription=sub)
            elif op == "test":
                webhooks.send_test(subscription=sub)
            return redirect("webhooks", slug=slug)
    items: list[dict[str, Any]] = []
    for sub in WebhookSubscription.objects.filter(workspace=workspace).order_by("-created_at",
                                                                               "-id"):
        items.append({"sub": sub, "deliveries": list(
            sub.deliveries.order_by("-created_at", "-id")[:RECENT_DELIVERIES])})
    # The secret appears in this response only (no redirect that would need to carry it).
    return render(request, "integrations/webhooks.html", {
        "workspace": workspace, "membership": membership, "can_manage": can_manage,
        "items": items, "form": form, "created": created,
        "backoff": webhooks.BACKOFF_SECONDS, "max_attempts": webhooks.MAX_ATTEMPTS,
    })
