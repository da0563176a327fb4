"""A webhook receiver on 127.0.0.1 that records the raw requests and answers as each test scripts it.

Paths choose the behaviour: `/ok` answers 204, `/status/<code>` that status (with `Retry-After` from
`?retry_after=`), `/redirect` a 302 to `/ok`, `/slow/<ms>` 200 after a pause, `/hang` holds the
request until the test releases it (or the server stops). `script(path, [codes…])` makes a path
answer those codes in turn, then 204.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.servers import JSONHandler, StandInServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), "")


class ReceiverHandler(JSONHandler):
    server: ReceiverServer

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        received = Received(path=parts.path, headers=dict(self.headers.items()), body=body)
        with self.server.lock:
            self.server.received.append(received)
            scripted = self.server.scripts.get(parts.path)
            code = scripted.pop(0) if scripted else None
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/hang":
            self.server.release.wait(timeout=60)
            code = code or 200
        elif parts.path.startswith("/slow/"):
            time.sleep(int(parts.path.rsplit("/", 1)[1]) / 1000)
        elif parts.path.startswith("/status/") and code is None:
            code = int(parts.path.rsplit("/", 1)[1])
        elif parts.path == "/redirect" and code is None:
            self._answer(302, b"", {"Location": "/ok"})
            return
        code = code or (200 if parts.path.startswith("/slow/") else 204)
        headers = {"Retry-After": query["retry_after"]} if "retry_after" in query else {}
        self._answer(code, self.server.reply_body if code != 204 else b"", headers)

    def _answer(self, code: int, body: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(code)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the gateway gave up (timeout) before the answer


class ReceiverServer(StandInServer):
    def __init__(self) -> None:
        super().__init__(ReceiverHandler)
        self.received: list[Received] = []
        self.scripts: dict[str, list[int]] = {}
        self.release = threading.Event()
        self.reply_body = b'{"ok": true}'

    def script(self, path: str, codes: list[int]) -> None:
        with self.lock:
            self.scripts[path] = list(codes)

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def stop(self) -> None:
        self.release.set()
        super().stop()

    def url_for(self, path: str, **query: Any) -> str:
        suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
        return f"{self.url}{path}{suffix}"
