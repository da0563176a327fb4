"""Request ids and the access log, API request metrics, and the rate-limit headers.

Order in MIDDLEWARE: `RequestIdMiddleware` first (every response, CORS preflights and errors included,
carries the id, and every log line of the request has it), then `ApiMetricsMiddleware`; the rate-limit
headers and idempotency sit after authentication.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound

from api.exceptions import error_response
from api.parsers import PARSED_ATTR, MalformedBody, is_json_body, json_body_load, request_json_body
from core import metrics
from core.logging import bind_request_id, redact, unbind_request_id

logger = logging.getLogger("pod_gateway.request")

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:+=/@-]{1,128}$")
BODY_LOG_LIMIT = 10 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def accepted_request_id(value: str | None) -> str:
    """The client's `X-Request-ID` when it is 1-128 safe characters, else a new random one."""
    if value and REQUEST_ID_RE.match(value):
        return value
    return uuid.uuid4().hex


def _loggable_body(request: HttpRequest):
    """The JSON body, redacted, when it is small enough to log; None otherwise. Never raises.

    Read after the response: under /api/ the body was parsed once by `JsonBodyMiddleware` and that
    value is used; elsewhere a small JSON body (already read by its view, or read now: under 10 KB) is
    parsed with the same bounded loader. Whatever goes wrong, the line is logged without the body.
    """
    try:
        if request.method not in BODY_METHODS or request.content_type != "application/json":
            return None
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if not 0 < length < BODY_LOG_LIMIT:
            return None
        if hasattr(request, PARSED_ATTR):
            return redact(getattr(request, PARSED_ATTR))
        return redact(json_body_load(request.body[:BODY_LOG_LIMIT]))
    except MalformedBody:
        return "<not valid JSON>"
    except Exception:  # a body the view consumed as a stream, a bad Content-Length: log the line without it
        return None


class RequestIdMiddleware:
    """Accepts or makes the request id, exposes it (`request.request_id`, logs, response) and logs the request."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = accepted_request_id(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = request_id
        token = bind_request_id(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            duration_ms = (time.perf_counter() - started) * 1000
            response["X-Request-ID"] = request_id
            # The server's own time for the request (W3C Server-Timing), as the log line reports it.
            response["Server-Timing"] = f"app;dur={duration_ms:.2f}"
            self._log(request, response, duration_ms, _loggable_body(request))
            return response
        finally:
            unbind_request_id(token)

    @staticmethod
    def _log(request: HttpRequest, response: HttpResponse, duration_ms: float, body) -> None:
        status = response.status_code
        message = f"{status} {request.method} {request.get_full_path()} ({duration_ms:.1f} ms)"
        extra = {"status": status, "method": request.method, "path": request.path, "duration_ms": round(duration_ms, 1)}
        if body is not None:
            message += " body=" + json.dumps(body, ensure_ascii=False, default=str)
            extra["body"] = body
        logger.log(logging.ERROR if status >= 500 else logging.INFO, message, extra=extra)


# A URL pattern as a metric label: `(?P<pk>[^/.]+)` → `{pk}`, regex anchors and escapes dropped.
_GROUP_RE = re.compile(r"\(\?P<(\w+)>[^)]*\)")
_CONVERTER_RE = re.compile(r"<(?:\w+:)?(\w+)>")


def endpoint_label(request: HttpRequest) -> str:
    """The matched URL route (bounded cardinality), not the raw path with its ids."""
    match = getattr(request, "resolver_match", None)
    if match is None or not match.route:
        return "<unmatched>"
    route = _GROUP_RE.sub(r"{\1}", match.route)
    route = _CONVERTER_RE.sub(r"{\1}", route)
    route = route.replace("^", "").replace("$", "").replace("\\", "").replace("/?", "")
    return "/" + route.lstrip("/")


class ApiMetricsMiddleware:
    """Counts and times every request under /api/ by method, route pattern and status."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        endpoint = endpoint_label(request)
        metrics.API_REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        metrics.API_REQUEST_DURATION.labels(request.method, endpoint).observe(time.perf_counter() - started)
        return response


class RateLimitHeadersMiddleware:
    """Adds the rate-limit headers decided by `api.throttling.TierRateThrottle` to the response."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        decision = getattr(request, "rate_limit", None)
        if decision is not None:
            for name, value in decision.headers().items():
                response[name] = value
        return response


# JSON bodies of this API are small (500 ids, a 2000-character prompt, a template); 1 MiB is generous.
JSON_BODY_MAX_BYTES = 1024 * 1024
# A multipart upload is the image plus a prompt field and the part headers.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def body_limit(request: HttpRequest) -> int:
    """The largest body a request under /api/ may declare: an image upload's cap for multipart, else JSON's."""
    if request.content_type == "multipart/form-data":
        return settings.IMAGE_MAX_BYTES + MULTIPART_OVERHEAD_BYTES
    return JSON_BODY_MAX_BYTES


class BodySizeLimitMiddleware:
    """Refuses an over-large body under /api/ from its Content-Length, before anything reads or spools it.

    Django's own DATA_UPLOAD_MAX_MEMORY_SIZE check only fires once a view reads the body (and then as an
    exception), and uploaded files are not counted by it at all: a 2 GB upload would be streamed to a
    temporary file before intake could refuse it.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0  # Django reads such a body as empty
            limit = body_limit(request)
            if length > limit:
                return error_response(
                    request,
                    status=413,
                    code="REQUEST_TOO_LARGE",
                    message=f"The request body is {length} bytes, over the limit of {limit} bytes for this request",
                    details={"content_length": length, "limit": limit},
                )
        return self.get_response(request)


class JsonBodyMiddleware:
    """Parses every JSON body under /api/ once, with `api.parsers`; a malformed one is 400 MALFORMED_REQUEST.

    Before authentication, CSRF, idempotency and the views: whichever path and whoever sends it, a
    body that is not UTF-8 JSON nested at most MAX_DEPTH levels is refused here, and nothing after
    this reads it again (DRF's parser, the access log and the idempotency fingerprint use the result).
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/") and request.method in BODY_METHODS and is_json_body(request):
            try:
                request_json_body(request)
            except RequestDataTooBig:
                # DATA_UPLOAD_MAX_MEMORY_SIZE below BodySizeLimitMiddleware's limit: Django's own check.
                return error_response(
                    request, status=413, code="REQUEST_TOO_LARGE", message="The request body is too large"
                )
            except MalformedBody as exc:
                return error_response(request, status=400, code="MALFORMED_REQUEST", message=str(exc))
        return self.get_response(request)


class NulPathMiddleware:
    """Answers 404 for a path holding a NUL byte, which no id or route contains.

    PostgreSQL refuses NUL in text, so looking such an id up (`/api/v1/images/a%00b`, an admin change
    page) would raise DataError and answer 500 instead of not found.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" not in request.path:
            return self.get_response(request)
        if request.path.startswith("/api/"):
            return error_response(request, status=404, code="NOT_FOUND", message="Not found")
        return HttpResponseNotFound("Not found", content_type="text/plain")
