from __future__ import annotations

from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("hypotheses", views.HypothesisViewSet, basename="hypothesis")
router.register("experiments", views.ExperimentViewSet, basename="experiment")
router.register("learnings", views.LearningViewSet, basename="learning")
router.register("metrics", views.MetricViewSet, basename="metric")
router.register("decision-rules", views.DecisionRuleViewSet, basename="decision-rule")

urlpatterns = router.urls
