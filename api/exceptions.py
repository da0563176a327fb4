"""Every API error in one of two shapes: the v1 envelope or the v2 RFC 9457 problem document.

`error_response` builds either from a status, a code and a message; it is plain Django so middleware
and the project-level 404/500 handlers use it too. `exception_handler` is DRF's EXCEPTION_HANDLER and
turns DRF exceptions, Django's Http404/PermissionDenied and our DomainError subclasses into it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from functools import wraps
from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousMultipartForm, TooManyFieldsSent, TooManyFilesSent
from django.db import OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from psycopg_pool import PoolTimeout
from rest_framework import exceptions as drf
from rest_framework.views import set_rollback

from core.errors import DomainError

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
V2_PATH = re.compile(r"^/api/v2(/|$)")
# The problem `type` is a stable identifier per code; clients switch on it (or on `code`).
PROBLEM_TYPE_BASE = "urn:pod-gateway:problem:"


def uses_problem_format(request: HttpRequest | None) -> bool:
    """v2 answers errors as problem+json; everything else (v1, unversioned paths) uses the envelope."""
    return bool(request is not None and V2_PATH.match(request.path))


def error_response(
    request: HttpRequest | None,
    *,
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    """The error as the v1 envelope or the v2 problem document, chosen by the request path."""
    details = details or {}
    request_id = getattr(request, "request_id", None)
    if uses_problem_format(request):
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + code.lower().replace("_", "-"),
            "title": _reason(status),
            "status": status,
            "detail": message,
            "instance": request.path if request is not None else None,
            "code": code,
            "request_id": request_id,
            "errors": _pointer_errors(details.get("fields")),
        }
        # Anything beyond field errors (existing ids, batch results, rate-limit facts) stays available
        # as an RFC 9457 extension member with the same content as v1's `details`.
        extra = {key: value for key, value in details.items() if key != "fields"}
        if extra:
            body["details"] = extra
        content_type = PROBLEM_CONTENT_TYPE
    else:
        body = {"error": message, "code": code, "details": details, "request_id": request_id}
        content_type = "application/json"
    response = HttpResponse(json.dumps(body, default=str), status=status, content_type=content_type)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def require_get(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Like Django's `require_GET`, but a wrong method gets the coded API error, not an empty 405."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return error_response(
                request,
                status=405,
                code="METHOD_NOT_ALLOWED",
                message=f"Method {request.method} is not allowed here",
                headers={"Allow": "GET, HEAD"},
            )
        return view(request, *args, **kwargs)

    return wrapper


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _pointer_errors(fields: Any, prefix: str = "") -> list[dict[str, str]]:
    """Flatten `{field: [messages]}` (possibly nested) into RFC 6901 JSON-pointer entries."""
    if not fields:
        return []
    errors: list[dict[str, str]] = []
    if isinstance(fields, dict):
        for key, value in fields.items():
            if key in ("non_field_errors", "__all__"):
                errors += _pointer_errors(value, prefix)
            else:
                token = str(key).replace("~", "~0").replace("/", "~1")
                errors += _pointer_errors(value, f"{prefix}/{token}")
    elif isinstance(fields, list):
        for index, value in enumerate(fields):
            if isinstance(value, (dict, list)):
                errors += _pointer_errors(value, f"{prefix}/{index}" if isinstance(value, dict) else prefix)
            else:
                errors.append({"detail": str(value), "pointer": "#" + prefix})
    else:
        errors.append({"detail": str(fields), "pointer": "#" + prefix})
    return errors


# DRF exception class → (code, message used when DRF's own is not specific enough).
DRF_CODES: list[tuple[type[drf.APIException], str]] = [
    (drf.ParseError, "MALFORMED_REQUEST"),
    (drf.UnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE"),
    (drf.NotAuthenticated, "UNAUTHORIZED"),
    (drf.AuthenticationFailed, "UNAUTHORIZED"),
    (drf.PermissionDenied, "FORBIDDEN"),
    (drf.NotFound, "NOT_FOUND"),
    (drf.MethodNotAllowed, "METHOD_NOT_ALLOWED"),
    (drf.NotAcceptable, "NOT_ACCEPTABLE"),
    (drf.Throttled, "RATE_LIMIT_EXCEEDED"),
]
STATUS_CODES = {
    400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT", 413: "REQUEST_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 422: "UNPROCESSABLE",
    429: "RATE_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR", 502: "EXTERNAL_SERVICE_ERROR", 503: "SERVICE_UNAVAILABLE",
}


def code_for_status(status: int) -> str:
    return STATUS_CODES.get(status, "ERROR")


# Seconds a client is asked to wait when every pooled database connection of this process is taken.
POOL_RETRY_AFTER = 2


def pool_exhausted(exc: BaseException | None) -> bool:
    """The error is a database connection the pool could not hand out in time (load, not a bug)."""
    return isinstance(exc, OperationalError) and isinstance(exc.__cause__, PoolTimeout)


def pool_exhausted_response(request: HttpRequest | None) -> HttpResponse:
    return error_response(
        request, status=503, code="SERVICE_UNAVAILABLE", message="The server is busy; retry shortly",
        details={"retry_after": POOL_RETRY_AFTER}, headers={"Retry-After": str(POOL_RETRY_AFTER)},
    )


def exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse:
    """DRF EXCEPTION_HANDLER: every exception raised in an API view becomes a coded error response."""
    request = context.get("request")
    set_rollback()
    if isinstance(exc, DomainError):
        return error_response(request, status=exc.status, code=exc.code, message=exc.message, details=exc.details)
    if isinstance(exc, RequestDataTooBig):
        # Django's DATA_UPLOAD_MAX_MEMORY_SIZE, met when a view reads a body that BodySizeLimitMiddleware let by.
        return error_response(request, status=413, code="REQUEST_TOO_LARGE", message="The request body is too large")
    if isinstance(exc, (SuspiciousMultipartForm, TooManyFieldsSent, TooManyFilesSent)):
        # Too many form fields or files, a malformed multipart body: the client's input, not our bug.
        return error_response(request, status=400, code="MALFORMED_REQUEST", message=str(exc) or "Malformed request")
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    if pool_exhausted(exc):
        return pool_exhausted_response(request)
    if not isinstance(exc, drf.APIException):
        # A bug, not the client's fault: log it with the traceback, answer in the API's shape (never HTML).
        logger.exception("Unhandled error in %s", getattr(request, "path", "?"))
        return error_response(request, status=500, code="INTERNAL_ERROR", message="Internal server error")
    return error_response(request, **_describe(exc), headers=_headers(exc))


def _describe(exc: drf.APIException) -> dict[str, Any]:
    status = exc.status_code
    if isinstance(exc, drf.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return {
            "status": status,
            "code": getattr(exc, "error_code", "VALIDATION_ERROR"),
            "message": "The request is not valid; see details.fields",
            "details": {"fields": _plain(fields)},
        }
    code = getattr(exc, "error_code", None)
    if code is None:
        code = next((c for cls, c in DRF_CODES if isinstance(exc, cls)), code_for_status(status))
        if code == "UNAUTHORIZED" and status == 403:
            # DRF downgrades 401 to 403 when no authenticator offers a WWW-Authenticate challenge.
            code = "FORBIDDEN"
    details = getattr(exc, "error_details", None)
    if details is None and isinstance(exc, drf.Throttled):
        details = {"retry_after": exc.wait}
    return {"status": status, "code": code, "message": _message(exc.detail), "details": details or {}}


def _message(detail: Any) -> str:
    if isinstance(detail, list):
        return " ".join(_message(d) for d in detail)
    if isinstance(detail, dict):
        return " ".join(_message(d) for d in detail.values())
    return str(detail)


def _plain(detail: Any) -> Any:
    """ErrorDetail trees → plain dicts/lists/strings (the JSON the client sees)."""
    if isinstance(detail, dict):
        return {str(key): _plain(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_plain(value) for value in detail]
    return str(detail)


def _headers(exc: drf.APIException) -> dict[str, str]:
    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    return headers
