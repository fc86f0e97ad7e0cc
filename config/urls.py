from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from config.health import healthz
from security.throttling import ThrottledAuthenticationForm

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(
        authentication_form=ThrottledAuthenticationForm), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include("planner.api.urls")),
    path("api/v1/", include("experiments.api.urls")),
    path("api/v1/", include("accounts.api.urls")),
    path("api/v1/", include("jobs.api.urls")),
    path("api/v1/", include("events.api.urls")),
    path("api/v1/", include("segments.api.urls")),
    path("api/v1/", include("behaviour.api.urls")),
    path("api/v1/", include("integrations.api_urls")),
    path("", include("planner.urls")),
    path("", include("experiments.urls")),
    path("", include("accounts.urls")),
    path("", include("jobs.urls")),
    path("", include("events.urls")),
    path("", include("segments.urls")),
    path("", include("behaviour.urls")),
    path("", include("integrations.urls")),
    path("", include("audit.urls")),
]
