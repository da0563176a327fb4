"""The web server's ASGI handler (pod_gateway.asgi.GatewayHandler), driven in process over ASGI.

A request's synchronous work (request_started, middleware and view, request_finished) runs on one
thread of a fixed pool, reused by the next request, so its database connection is too; a synchronous
stream (a file) is read chunk by chunk while it is sent, not read whole first.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest
from asgiref.testing import ApplicationCommunicator

from tests.serving import handler_urls


@pytest.fixture
def handler(settings):
    before = os.environ.get("POD_SERVER_INTERFACE")
    from pod_gateway.asgi import GatewayHandler

    # Importing the ASGI module marks this process as a server; the test run's other processes are not.
    if before is None:
        os.environ.pop("POD_SERVER_INTERFACE", None)
    settings.ROOT_URLCONF = "tests.serving.handler_urls"
    settings.WEB_THREADS = 1
    handler_urls.seen.clear()
    handler_urls.produced.clear()
    handler_urls.request_started.connect(handler_urls.on_started)
    handler_urls.request_finished.connect(handler_urls.on_finished)
    handler = GatewayHandler()
    yield handler
    if handler._pool is not None:
        handler._pool.shutdown()
    handler_urls.request_started.disconnect(handler_urls.on_started)
    handler_urls.request_finished.disconnect(handler_urls.on_finished)


def scope(path: str, root_path: str = "") -> dict:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": root_path + path, "raw_path": (root_path + path).encode(), "query_string": b"",
        "root_path": root_path,
        "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
    }


async def start(handler, path: str, root_path: str = "") -> ApplicationCommunicator:
    communicator = ApplicationCommunicator(handler, scope(path, root_path))
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    return communicator


async def rest_of_body(communicator: ApplicationCommunicator, body: bytes = b"") -> bytes:
    """The body messages up to the last, appended to `body`; then the application's end."""
    while True:
        message = await communicator.receive_output(10)
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    await communicator.wait(10)
    return body


async def whole(communicator: ApplicationCommunicator) -> tuple[int, bytes]:
    start_message = await communicator.receive_output(10)
    return start_message["status"], await rest_of_body(communicator)


def test_a_request_runs_on_one_pool_thread_that_the_next_request_reuses(handler):
    async def two_requests():
        return [await whole(await start(handler, "/thread")) for _ in range(2)]

    answers = asyncio.run(two_requests())
    assert [status for status, _ in answers] == [200, 200]
    kinds = [kind for kind, _ in handler_urls.seen]
    assert kinds == ["started", "view", "finished"] * 2
    threads = {name for _, name in handler_urls.seen}
    # One thread for both requests' signals and views (WEB_THREADS = 1), and not the event loop's.
    assert len(threads) == 1
    assert threads != {threading.current_thread().name}


def test_a_synchronous_stream_is_read_while_it_is_sent_not_whole_first(handler):
    async def stream():
        communicator = await start(handler, "/stream")
        assert (await communicator.receive_output(10))["status"] == 200
        first = await communicator.receive_output(10)
        produced_at_first_chunk = len(handler_urls.produced)
        return produced_at_first_chunk, await rest_of_body(communicator, first["body"])

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Django's handler warns that it reads a synchronous stream whole
        produced_at_first_chunk, body = asyncio.run(stream())
    assert body == handler_urls.CHUNK * handler_urls.CHUNKS
    assert produced_at_first_chunk < handler_urls.CHUNKS
    assert handler_urls.seen[-1][0] == "finished"  # closed once sent


def test_a_stream_is_read_and_closed_in_the_requests_context_after_its_last_chunk(handler):
    async def stream():
        return await whole(await start(handler, "/stream", root_path="/gateway"))

    status, body = asyncio.run(stream())
    assert (status, len(body)) == (200, len(handler_urls.CHUNK) * handler_urls.CHUNKS)
    # The script prefix the request set is the one every chunk is read with (a copy of its context).
    assert {prefix for _, _, prefix in handler_urls.produced} == {"/gateway/"}
    assert [kind for kind, _ in handler_urls.seen] == ["started", "finished"]


def test_a_client_that_goes_stops_the_stream_which_is_still_closed(handler):
    async def leave_after_first_chunk():
        communicator = await start(handler, "/stream")
        assert (await communicator.receive_output(10))["status"] == 200
        await communicator.receive_output(10)
        await communicator.send_input({"type": "http.disconnect"})
        await communicator.wait(10)

    asyncio.run(leave_after_first_chunk())
    assert len(handler_urls.produced) < handler_urls.CHUNKS
    assert handler_urls.seen[-1][0] == "finished"


def test_a_failing_request_finished_receiver_does_not_cost_the_client_its_answer(handler):
    handler_urls.request_finished.connect(handler_urls.failing_finish)
    try:
        status, body = asyncio.run(_whole_plain(handler))
    finally:
        handler_urls.request_finished.disconnect(handler_urls.failing_finish)
    assert (status, body) == (200, b"hello")


async def _whole_plain(handler) -> tuple[int, bytes]:
    return await whole(await start(handler, "/plain"))


def test_the_served_application_is_loaded_whole_and_then_frozen(tmp_path):
    # The web process imports pod_gateway.asgi: its URL patterns (and the views behind them) are loaded
    # before the collector is told to leave what is loaded out of its full passes.
    probe = ("import gc, sys; import pod_gateway.asgi; "
             "print(gc.get_freeze_count() > 0, 'images.api.views' in sys.modules)")
    env = {**os.environ, "DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "pod_gateway.settings"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.split() == ["True", "True"], out.stderr[-2000:]
