from __future__ import annotations

from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "security"
    verbose_name = "Security checks"

    def ready(self) -> None:
        from django.contrib import admin

        from . import checks  # noqa: F401  (registers the deploy checks)
        from .throttling import ThrottledAdminAuthenticationForm

        admin.site.login_form = ThrottledAdminAuthenticationForm
