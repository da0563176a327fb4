"""Benchmarks of the gateway's hot paths (`make bench`, i.e. `python -m benchmarks`).

Every `benchmarks/bench_*.py` module has `run() -> list[str]`: the figure lines it prints. A line made
with `figure(...)` knows its limit; one over its limit makes the run exit 1. The runner gives the
benchmarks their own temporary DATA_DIR and a freshly migrated SQLite database (or DATABASE_URL's).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


class Figure(str):
    """A printed figure line that remembers whether it is over its limit."""

    over_limit: bool = False


def figure(label: str, value: float, limit: float, *, unit: str = "x", detail: str = "") -> Figure:
    """`label: 1.12x <detail> (limit 1.3x)`, flagged when value > limit."""
    text = f"{label}: {value:.2f}{unit}{' ' + detail if detail else ''} (limit {limit}{unit})"
    line = Figure(text + (" OVER LIMIT" if value > limit else ""))
    line.over_limit = value > limit
    return line


def compare(
    ours: Callable[[], object],
    bare: Callable[[], object],
    *,
    repeat: int = 3,
    setup: Callable[[], object] | None = None,
) -> tuple[float, float]:
    """Best-of-`repeat` seconds of `ours` and of `bare`, run alternately so that load drift hits both."""
    best_ours = best_bare = float("inf")
    for _ in range(repeat):
        if setup is not None:
            setup()
        best_ours = min(best_ours, _timed(ours))
        best_bare = min(best_bare, _timed(bare))
    return best_ours, best_bare


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gateway(env: dict[str, str]) -> Iterator[str]:
    """`make run` (`runner dev`: one web worker and a task worker) on a free loopback port with `env` as its
    whole environment, once `/api/health` answers; its base URL. Stopped with SIGTERM afterwards."""
    port = free_port()
    env = {**env, "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": env.get("LOG_LEVEL", "WARNING")}
    process = subprocess.Popen([sys.executable, "-m", "pod_gateway.runner", "dev"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.3)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
