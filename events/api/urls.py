from __future__ import annotations

from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("datasets", views.DatasetViewSet, basename="dataset")
router.register("imports", views.ImportViewSet, basename="import")

urlpatterns = router.urls
