from __future__ import annotations

from rest_framework.routers import DefaultRouter

from . import insight_views, views

router = DefaultRouter()
router.register("analyses", views.AnalysisViewSet, basename="analysis")
router.register("insights", insight_views.SavedInsightViewSet, basename="insight")

urlpatterns = router.urls
