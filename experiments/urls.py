from __future__ import annotations

from django.urls import path

from . import library_views, views

urlpatterns = [
    path("w/<slug:slug>/hypotheses/", views.hypotheses, name="hypotheses"),
    path("w/<slug:slug>/hypotheses/new/", views.hypothesis_form, name="hypothesis-new"),
    path("w/<slug:slug>/hypotheses/<int:pk>/", views.hypothesis_detail, name="hypothesis"),
    path("w/<slug:slug>/hypotheses/<int:pk>/edit/", views.hypothesis_form,
         name="hypothesis-edit"),
    path("w/<slug:slug>/hypotheses/<int:hypothesis_pk>/experiments/new/", views.experiment_form,
         name="experiment-new"),
    path("w/<slug:slug>/hypotheses/<int:hypothesis_pk>/experiments/new/quasi/",
         views.experiment_form, {"kind": "quasi"}, name="experiment-new-quasi"),
    path("w/<slug:slug>/experiments/<int:pk>/summary-template.csv",
         library_views.summary_template, name="experiment-summary-template"),
    path("w/<slug:slug>/metrics/", library_views.metrics, name="metrics"),
    path("w/<slug:slug>/metrics/<int:pk>/", library_views.metrics, name="metric-edit"),
    path("w/<slug:slug>/experiments/<int:pk>/", views.experiment_detail, name="experiment"),
    path("w/<slug:slug>/experiments/<int:pk>/edit/", views.experiment_form,
         name="experiment-edit"),
    path("w/<slug:slug>/learnings/", views.learnings, name="learnings"),
    path("w/<slug:slug>/experiments/decision-rule/", views.decision_rule,
         name="decision-rule"),
]
