"""Stand-ins for remote services (real HTTP servers on 127.0.0.1) and a real task-worker process."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from django.conf import settings
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


class StandInServer(ThreadingHTTPServer):
    """A threaded HTTP server on a free loopback port; `state` is shared with its handler."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> StandInServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def paths(self, method: str | None = None) -> list[str]:
        with self.lock:
            return [path for m, path, _ in self.requests if method in (None, m)]


class JSONHandler(BaseHTTPRequestHandler):
    server: StandInServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass

    def _record(self) -> None:
        with self.server.lock:
            self.server.requests.append((self.command, self.path, dict(self.headers.items())))

    def read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else None

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def send_bytes(self, body: bytes, content_type: str = "image/png") -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def picture(width: int, height: int, seed: int) -> bytes:
    """A small distinct PNG standing for a generated picture."""
    buffer = io.BytesIO()
    colour = (seed * 37 % 256, seed * 91 % 256, seed * 53 % 256)
    Image.new("RGB", (width, height), colour).save(buffer, "PNG", dpi=(300, 300))
    return buffer.getvalue()


def graph_output_size(graph: dict[str, Any]) -> tuple[int, int, int]:
    """(width, height, seed) asked for by a Flux graph: the final scale node and the sampler."""
    scale = next(node["inputs"] for node in graph.values() if node["class_type"] == "ImageScale")
    sampler = next(node["inputs"] for node in graph.values() if node["class_type"] == "KSampler")
    return int(scale["width"]), int(scale["height"]), int(sampler["seed"])


def database_url() -> str:
    """A DATABASE_URL for the database the running test uses (so a subprocess shares it)."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class WorkerProcess:
    """A real `manage.py db_worker` process on the test database and media directory."""

    def __init__(self, *, data_dir: Path, env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "DATA_DIR": str(data_dir),
            "GENERATION_POLL_SECONDS": "0.1",
            "WORKER_HEARTBEAT_SECONDS": "0.2",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.log = log or data_dir / "worker.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay", "--interval", "0.1",
             "--queue-name", "*"],
            cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT,
        )
        handle.close()
        return self

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float = 20) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
