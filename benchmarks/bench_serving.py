"""Slow clients against `make run`: `/api/health` p99 with 50 stalled sockets open vs without them.

A real `python -m pod_gateway.runner dev` (one web worker process, the smallest shape) on a loopback port,
with a data directory of its own. Rounds without and with 50 stalled sockets (a third stop inside their
headers, a third inside their body, a third send nothing) alternate; each condition's best round counts.
The deadlines are raised for the run so that the stalled sockets stay open while it measures.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from pathlib import Path

import requests

from benchmarks import figure, gateway

STALLED = 50
REQUESTS = 200
ROUNDS = 3
P99_RATIO_LIMIT = 2.0
ROOT = Path(__file__).resolve().parent.parent


def _env(data_dir: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "PROMETHEUS_MULTIPROC_DIR"}}
    env.update(DATA_DIR=data_dir, POD_ADMIN_PASSWORD="bench-password-1",
               SERVER_HEADER_TIMEOUT_SECONDS="600", SERVER_BODY_TIMEOUT_SECONDS="600")
    return env


def _stall(port: int) -> list[socket.socket]:
    sockets = []
    for n in range(STALLED):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if n % 3 == 0:
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Stalled: ")
        elif n % 3 == 1:
            sock.sendall(b"POST /api/v1/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 5000\r\n\r\n{\"prompt\": ")
        sockets.append(sock)
    return sockets


def _p99(url: str) -> float:
    session = requests.Session()
    times = []
    for _ in range(REQUESTS):
        start = time.perf_counter()
        session.get(url, timeout=30).raise_for_status()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[min(len(times) - 1, int(len(times) * 0.99))]


def run() -> list[str]:
    with tempfile.TemporaryDirectory(prefix="pod-bench-serving-") as data_dir, gateway(_env(data_dir)) as base:
        url = f"{base}/api/health"
        port = int(base.rsplit(":", 1)[1])
        _p99(url)  # warm-up
        alone, stalled = [], []
        for _ in range(ROUNDS):
            alone.append(_p99(url))
            sockets = _stall(port)
            try:
                time.sleep(0.3)
                stalled.append(_p99(url))
            finally:
                for sock in sockets:
                    sock.close()
    best_alone, best_stalled = min(alone), min(stalled)
    return [figure(
        f"/api/health p99 with {STALLED} stalled sockets open vs none (make run, one web worker)",
        best_stalled / best_alone, P99_RATIO_LIMIT,
        detail=f"({best_stalled * 1000:.1f} vs {best_alone * 1000:.1f} ms)",
    )]
