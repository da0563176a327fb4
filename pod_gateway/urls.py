"""URL routes: the admin, the versioned API of each app and the unversioned operational endpoints."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path

from api import views as api_views
from pod_gateway import views
from publishing import views as publishing_views
from publishing.review import workspace as review_workspace

VERSIONS = "|".join(settings.API_VERSIONS)

api_patterns = [
    re_path(r"^health/?$", views.HealthView.as_view(), name="health"),
    re_path(r"^ready/?$", views.ready, name="ready"),
    re_path(r"^metrics/?$", views.metrics_view, name="metrics"),
    path("", include("api.urls")),
    # URLPathVersioning reads `version`; the pattern admits only supported versions.
    re_path(
        rf"^(?P<version>{VERSIONS})/",
        include([
            path("", include("images.api.urls")),
            path("", include("publishing.api.urls")),
            path("", include("webhooks.api.urls")),
        ]),
    ),
    # Last: whatever no route above matched answers in the API's error shape, never Django's HTML page.
    re_path(r"^", api_views.not_found),
]

urlpatterns = [
    # The admin login, limited per client IP and per username (django-ratelimit) before admin's own.
    path("admin/login/", views.admin_login, name="admin-login"),
    # The keyboard-first review workspace (images.review, with publishing's decision), inside the admin.
    path("admin/review/", review_workspace.urls),
    path("admin/", admin.site.urls),
    # Signed, expiring print-file URLs that Printify fetches when uploading by URL.
    path("print-files/<str:token>/<str:filename>", publishing_views.print_file, name="publishing-print-file"),
    # Everything under /api/, ending in a JSON 404 for unknown paths: keep it the last entry.
    path("api/", include(api_patterns)),
]

# Errors Django raises outside DRF views: under /api/ in the API's error shape, elsewhere Django's pages.
handler400 = "api.views.bad_request"
handler403 = "api.views.permission_denied"
handler404 = "api.views.page_not_found"
handler500 = "api.views.server_error"
