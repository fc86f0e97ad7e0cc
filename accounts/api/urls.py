from __future__ import annotations

from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("workspaces", views.WorkspaceViewSet, basename="workspace")

urlpatterns = router.urls
