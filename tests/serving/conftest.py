"""A real `python -m pod_gateway.runner dev|serve` on a loopback port, with a data directory of its own.

The gateway is started as an operator starts it: a fresh DATA_DIR (metrics, static files, key), the
database migrated and the admin created by the runner, gunicorn and a task worker as its children. Its
database is its own SQLite file, or (`database=True`, for tests marked transactional) the test run's
database and Redis, so the same test runs on SQLite and on PostgreSQL + Redis.

Tests of the server alone (sockets, exit statuses) do not depend on the database: they run in the
SQLite pass only (`SERVER_ONLY`), which keeps the PostgreSQL pass short.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.servers import database_url

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 120.0
SERVER_ONLY = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")),
    reason="server behaviour only (the gateway runs on its own SQLite file): tested in the SQLite pass",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children_of(pid: int) -> list[int]:
    """Direct children of `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The command name is in parentheses and may hold spaces: the parent pid follows the last ")".
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def command_line(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class Gateway:
    """One runner process and what it started."""

    def __init__(
        self, data_dir: Path, mode: str = "dev", env: dict[str, str] | None = None, *, database: bool = False
    ) -> None:
        self.data_dir = data_dir
        self.mode = mode
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / f"runner-{self.port}.log"
        self.env = {
            key: value for key, value in os.environ.items()
            if key not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "PROMETHEUS_MULTIPROC_DIR", "DEBUG"}
        }
        self.env.update({
            "DATA_DIR": str(data_dir),
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "POD_ADMIN_PASSWORD": "correct-horse-battery",
            "PYTHONUNBUFFERED": "1",
            "WORKER_HEARTBEAT_SECONDS": "0.5",
            **(env or {}),
        })
        if database:
            self.env["DATABASE_URL"] = database_url()
            self.env["REDIS_URL"] = os.environ.get("REDIS_URL", "")
        self.process: subprocess.Popen | None = None

    def start(self) -> Gateway:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pod_gateway.runner", self.mode],
                cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the runner exited with {self.process.returncode}\n{self.output()}")
            try:
                if requests.get(self.url + "/api/health", timeout=2).status_code == 200 and self.worker_pid():
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"the gateway did not come up in {START_TIMEOUT:g} s\n{self.output()}")

    def web_pid(self) -> int | None:
        return next((pid for pid in children_of(self.process.pid) if "gunicorn" in command_line(pid)), None)

    def worker_pid(self) -> int | None:
        return next((pid for pid in children_of(self.process.pid) if "db_worker" in command_line(pid)), None)

    def web_worker_pids(self) -> list[int]:
        master = self.web_pid()
        return children_of(master) if master else []

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the runner still runs after {timeout:g} s\n{self.output()[-5000:]}") from None

    def stop(self) -> None:
        """End the runner and everything it started (the test's own clean-up, not the behaviour under test)."""
        if self.process is None:
            return
        pids = [*children_of(self.process.pid)]
        for pid in list(pids):
            pids.extend(children_of(pid))
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=45)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def gateway(tmp_path):
    """Start a gateway (`gateway(mode="serve", env={...})`); every one started is stopped at the end."""
    started: list[Gateway] = []

    def start(
        mode: str = "dev", env: dict[str, str] | None = None, data_dir: Path | None = None, database: bool = False
    ) -> Gateway:
        instance = Gateway(data_dir or tmp_path / "data", mode, env, database=database)
        started.append(instance)
        return instance.start()

    yield start
    for instance in started:
        instance.stop()
