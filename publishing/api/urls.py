"""Routes of the publishing API, included under /api/v1/ and /api/v2/ (see api/urls.py)."""

from django.urls import re_path

from api.routers import OptionalSlashRouter
from publishing.api import views

router = OptionalSlashRouter()
router.register("products", views.ProductViewSet, basename="product")
router.register("product-templates", views.ProductTemplateViewSet, basename="product-template")

urlpatterns = [
    re_path(r"^images/(?P<image_id>[^/.]+)/publish/?$", views.ImagePublishView.as_view(), name="image-publish"),
    re_path(r"^batch/publish/?$", views.BatchPublishView.as_view(), name="batch-publish"),
    *router.urls,
]
