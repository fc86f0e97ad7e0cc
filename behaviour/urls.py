from __future__ import annotations

from django.urls import path

from . import insight_views, views

urlpatterns = [
    path("w/<slug:slug>/behaviour/", views.behaviour, name="behaviour"),
    path("w/<slug:slug>/behaviour/<int:pk>/", views.analysis_detail, name="analysis"),
    path("w/<slug:slug>/insights/", insight_views.insight_dashboard, name="insights"),
    path("w/<slug:slug>/behaviour/<int:pk>/save-insight/", insight_views.insight_save_view,
         name="insight-save"),
]
