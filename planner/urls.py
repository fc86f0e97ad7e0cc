from __future__ import annotations

from django.urls import path

from . import brief_views, home_views, views
from . import experiment_views as xv

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
    path("w/<slug:slug>/hypotheses/", xv.hypotheses, name="hypotheses"),
    path("w/<slug:slug>/hypotheses/new/", xv.hypothesis_form, name="hypothesis-new"),
    path("w/<slug:slug>/hypotheses/<int:pk>/", xv.hypothesis_detail, name="hypothesis"),
    path("w/<slug:slug>/hypotheses/<int:pk>/edit/", xv.hypothesis_form, name="hypothesis-edit"),
    path("w/<slug:slug>/hypotheses/<int:hypothesis_pk>/experiments/new/", xv.experiment_form,
         name="experiment-new"),
    path("w/<slug:slug>/experiments/<int:pk>/", xv.experiment_detail, name="experiment"),
    path("w/<slug:slug>/experiments/<int:pk>/edit/", xv.experiment_form, name="experiment-edit"),
    path("w/<slug:slug>/learnings/", xv.learnings, name="learnings"),
    path("w/<slug:slug>/brief/", brief_views.council_brief, name="council-brief"),
]
