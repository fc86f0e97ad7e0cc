from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("w/<slug:slug>/jobs/", views.job_list, name="jobs"),
]
