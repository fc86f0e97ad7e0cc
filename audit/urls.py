from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("audit", views.AuditViewSet, basename="audit")

urlpatterns = [
    path("w/<slug:slug>/audit/", views.audit_list, name="audit"),
    path("api/v1/", include(router.urls)),
]
