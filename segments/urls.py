from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("w/<slug:slug>/", views.workspace_detail, name="workspace"),
    path("w/<slug:slug>/datasets/<int:pk>/", views.dataset_detail, name="dataset"),
    path("w/<slug:slug>/imports/<int:pk>/", views.import_detail, name="import"),
    path("w/<slug:slug>/jobs/", views.job_list, name="jobs"),
]
