"""URL-path API versions (`/api/v1/`, `/api/v2/`), their deprecation headers and `/api/version`.

A version listed in API_DEPRECATED_VERSIONS answers every response with `Deprecation: true` and, when
API_SUNSET names a date for it, an RFC 8594 `Sunset` header.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.http import http_date
from rest_framework.versioning import URLPathVersioning

VERSION_IN_PATH = re.compile(r"^/api/(v\d+)(/|$)")


class PathVersioning(URLPathVersioning):
    """`/api/<version>/…` (ALLOWED_VERSIONS); the URL pattern admits only supported versions."""


def current_version() -> str:
    return settings.API_VERSIONS[-1]


def sunset_date(version: str) -> date | None:
    return settings.API_SUNSET.get(version)


def deprecation_headers(version: str | None) -> dict[str, str]:
    """The headers a response of `version` carries: none unless the version is deprecated."""
    if version not in settings.API_DEPRECATED_VERSIONS:
        return {}
    headers = {"Deprecation": "true"}
    sunset = sunset_date(version)
    if sunset is not None:
        headers["Sunset"] = http_date(datetime(sunset.year, sunset.month, sunset.day, tzinfo=UTC).timestamp())
    return headers


def version_info() -> dict:
    """The body of `GET /api/version`."""
    deprecated = []
    for version in settings.API_DEPRECATED_VERSIONS:
        sunset = sunset_date(version)
        deprecated.append({"version": version, "sunset": sunset.isoformat() if sunset else None})
    return {"current": current_version(), "supported": list(settings.API_VERSIONS), "deprecated": deprecated}


class DeprecationMiddleware:
    """Adds the deprecation headers to every response under a deprecated version's path, errors included."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        match = VERSION_IN_PATH.match(request.path)
        if match:
            for name, value in deprecation_headers(match.group(1)).items():
                response[name] = value
        return response
