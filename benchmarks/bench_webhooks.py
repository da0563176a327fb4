"""Webhook delivery by one real worker process against a loopback receiver, beside a bare `requests` loop.

- 1,000 deliveries to a receiver that answers at once: the worker's throughput vs a bare sequential
  `requests.Session` loop posting the same signed bodies (limit: at least as fast).
- The same to a receiver that takes 50 ms a request: at least 5x the bare sequential loop.
- Event-to-first-attempt latency with events recorded at 100/s: p50 under 1 s, p99 under 3 s.
- With a second receiver hanging until the timeout, the healthy receiver's p99 latency within 1.5x of
  its p99 alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.test import override_settings

from benchmarks import figure
from core.actors import Actor, Via
from tests.servers import database_url
from webhooks import delivery, services, signing
from webhooks.models import DeliveryStatus, EventType, WebhookDelivery, WebhookEvent, WebhookSubscription

ROOT = Path(__file__).resolve().parent.parent
DELIVERIES = 1000
# One subscription may have only WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION deliveries in flight; the
# throughput figure spreads the same 1,000 deliveries over several subscriptions of the one receiver.
FAST_SUBSCRIPTIONS = 10
SLOW_DELIVERIES = 300
SLOW_MS = 50
RATE = 100  # events per second for the latency figures
LATENCY_EVENTS = 600
HANG_TIMEOUT = 3.0
# Throughput runs per side; the best of each is compared.
REPEATS = 2


class _Receiver(BaseHTTPRequestHandler):
    server: _ReceiverServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - keep the benchmark output clean
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        arrived = time.time()
        if self.path.startswith("/hang"):
            self.server.release.wait(HANG_TIMEOUT * 3)
        elif self.path.startswith("/slow"):
            time.sleep(SLOW_MS / 1000)
        with self.server.lock:
            self.server.arrivals.append((self.path, self.headers.get("webhook-id", ""), arrived))
        try:
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
        except OSError:
            pass
        del body


class _ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Receiver)
        self.lock = threading.Lock()
        self.arrivals: list[tuple[str, str, float]] = []
        self.release = threading.Event()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def first_arrivals(self, path: str) -> dict[str, float]:
        with self.lock:
            seen: dict[str, float] = {}
            for p, event_id, at in self.arrivals:
                if p == path:
                    seen.setdefault(event_id, at)
            return seen


def _worker() -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
        "WEBHOOK_TIMEOUT": str(HANG_TIMEOUT),
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay", "--queue-name", "*"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _reset() -> None:
    WebhookDelivery.objects.all().delete()
    WebhookEvent.objects.all().delete()
    WebhookSubscription.objects.all().delete()


def _subscribe(user: User, url: str) -> str:
    subscription, secret = services.subscription_create(data={"url": url}, actor=Actor(user, Via.COMMAND))
    return secret


def _wait_delivered(count: int, *, timeout: float = 300) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count() >= count:
            return time.monotonic()
        time.sleep(0.05)
    raise RuntimeError(f"only {WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count()} "
                       f"of {count} deliveries arrived in {timeout:.0f} s")


def _burst(count: int, tag: str) -> list[WebhookEvent]:
    with transaction.atomic():
        services.events_record(
            event_type=EventType.IMAGE_APPROVED,
            payloads=[{"image_id": f"img_{tag}_{n}", "status": "approved"} for n in range(count)],
        )
    return list(WebhookEvent.objects.filter(data__image_id__startswith=f"img_{tag}_").order_by("created_at", "id"))


def _bare_loop(url: str, secret: str, events: list[WebhookEvent]) -> float:
    """A bare sequential `requests.Session` posting the same signed bodies: the floor to beat."""
    bodies = [
        (e.id, delivery.event_body(event_id=e.id, event_type=e.event_type, created_at=e.created_at, data=e.data))
        for e in events
    ]
    start = time.perf_counter()
    with requests.Session() as session:
        for event_id, body in bodies:
            headers = signing.headers(secrets_=[secret], event_id=event_id, event_type="image.approved",
                                      timestamp=int(time.time()), body=body)
            session.post(url, data=body, headers=headers, timeout=10).raise_for_status()
    return time.perf_counter() - start


def _throughput(
    user: User, receiver: _ReceiverServer, path: str, count: int, *, subscriptions: int = 1
) -> tuple[float, float]:
    """(worker deliveries/s, bare loop posts/s) for `count` deliveries to `path`, over `subscriptions`.

    Each side is measured REPEATS times, alternately, and its best run kept: on a shared machine the
    best run is the one least disturbed by other work, for the worker and the bare loop alike.
    """
    ours, bare = 0.0, 0.0
    for _ in range(REPEATS):
        _reset()
        urls = [receiver.url(f"{path}/{n}") for n in range(subscriptions)]
        secrets_ = [_subscribe(user, url) for url in urls]
        events = _burst(count // subscriptions, f"t{path.strip('/')}{subscriptions}")
        started = time.monotonic()
        worker = _worker()
        try:
            # The clock starts when the worker is up: its start-up (Django, migrations check) is not delivery.
            while not WebhookDelivery.objects.exists() and time.monotonic() - started < 60:
                time.sleep(0.01)
            first = time.monotonic()
            done = _wait_delivered(count)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
        ours = max(ours, count / (done - first))
        elapsed = sum(_bare_loop(url, secret, events) for url, secret in zip(urls, secrets_, strict=True))
        bare = max(bare, count / elapsed)
    return ours, bare


def _latencies(receiver: _ReceiverServer, path: str, events: list[tuple[str, float]]) -> list[float]:
    arrivals = receiver.first_arrivals(path)
    return sorted(arrivals[event_id] - recorded for event_id, recorded in events if event_id in arrivals)


def _steady(user: User, receiver: _ReceiverServer, paths: list[str], *, healthy: str) -> list[float]:
    """Record LATENCY_EVENTS events at RATE/s with a worker running; the healthy path's latencies."""
    _reset()
    for path in paths:
        _subscribe(user, receiver.url(path))
    worker = _worker()
    try:
        time.sleep(3)  # the worker is up and idle before the clock starts
        recorded: list[tuple[str, float]] = []
        start = time.monotonic()
        for n in range(LATENCY_EVENTS):
            pause = start + n / RATE - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            with transaction.atomic():
                event = services.event_record(event_type=EventType.IMAGE_APPROVED, data={"image_id": f"img_l{n}"})
            recorded.append((event.id, event.created_at.timestamp()))
        deadline = time.monotonic() + 60
        while len(receiver.first_arrivals(healthy)) < LATENCY_EVENTS and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        receiver.release.set()
        worker.terminate()
        worker.wait(timeout=60)
        receiver.release.clear()
    latencies = _latencies(receiver, healthy, recorded)
    if len(latencies) < LATENCY_EVENTS:
        raise RuntimeError(f"only {len(latencies)} of {LATENCY_EVENTS} events reached {healthy}")
    return latencies


