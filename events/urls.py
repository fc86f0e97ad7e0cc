from __future__ import annotations

from django.urls import path

from . import privacy_views, views

urlpatterns = [
    path("w/<slug:slug>/datasets/<int:pk>/", views.dataset_detail, name="dataset"),
    path("w/<slug:slug>/datasets/<int:pk>/retention/", views.dataset_retention,
         name="dataset-retention"),
    path("w/<slug:slug>/datasets/<int:pk>/erase/", privacy_views.dataset_erase,
         name="dataset-erase"),
    path("w/<slug:slug>/imports/<int:pk>/", views.import_detail, name="import"),
]
