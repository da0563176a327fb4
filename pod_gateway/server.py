"""The web server: gunicorn with its asyncio ASGI worker, configured for facing slow and hostile clients.

`make run` and `make serve` start `gunicorn -c python:pod_gateway.server pod_gateway.asgi:application`.
On gunicorn's asyncio worker a connection is a socket and a coroutine: a client that dribbles its headers
or body, or stalls, costs no thread, and Django's ASGI handler reads the whole body before it dispatches
(the body deadline is in `pod_gateway.asgi`). gunicorn stays the process manager: a dead web worker is
replaced, SIGTERM drains the accepted requests, and its `child_exit` hook tells prometheus_client's
multiprocess mode that the worker is gone.

gunicorn's ASGI worker answers malformed requests itself, before any application code runs, and bounds
the wait for headers only between requests on a kept-alive connection. `GatewayProtocol` adds the two
things it lacks: a deadline for the first request's headers, and refusals under /api/ in the API's JSON
error shapes (v1 envelope, v2 problem document) instead of text/plain. This module is imported by
gunicorn's master before Django is set up, so those shapes are written out here rather than taken from
`api.exceptions`.

Module-level names that are gunicorn settings (`worker_class`, `child_exit`) are read by gunicorn as
its configuration; nothing else here is named like a setting.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from http import HTTPStatus

from gunicorn.asgi.protocol import _REASON_PHRASES, ASGIProtocol
from gunicorn.workers import gasgi

from core import datadir

# gunicorn imports this module in its master, before any worker exists and before Django: the data
# directory is made ready here, and the metrics directory named in the environment the way the settings
# name it, so that every worker (forked from the master) shares it from its first sample on.
DATA_DIR, METRICS_DIR = datadir.locate()
datadir.prepare(DATA_DIR, METRICS_DIR)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)

# The v1 envelope and the v2 problem document, as api.exceptions makes them (it needs Django).
PROBLEM_TYPE_BASE = "urn:pod-gateway:problem:"
V2_PATH = re.compile(rb"^/api/v2(/|\?|$)")
API_PATH = re.compile(rb"^/api(/|\?|$)")
REFUSAL_CODES = {400: "MALFORMED_REQUEST", 408: "REQUEST_TIMEOUT", 413: "REQUEST_TOO_LARGE",
                 414: "REQUEST_TOO_LARGE", 431: "REQUEST_TOO_LARGE"}
# What the refusal says: gunicorn's parser messages are short and describe the request's defect.
MESSAGE_LIMIT = 200


def header_timeout() -> float:
    """SERVER_HEADER_TIMEOUT_SECONDS, passed to the workers by the runner (settings read it and check it)."""
    return float(os.environ.get("SERVER_HEADER_TIMEOUT_SECONDS") or 10)


def reason_phrase(status: int) -> str:
    return _REASON_PHRASES.get(status) or HTTPStatus(status).phrase


def refusal_body(path: bytes | None, status: int, message: str) -> tuple[bytes, str, str]:
    """(body, content type, request id) of a server-level refusal of a request for `path`."""
    reason = reason_phrase(status)
    code = REFUSAL_CODES.get(status, "MALFORMED_REQUEST")
    request_id = uuid.uuid4().hex
    detail = f"{reason}: {message[:MESSAGE_LIMIT]}" if message else reason
    if path is not None and V2_PATH.match(path):
        body = {
            "type": PROBLEM_TYPE_BASE + code.lower().replace("_", "-"),
            "title": reason,
            "status": status,
            "detail": detail,
            "instance": path.split(b"?", 1)[0][:MESSAGE_LIMIT].decode("latin-1"),
            "code": code,
            "request_id": request_id,
            "errors": [],
        }
        return json.dumps(body).encode(), "application/problem+json", request_id
    body = {"error": detail, "code": code, "details": {}, "request_id": request_id}
    return json.dumps(body).encode(), "application/json", request_id


class GatewayProtocol(ASGIProtocol):
    """gunicorn's HTTP/1 protocol with a header deadline and JSON refusals under /api/."""

    _header_deadline = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if self._callback_parser is not None:  # HTTP/1 (not HTTP/2, not uWSGI)
            self._header_deadline = self.worker.loop.call_later(header_timeout(), self._headers_too_slow)

    def _on_headers_complete(self):
        # Later requests on this connection are bounded by gunicorn's keep-alive timer instead.
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None
        return super()._on_headers_complete()

    def connection_lost(self, exc) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None
        super().connection_lost(exc)

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self._closed or self._current_request is not None:
            return
        self.log.info("Closing a connection whose request headers took over %g s", header_timeout())
        self._send_error_response(408, "the request headers did not arrive in time")
        self._close_transport()

    def _refused_path(self) -> bytes | None:
        """The path of the request being refused, as far as it was read (None: not an API request)."""
        if self._current_request is not None:
            path = self._current_request.path
            return path.encode("latin-1") if isinstance(path, str) else path
        parser = self._callback_parser
        path = getattr(parser, "path", None)
        if path is None and parser is not None:
            # The request line itself is being refused (too long, say): peek at its start.
            head = bytes(getattr(parser, "_buffer", b"")[:64])
            parts = head.split(b" ", 2)
            path = parts[1] if len(parts) > 1 else None
        return path

    def _send_error_response(self, status, message, extra_headers=()):
        path = self._refused_path()
        if path is None or not API_PATH.match(path):
            return super()._send_error_response(status, message, extra_headers)
        body, content_type, request_id = refusal_body(path, status, str(message))
        reason = reason_phrase(status)
        extra = "".join(f"{name}: {value}\r\n" for name, value in extra_headers)
        head = (
            f"HTTP/1.1 {status} {reason}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"X-Request-ID: {request_id}\r\n"
            f"{extra}"
            "Connection: close\r\n"
            "\r\n"
        )
        self._safe_write(head.encode("latin-1") + body)


class GatewayWorker(gasgi.ASGIWorker):
    """gunicorn's ASGI worker serving connections with `GatewayProtocol`."""


# gunicorn's worker builds its protocol by this module-level name, and offers no setting for it.
gasgi.ASGIProtocol = GatewayProtocol


# --- gunicorn settings ---------------------------------------------------------------------------

worker_class = "pod_gateway.server.GatewayWorker"


def child_exit(server, worker) -> None:
    """A web worker is gone: drop its live gauges, as prometheus_client's multiprocess mode asks.

    Its counters and histograms stay in their files and are still summed: a count never goes back.
    """
    # Imported here, not at the top: prometheus_client fixes its mode when first imported, so the
    # import must follow the environment set above.
    from prometheus_client import multiprocess  # noqa: PLC0415

    multiprocess.mark_process_dead(worker.pid, str(METRICS_DIR))
