"""URL routes: the admin, the versioned API and the unversioned operational endpoints."""

from django.contrib import admin
from django.urls import path

from pod_gateway import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/health", views.health, name="health"),
    path("api/health/", views.health),
]
