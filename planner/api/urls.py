from __future__ import annotations

from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("hypotheses", views.HypothesisViewSet, basename="hypothesis")
router.register("experiments", views.ExperimentViewSet, basename="experiment")
router.register("learnings", views.LearningViewSet, basename="learning")
router.register("investments", views.InvestmentViewSet, basename="investment")
router.register("scenarios", views.ScenarioViewSet, basename="scenario")
router.register("runs", views.RunViewSet, basename="run")
router.register("decisions", views.DecisionViewSet, basename="decision")

urlpatterns = router.urls
