"""ASGI entry point for POD Gateway (`gunicorn -c python:pod_gateway.server pod_gateway.asgi:application`).

Django's ASGI handler reads a request's whole body on the event loop before it gives the request to a
thread, so a client sending its body slowly holds only a socket. `BodyDeadline` bounds that read: a body
not complete SERVER_BODY_TIMEOUT_SECONDS after the request started is answered 408 in the API's error
shape and never reaches Django. The data directory is made ready here, as in `pod_gateway.wsgi`.
"""

from __future__ import annotations

import asyncio
import logging
import os

from django.conf import settings
from django.core.asgi import get_asgi_application

from core import datadir, metrics
from pod_gateway.server import refusal_body

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pod_gateway.settings")
os.environ["POD_SERVER_INTERFACE"] = "asgi"  # read by the settings (database connections)
datadir.prepare(*datadir.locate())

logger = logging.getLogger("pod_gateway.request")


class BodyDeadline:
    """ASGI middleware: the request body must have arrived within `timeout` seconds, else 408.

    It also counts the requests in flight (`pod_http_requests_in_flight`), slow ones included.
    """

    def __init__(self, app, *, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        body_done = False

        async def receive_in_time():
            nonlocal body_done
            if body_done:
                return await receive()  # Django listens for the disconnect while the view runs
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                await self._refuse(scope, send)
                # Django's handler stops quietly when the client is gone before its body arrived.
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        metrics.HTTP_REQUESTS_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive_in_time, send)
        finally:
            metrics.HTTP_REQUESTS_IN_FLIGHT.dec()

    async def _refuse(self, scope, send) -> None:
        path = scope.get("raw_path") or scope["path"].encode("latin-1", "replace")
        logger.warning("408 %s %s: the request body did not arrive within %g s", scope["method"],
                       scope["path"][:200], self.timeout)
        if path.startswith(b"/api/"):
            body, content_type, request_id = refusal_body(path, 408, "the request body did not arrive in time")
        else:
            body, content_type, request_id = b"Request Timeout", "text/plain", ""
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        if request_id:
            headers.append((b"x-request-id", request_id.encode()))
        await send({"type": "http.response.start", "status": 408, "headers": headers})
        await send({"type": "http.response.body", "body": body})


application = BodyDeadline(get_asgi_application(), timeout=settings.SERVER_BODY_TIMEOUT_SECONDS)
