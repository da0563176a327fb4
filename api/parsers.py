"""The one JSON body parser of the API: every malformed body is the client's error, never a 500.

`json_body_load` turns the raw bytes into a value or raises `MalformedBody` saying why: not UTF-8, a
charset other than UTF-8, not JSON, NaN/Infinity, numbers too long to read, nesting deeper than
`MAX_DEPTH` (a small deeply nested document would otherwise exhaust the recursion limit in the decoder,
in the log redaction or in DRF's serializers). `JsonBodyMiddleware` applies it to every JSON body under
/api/ before anything else reads it (anonymous requests and paths without a view too) and keeps the
result on the request; `JsonBodyParser`, DRF's parser, hands that result to the views, and the access
log redacts it instead of parsing the body again.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer

# The API's deepest body is two levels (a template's tags); 32 leaves room and bounds every walk of it.
MAX_DEPTH = 32
JSON_MEDIA_TYPE = "application/json"
# The attribute of the Django request holding the parsed body (absent: not a JSON body, or not parsed).
PARSED_ATTR = "pod_json_body"
_UTF8 = frozenset({"utf-8", "utf8"})


class MalformedBody(ValueError):
    """A body that is not a JSON document this API reads; the message says why."""


def _refuse_constant(name: str) -> Any:
    raise MalformedBody(f"{name} is not a JSON number")


def _depth_exceeds(value: Any, limit: int) -> bool:
    # Iterative, so a deep document cannot exhaust the stack here either.
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def json_body_load(raw: bytes, *, charset: str | None = None) -> Any:
    """The JSON value in `raw`, or `MalformedBody` naming what is wrong with it."""
    if charset and charset.lower() not in _UTF8:
        raise MalformedBody(f"JSON bodies are UTF-8; charset {charset!r} is not supported")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"The body is not valid UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise MalformedBody(f"The JSON document is nested deeper than {MAX_DEPTH} levels") from None
    except MalformedBody:
        raise
    except ValueError as exc:  # JSONDecodeError, and integers longer than Python reads (4300 digits)
        raise MalformedBody(f"The body is not valid JSON: {exc}") from None
    # Only a document with more brackets than the limit can be deeper than it: most need no walk.
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _depth_exceeds(value, MAX_DEPTH):
        raise MalformedBody(f"The JSON document is nested deeper than {MAX_DEPTH} levels")
    return value


def request_json_body(request: HttpRequest) -> Any:
    """The body of a JSON request, parsed by `json_body_load` (MalformedBody if it is not readable)."""
    if hasattr(request, PARSED_ATTR):
        return getattr(request, PARSED_ATTR)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise MalformedBody("Content-Length is not a number") from None
    if declared < 0:
        raise MalformedBody("Content-Length is negative")
    raw = request.body
    if len(raw) < declared:
        raise MalformedBody(f"The body ended after {len(raw)} of the {declared} bytes Content-Length declared")
    value = json_body_load(raw, charset=request.content_params.get("charset"))
    setattr(request, PARSED_ATTR, value)
    return value


def is_json_body(request: HttpRequest) -> bool:
    """A request that declares a non-empty JSON body (the only bodies `JsonBodyMiddleware` reads)."""
    return request.content_type == JSON_MEDIA_TYPE and request.META.get("CONTENT_LENGTH") not in (None, "", "0")


class JsonBodyParser(BaseParser):
    """DRF's JSON parser for every API view: the body as `JsonBodyMiddleware` parsed it (or parses it now)."""

    media_type = JSON_MEDIA_TYPE
    renderer_class = JSONRenderer

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        request = (parser_context or {})["request"]._request
        try:
            return request_json_body(request)
        except MalformedBody as exc:
            raise ParseError(str(exc)) from None
