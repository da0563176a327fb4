"""URL routes: the admin, the versioned API and the unversioned operational endpoints."""

from django.contrib import admin
from django.urls import path

from pod_gateway import views
from publishing import views as publishing_views

urlpatterns = [
    path("admin/", admin.site.urls),
    # Signed, expiring print-file URLs that Printify fetches when uploading by URL.
    path("print-files/<str:token>/<str:filename>", publishing_views.print_file, name="publishing-print-file"),
    path("api/health", views.health, name="health"),
    path("api/health/", views.health),
]
