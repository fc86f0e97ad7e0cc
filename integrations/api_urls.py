from __future__ import annotations

from rest_framework.routers import DefaultRouter

from . import api_views

router = DefaultRouter()
router.register("webhooks", api_views.WebhookViewSet, basename="webhook")

urlpatterns = router.urls
