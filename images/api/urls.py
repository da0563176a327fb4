"""Routes of the images API, included under /api/v1/ and /api/v2/ (see api/urls.py)."""

from django.urls import re_path

from api.routers import OptionalSlashRouter
from images.api import views

router = OptionalSlashRouter()
router.register("generations", views.GenerationViewSet, basename="generation")
router.register("images", views.ImageViewSet, basename="image")
router.register("batch", views.BatchViewSet, basename="batch")

urlpatterns = [
    re_path(r"^generate/?$", views.GenerateView.as_view(), name="generate"),
    re_path(r"^stats/?$", views.StatsView.as_view(), name="stats"),
    *router.urls,
]
