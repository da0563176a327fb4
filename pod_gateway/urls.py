"""URL routes: the admin, the versioned API and the unversioned operational endpoints."""

from django.contrib import admin
from django.urls import include, path

from api import throttling
from publishing import views as publishing_views

urlpatterns = [
    # The admin login, limited per client IP and per username (django-ratelimit) before admin's own.
    path("admin/login/", throttling.admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    # Signed, expiring print-file URLs that Printify fetches when uploading by URL.
    path("print-files/<str:token>/<str:filename>", publishing_views.print_file, name="publishing-print-file"),
    # Everything under /api/, ending in a JSON 404 for unknown paths: keep it the last entry.
    path("api/", include("api.urls")),
]

# Errors Django raises outside DRF views: under /api/ in the API's error shape, elsewhere Django's pages.
handler400 = "api.views.bad_request"
handler403 = "api.views.permission_denied"
handler404 = "api.views.page_not_found"
handler500 = "api.views.server_error"
