from __future__ import annotations

from rest_framework.routers import DefaultRouter

from . import roadmap_views, views

router = DefaultRouter()
router.register("investments", views.InvestmentViewSet, basename="investment")
router.register("value-models", views.ValueModelViewSet, basename="value-model")
router.register("scenarios", views.ScenarioViewSet, basename="scenario")
router.register("runs", views.RunViewSet, basename="run")
router.register("decisions", views.DecisionViewSet, basename="decision")
router.register("roadmap-versions", roadmap_views.RoadmapVersionViewSet,
                basename="roadmap-version")

urlpatterns = router.urls
