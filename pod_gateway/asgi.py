"""ASGI entry point for POD Gateway (`gunicorn -c python:pod_gateway.server pod_gateway.asgi:application`).

The handler (`GatewayHandler`) reads a request's whole body on the event loop before it gives the
request to a thread, so a client sending its body slowly holds only a socket. `BodyDeadline` bounds that
read: a body not complete SERVER_BODY_TIMEOUT_SECONDS after the request started is answered 408 in the
API's error shape and never reaches Django. The data directory is made ready here, as in
`pod_gateway.wsgi`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import gc
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from importlib import import_module

import django
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.db import close_old_connections
from django.http import FileResponse
from django.urls import set_script_prefix

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


class GatewayHandler(ASGIHandler):
    """Django's ASGI handler with each request's synchronous work done in one hand-over to a thread.

    Django's own handler crosses between the event loop and a new thread of the request's several
    times (request_started, into the middleware, back out to the loop for the handler inside them, into
    the view, and response.close()), and every crossing wakes the other side; on this gateway, whose
    middleware and views are all synchronous, that cost more than `/api/health` itself. Here the body is
    read on the loop as Django does, then one thread of a fixed pool (WEB_THREADS) runs request_started,
    the middleware and the view as under WSGI and, for a response that is not streamed, its close()
    (request_finished); the loop sends the response. The pool's threads live as long as the process, so
    their database connections persist between requests (CONN_MAX_AGE) as under a threaded WSGI server.

    A streamed response (a file) is sent chunk by chunk, each chunk read in the pool with the request's
    context and its close() run the same way once it is sent, or once the client has gone: Django's
    handler would read a synchronous stream whole into memory first. The view's thread hands its database
    connection back before the stream is read, so a slow download holds a socket, not a connection; the
    stream's own reads should therefore not hold thread-bound state (a cursor, a transaction).

    A client that disconnects is noticed as under Django's handler and nothing more is sent; the view
    itself runs to its end (a synchronous view cannot be stopped, under Django's handler neither) and its
    response is closed.
    """

    def __init__(self) -> None:
        # Not ASGIHandler.__init__: the middleware chain is loaded synchronous, as WSGIHandler loads it.
        self.load_middleware(is_async=False)
        self._pool: ThreadPoolExecutor | None = None

    def _threads(self) -> ThreadPoolExecutor:
        # Made on the first request: gunicorn forks its workers after importing this module.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=settings.WEB_THREADS, thread_name_prefix="pod-web")
        return self._pool

    def _submit(self, context: contextvars.Context, function, *args) -> concurrent.futures.Future:
        return self._threads().submit(context.run, function, *args)

    async def handle(self, scope, receive, send) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            work = self._submit(contextvars.copy_context(), self._respond, scope, body_file)
            try:
                response, context = await asyncio.shield(asyncio.wrap_future(work))
            except asyncio.CancelledError:
                # The server gave up on the request (its client went); the view still ends in its thread.
                work.add_done_callback(self._close_when_done)
                raise
            stream = response.streaming_content if response.streaming and not response.is_async else None
            pending: list[concurrent.futures.Future] = []
            if stream is not None:
                response.streaming_content = self._pulled(stream, context, pending)
            try:
                await self._send_unless_gone(response, receive, send)
            finally:
                if response.streaming:
                    await self._closed(response, context, pending)
        finally:
            body_file.close()

    def _respond(self, scope, body_file):
        """request_started, the request, the middleware and the view; a response that is not streamed
        is closed here too (request_finished), its content being complete. Returns the response and the
        request's context, in which a stream is read and closed."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
            response._handler_class = self.__class__
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size  # as Django's handler: the server chunks it
        if not response.streaming:
            try:
                response.close()
            except Exception:
                # The answer is complete: a failing request_finished receiver is logged, not sent instead.
                logger.exception("Closing the response of %s %s failed", scope["method"], scope["path"][:200])
        else:
            close_old_connections()  # the stream is read on other threads, after this one has moved on
        return response, contextvars.copy_context()

    async def _send_unless_gone(self, response, receive, send) -> None:
        sending = asyncio.create_task(self.send_response(response, send))
        listening = asyncio.create_task(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait({sending, listening}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sending, listening):
                task.cancel()
            results = await asyncio.gather(sending, listening, return_exceptions=True)
        if isinstance(results[0], Exception):
            raise results[0]

    async def _pulled(self, chunks, context: contextvars.Context, pending: list[concurrent.futures.Future]):
        chunks = iter(chunks)
        while True:
            pending[:] = [self._submit(context, next, chunks, None)]
            chunk = await asyncio.wrap_future(pending[0])
            if chunk is None:
                return
            yield chunk

    async def _closed(self, response, context: contextvars.Context, pending: list[concurrent.futures.Future]) -> None:
        # A chunk still being read (the send was cancelled meanwhile) is waited for: the stream is closed
        # after it, never while its iterator runs.
        for future in pending:
            await asyncio.gather(asyncio.wrap_future(future), return_exceptions=True)
        await asyncio.wrap_future(self._submit(context, response.close))

    def _close_when_done(self, work: concurrent.futures.Future) -> None:
        if work.cancelled() or work.exception() is not None:
            return
        response, context = work.result()
        if response.streaming:
            self._submit(context, response.close)


django.setup(set_prefix=False)
application = BodyDeadline(GatewayHandler(), timeout=settings.SERVER_BODY_TIMEOUT_SECONDS)
# What the process loaded (modules, the URL patterns and the views, serializers and admin they import,
# settings) lives as long as it does: frozen, the garbage collector's full passes skip it instead of walking
# it again every few thousand requests (a 50-image list page ~4 % faster in process).
import_module(settings.ROOT_URLCONF)
gc.freeze()
