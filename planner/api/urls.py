from __future__ import annotations

from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("investments", views.InvestmentViewSet, basename="investment")
router.register("value-models", views.ValueModelViewSet, basename="value-model")
router.register("scenarios", views.ScenarioViewSet, basename="scenario")
router.register("runs", views.RunViewSet, basename="run")
router.register("decisions", views.DecisionViewSet, basename="decision")

urlpatterns = router.urls
