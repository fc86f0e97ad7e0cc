from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("w/<slug:slug>/backlog/", views.backlog, name="backlog"),
    path("w/<slug:slug>/investments/new/", views.investment_form, name="investment-new"),
    path("w/<slug:slug>/investments/<int:pk>/", views.investment_detail, name="investment"),
    path("w/<slug:slug>/investments/<int:pk>/edit/", views.investment_form,
         name="investment-edit"),
    path("w/<slug:slug>/scenarios/", views.scenarios, name="scenarios"),
    path("w/<slug:slug>/scenarios/compare/", views.scenario_compare, name="scenario-compare"),
    path("w/<slug:slug>/runs/<int:pk>/", views.run_detail, name="run"),
]
