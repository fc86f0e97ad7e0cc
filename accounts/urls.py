from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("account/tokens/", views.tokens, name="tokens"),
    path("w/<slug:slug>/settings/", views.workspace_settings, name="workspace-settings"),
]
