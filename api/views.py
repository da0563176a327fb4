"""Unversioned API endpoints (version, health) and the JSON 404 for unknown paths under /api/."""

from __future__ import annotations

import re
import sys

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views import csrf, defaults
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema, inline_serializer
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.exceptions import error_response, pool_exhausted, pool_exhausted_response
from api.permissions import PublicEndpoint
from api.versioning import version_info

VERSION_SEGMENT = re.compile(r"^/api/(v\d+)(/|$)")


class PublicView(APIView):
    """Outside the versions, open to anyone, no credentials read (a bad token must not break liveness)."""

    versioning_class = None
    authentication_classes: list = []
    permission_classes = [PublicEndpoint]


class VersionView(PublicView):
    @extend_schema(
        operation_id="version",
        tags=["meta"],
        summary="API versions",
        responses=inline_serializer(
            name="VersionInfo",
            fields={
                "current": serializers.CharField(),
                "supported": serializers.ListField(child=serializers.CharField()),
                "deprecated": inline_serializer(
                    name="DeprecatedVersion",
                    fields={"version": serializers.CharField(), "sunset": serializers.DateField(allow_null=True)},
                    many=True,
                ),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        return Response(version_info())


class SchemaView(SpectacularAPIView):
    """One OpenAPI document per version, chosen by `?version=` (default: the current version)."""

    versioning_class = None

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        version = request.GET.get("version")
        if version is not None and version not in settings.API_VERSIONS:
            return unsupported_version(request, version)
        return super().get(request, *args, **kwargs)


class SwaggerView(SpectacularSwaggerView):
    versioning_class = None


class RedocView(SpectacularRedocView):
    versioning_class = None
    template_name = "api/redoc.html"


def unsupported_version(request: HttpRequest, version: str) -> HttpResponse:
    return error_response(
        request,
        status=404,
        code="UNSUPPORTED_VERSION",
        message=f"API version {version!r} is not supported",
        details={"version": version, "supported": list(settings.API_VERSIONS)},
    )


@csrf_exempt  # answers every method with a 404; a CSRF 403 would hide that
def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Any /api/ path no route matched: UNSUPPORTED_VERSION for an unknown `vN` segment, else NOT_FOUND."""
    match = VERSION_SEGMENT.match(request.path)
    if match and match.group(1) not in settings.API_VERSIONS:
        return unsupported_version(request, match.group(1))
    return error_response(request, status=404, code="NOT_FOUND", message=f"No endpoint at {request.path}")


# Project-level handlers for errors Django raises outside DRF views (pod_gateway/urls.py names them).

def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or request.path == "/api"


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return error_response(request, status=400, code="MALFORMED_REQUEST", message="Bad request")
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return error_response(request, status=403, code="FORBIDDEN", message="Permission denied")
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return not_found(request)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request) and pool_exhausted(sys.exc_info()[1]):
        return pool_exhausted_response(request)
    if _is_api(request):
        return error_response(request, status=500, code="INTERNAL_ERROR", message="Internal server error")
    return defaults.server_error(request)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: under /api/ a coded 403 (e.g. a POST to a plain Django view without a token)."""
    if _is_api(request):
        return error_response(request, status=403, code="FORBIDDEN", message=f"CSRF check failed: {reason}")
    return csrf.csrf_failure(request, reason)
