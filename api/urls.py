"""Everything under /api/: unversioned endpoints, the versions, the schema and docs, a JSON 404 for the rest."""

from django.conf import settings
from django.urls import include, path, re_path

from api import health, metrics, views

VERSIONS = "|".join(settings.API_VERSIONS)

urlpatterns = [
    re_path(r"^version/?$", views.VersionView.as_view(), name="api-version"),
    re_path(r"^health/?$", views.HealthView.as_view(), name="health"),
    re_path(r"^ready/?$", health.ready, name="ready"),
    re_path(r"^metrics/?$", metrics.metrics_view, name="metrics"),
    re_path(r"^schema/?$", views.SchemaView.as_view(), name="schema"),
    re_path(r"^docs/?$", views.SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    re_path(r"^redoc/?$", views.RedocView.as_view(url_name="schema"), name="redoc"),
    # URLPathVersioning reads `version`; the pattern admits only supported versions.
    re_path(
        rf"^(?P<version>{VERSIONS})/",
        include([path("", include("images.api.urls")), path("", include("publishing.api.urls"))]),
    ),
    # Last: whatever no route above matched answers in the API's error shape, never Django's HTML page.
    re_path(r"^", views.not_found),
]