def _pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def run() -> list[str]:
    # The receiver is on loopback; the worker gets the same setting through its environment.
    with override_settings(WEBHOOK_ALLOW_PRIVATE_URLS=True):
        return _run()


def _run() -> list[str]:
    user, _ = User.objects.get_or_create(username="bench-webhooks")
    receiver = _ReceiverServer()
    lines = []
    try:
        ours, bare = _throughput(user, receiver, "/fast", DELIVERIES, subscriptions=FAST_SUBSCRIPTIONS)
        lines.append(figure(
            f"{DELIVERIES} deliveries to an instant receiver ({FAST_SUBSCRIPTIONS} subscriptions), bare loop / worker",
            bare / ours, 1.0, detail=f"(worker {ours:.0f}/s vs bare requests loop {bare:.0f}/s)",
        ))
        ours, bare = _throughput(user, receiver, "/fast", DELIVERIES)
        lines.append(
            f"{DELIVERIES} deliveries to an instant receiver, one subscription (at most "
            f"{settings.WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION} in flight): worker {ours:.0f}/s vs bare loop "
            f"{bare:.0f}/s (no limit: the cap bounds the concurrency)"
        )
        ours, bare = _throughput(user, receiver, "/slow", SLOW_DELIVERIES)
        lines.append(figure(
            f"{SLOW_DELIVERIES} deliveries to a {SLOW_MS} ms receiver, bare loop x5 / worker", 5 * bare / ours, 1.0,
            detail=f"(worker {ours:.0f}/s vs bare requests loop {bare:.1f}/s: {ours / bare:.1f}x)",
        ))
        alone = _steady(user, receiver, ["/alone"], healthy="/alone")
        lines.append(figure(f"event to first attempt at {RATE} events/s, p50", _pct(alone, 50), 1.0, unit="s"))
        lines.append(figure(f"event to first attempt at {RATE} events/s, p99", _pct(alone, 99), 3.0, unit="s"))
        beside = _steady(user, receiver, ["/beside", "/hang"], healthy="/beside")
        ratio = _pct(beside, 99) / max(_pct(alone, 99), 1e-3)
        lines.append(figure(
            "healthy receiver's p99 beside one hanging until the timeout / alone", ratio, 1.5,
            detail=f"({_pct(beside, 99) * 1000:.0f} vs {_pct(alone, 99) * 1000:.0f} ms)",
        ))
    finally:
        receiver.release.set()
        receiver.shutdown()
        _reset()
    return lines
