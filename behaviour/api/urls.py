from __future__ import annotations

from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("analyses", views.AnalysisViewSet, basename="analysis")

urlpatterns = router.urls
