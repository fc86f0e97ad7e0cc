from __future__ import annotations

from django.urls import path

from . import brief_views, home_views, roadmap_views, views

urlpatterns = [
    path("", home_views.home, name="home"),
    path("w/<slug:slug>/", home_views.workspace_detail, name="workspace"),
    path("w/<slug:slug>/backlog/", views.backlog, name="backlog"),
    path("w/<slug:slug>/investments/new/", views.investment_form, name="investment-new"),
    path("w/<slug:slug>/investments/<int:pk>/", views.investment_detail, name="investment"),
    path("w/<slug:slug>/investments/<int:pk>/edit/", views.investment_form,
         name="investment-edit"),
    path("w/<slug:slug>/scenarios/", views.scenarios, name="scenarios"),
    path("w/<slug:slug>/scenarios/compare/", views.scenario_compare, name="scenario-compare"),
    path("w/<slug:slug>/runs/<int:pk>/", views.run_detail, name="run"),
    path("w/<slug:slug>/value-models/", views.value_models, name="value-models"),
    path("w/<slug:slug>/calibration/", views.calibration, name="calibration"),
    path("w/<slug:slug>/brief/", brief_views.council_brief, name="council-brief"),
    path("w/<slug:slug>/roadmap/", roadmap_views.roadmap_page, name="roadmap"),
    path("w/<slug:slug>/roadmap/v/<int:number>/", roadmap_views.roadmap_page,
         name="roadmap-version"),
    path("w/<slug:slug>/roadmap/compare/", roadmap_views.roadmap_compare,
         name="roadmap-compare"),
    path("w/<slug:slug>/roadmap/adopt/<int:run_id>/", roadmap_views.roadmap_adopt_page,
         name="roadmap-adopt"),
]
