"""Slow, stalled and malformed clients against a real `make run` (raw sockets, bounded in time)."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import requests

from tests.serving.conftest import SERVER_ONLY, Gateway

# Every wait here is bounded: a socket read gives up after this long, a request after REQUEST_TIMEOUT.
SOCKET_TIMEOUT = 20.0
REQUEST_TIMEOUT = 15.0

pytestmark = SERVER_ONLY


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    """`make run` with the default timeouts: slow clients stay connected for the whole test."""
    instance = Gateway(tmp_path_factory.mktemp("dev"), "dev").start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    """`make run` with short header and body deadlines."""
    instance = Gateway(tmp_path_factory.mktemp("strict"), "dev", env={
        "SERVER_HEADER_TIMEOUT_SECONDS": "1.5", "SERVER_BODY_TIMEOUT_SECONDS": "2",
    }).start()
    yield instance
    instance.stop()


def connect(gateway: Gateway) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=SOCKET_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Everything until the server closes the connection, as (status, headers, body)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


class Dribblers:
    """Sockets that send a request head or body a byte at a time, or nothing at all, until stopped."""

    def __init__(self, gateway: Gateway, count: int) -> None:
        self.gateway = gateway
        self.sockets: list[tuple[socket.socket, bytes]] = []
        for n in range(count):
            sock = connect(gateway)
            kind = n % 3
            if kind == 0:  # headers complete, the body never does
                sock.sendall(b"POST /api/v1/generate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
                drip = b" "
            elif kind == 1:  # the headers never end
                sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                drip = b"a"
            else:  # connected, silent
                drip = b""
            self.sockets.append((sock, drip))
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._drip, daemon=True)

    def _drip(self) -> None:
        while not self._halt.wait(0.2):
            for sock, drip in self.sockets:
                if drip:
                    try:
                        sock.send(drip)
                    except OSError:
                        pass

    def __enter__(self) -> Dribblers:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._halt.set()
        self._thread.join(timeout=5)
        for sock, _ in self.sockets:
            sock.close()

    def open_count(self) -> int:
        """How many of the sockets the server still holds open (a closed one reads as EOF)."""
        still = 0
        for sock, _ in self.sockets:
            sock.setblocking(False)
            try:
                still += sock.recv(1, socket.MSG_PEEK) != b""
            except BlockingIOError:
                still += 1
            except OSError:
                pass
            finally:
                sock.settimeout(SOCKET_TIMEOUT)
        return still


def test_health_and_admin_answer_while_many_sockets_dribble_or_stall(dev):
    with Dribblers(dev, 45) as dribblers:
        time.sleep(1.0)  # every slow request is under way
        for _ in range(10):
            assert requests.get(dev.url + "/api/health", timeout=REQUEST_TIMEOUT).json() == {"status": "ok"}
        login = requests.get(dev.url + "/admin/login/", timeout=REQUEST_TIMEOUT)
        assert login.status_code == 200 and "csrfmiddlewaretoken" in login.text
        # A real API request with a body goes through too.
        answer = requests.post(dev.url + "/api/v1/generate", json={"prompt": "retro sunset cat"},
                               timeout=REQUEST_TIMEOUT)
        assert answer.status_code == 401 and answer.json()["code"] == "UNAUTHORIZED"
        # The slow clients were all still connected while this was answered (one worker process, `make run`).
        assert dribblers.open_count() == 45


def test_headers_that_never_end_are_cut_off_at_the_header_deadline(strict):
    sock = connect(strict)
    sock.sendall(b"GET /api/v1/images HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    halt = threading.Event()

    def drip() -> None:  # a byte every 0.1 s: never idle, never complete
        while not halt.wait(0.1):
            try:
                sock.send(b"a")
            except OSError:
                return

    threading.Thread(target=drip, daemon=True).start()
    try:
        status, headers, body = read_response(sock)
    finally:
        halt.set()
        sock.close()
    assert status == 408
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["code"] == "REQUEST_TIMEOUT"


def test_a_body_that_stalls_is_answered_408_at_the_body_deadline(strict):
    shapes = (("/api/v1/generate", "application/json"), ("/api/v2/generate", "application/problem+json"))
    for path, content_type in shapes:
        sock = connect(strict)
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: 100\r\n\r\n{\"prompt\": ".encode())
        try:
            status, headers, body = read_response(sock)
        finally:
            sock.close()
        assert status == 408, body
        assert headers["content-type"] == content_type
        assert json.loads(body)["code"] == "REQUEST_TIMEOUT"
    # Nothing of the stalled requests reached the application: its access log never saw them.
    assert "POST /api/v1/generate (" not in strict.output()


def raw(gateway: Gateway, request: bytes) -> tuple[int, dict[str, str], dict]:
    sock = connect(gateway)
    try:
        sock.sendall(request)
        status, headers, body = read_response(sock)
    finally:
        sock.close()
    return status, headers, json.loads(body)


def test_server_level_refusals_under_api_are_json_in_the_versions_shape(dev):
    long_url = b"/api/v1/images?search=" + b"a" * 5000
    status, headers, body = raw(dev, b"GET " + long_url + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert status == 414 and headers["content-type"] == "application/json"
    assert body["code"] == "REQUEST_TOO_LARGE" and set(body) == {"error", "code", "details", "request_id"}
    assert headers["x-request-id"] == body["request_id"]

    big_header = b"X-Big: " + b"b" * 9 * 1024
    status, headers, body = raw(dev, b"GET /api/v2/images HTTP/1.1\r\nHost: 127.0.0.1\r\n" + big_header + b"\r\n\r\n")
    assert status == 431 and headers["content-type"] == "application/problem+json"
    assert body["code"] == "REQUEST_TOO_LARGE" and body["status"] == 431 and body["instance"] == "/api/v2/images"

    status, headers, body = raw(
        dev, b"POST /api/v1/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n"
    )
    assert status == 400 and headers["content-type"] == "application/json"
    assert body["code"] == "MALFORMED_REQUEST"


def test_refusals_outside_the_api_stay_plain(dev):
    sock = connect(dev)
    try:
        sock.sendall(b"GET /admin/" + b"a" * 5000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, headers, _ = read_response(sock)
    finally:
        sock.close()
    assert status == 414 and headers["content-type"].startswith("text/plain")


def test_a_bad_host_header_is_one_warning_line_without_a_traceback(dev):
    before = dev.output()
    answer = requests.get(dev.url + "/api/v1/images", headers={"Host": "evil.example"}, timeout=REQUEST_TIMEOUT)
    assert answer.status_code == 400 and answer.json()["code"]
    time.sleep(0.5)  # the log line is written after the response
    new = dev.output()[len(before):]
    mentions = [line for line in new.splitlines() if "evil.example" in line]
    assert len(mentions) == 1 and " WARNING " in mentions[0], new
    assert "Traceback" not in new
