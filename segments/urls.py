from __future__ import annotations

from django.urls import path

from . import segment_views

urlpatterns = [
    path("w/<slug:slug>/segments/", segment_views.segment_list, name="segments"),
    path("w/<slug:slug>/segments/new/", segment_views.segment_form, name="segment-new"),
    path("w/<slug:slug>/segments/refresh/", segment_views.segment_refresh, name="segment-refresh"),
    path("w/<slug:slug>/segments/clusters/", segment_views.cluster_suggestions, name="clusters"),
    path("w/<slug:slug>/segments/compare/", segment_views.segment_compare, name="segment-compare"),
    path("w/<slug:slug>/segments/<int:pk>/", segment_views.segment_detail, name="segment"),
    path("w/<slug:slug>/segments/<int:pk>/edit/", segment_views.segment_form, name="segment-edit"),
    path("vendor/plotly.min.js", segment_views.plotly_js, name="plotly-js"),
]
