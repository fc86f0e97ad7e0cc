from __future__ import annotations

from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("hypotheses", views.HypothesisViewSet, basename="hypothesis")
router.register("experiments", views.ExperimentViewSet, basename="experiment")
router.register("learnings", views.LearningViewSet, basename="learning")

urlpatterns = router.urls
