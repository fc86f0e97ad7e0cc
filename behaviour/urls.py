from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("w/<slug:slug>/behaviour/", views.behaviour, name="behaviour"),
    path("w/<slug:slug>/behaviour/<int:pk>/", views.analysis_detail, name="analysis"),
]
