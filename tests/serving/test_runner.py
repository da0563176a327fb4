"""The runner's exit status: 0 after a requested stop, 1 when a child dies on its own."""

from __future__ import annotations

import os
import signal
import socket

from tests.serving.conftest import SERVER_ONLY

# Stopping takes the graceful times (the defaults are 30 s; the gateways here use less) plus start-up.
STOP_BOUND = 40.0

pytestmark = SERVER_ONLY


def port_closed(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_sigterm_stops_make_run_with_status_0(gateway):
    # `make serve` under SIGTERM, with requests and a task in flight: test_graceful_stop.py.
    running = gateway("dev", env={"SERVER_GRACEFUL_TIMEOUT_SECONDS": "5", "WORKER_STOP_GRACE_SECONDS": "5"})
    web, worker = running.web_pid(), running.worker_pid()
    running.signal(signal.SIGTERM)
    assert running.wait(STOP_BOUND) == 0, running.output()[-3000:]
    assert port_closed(running.port)
    for pid in (web, worker):
        assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read().lower()


def test_a_killed_task_worker_makes_the_runner_exit_non_zero(gateway):
    running = gateway("dev", env={"SERVER_GRACEFUL_TIMEOUT_SECONDS": "5", "WORKER_STOP_GRACE_SECONDS": "5"})
    os.kill(running.worker_pid(), signal.SIGKILL)
    assert running.wait(STOP_BOUND) == 1, running.output()[-3000:]
    assert port_closed(running.port)  # the web server was stopped with it
    assert "The task worker exited on its own" in running.output()


def test_a_killed_web_server_makes_the_runner_exit_non_zero(gateway):
    running = gateway("dev", env={"SERVER_GRACEFUL_TIMEOUT_SECONDS": "5", "WORKER_STOP_GRACE_SECONDS": "5"})
    worker = running.worker_pid()
    os.kill(running.web_pid(), signal.SIGKILL)
    assert running.wait(STOP_BOUND) == 1, running.output()[-3000:]
    assert "The web server exited on its own" in running.output()
    assert not os.path.exists(f"/proc/{worker}")  # the task worker was stopped and reaped
