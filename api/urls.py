"""The API machinery's own routes: the version list, the OpenAPI schema and its docs, a JSON 404."""

from django.urls import re_path

from api import views

urlpatterns = [
    re_path(r"^version/?$", views.VersionView.as_view(), name="api-version"),
    re_path(r"^schema/?$", views.SchemaView.as_view(), name="schema"),
    re_path(r"^docs/?$", views.SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    re_path(r"^redoc/?$", views.RedocView.as_view(url_name="schema"), name="redoc"),
]
