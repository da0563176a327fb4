"""The request path of the two commonest calls, at 5,000 images (`make bench`).

Both are measured on a real `python -m pod_gateway.runner dev` (one web worker process, as deployed: pooled
PostgreSQL connections, SQLite connections kept per thread) on this run's database, over one kept-alive
HTTP connection:

- One approval (`POST images/{id}/approve`) through the whole stack: the median server time the response's
  `Server-Timing` header reports (RequestIdMiddleware: from the request id to the response, i.e. rate
  limiting, idempotency, authentication, the service, serialisation, metrics; the request's log line says
  the same), over APPROVALS approvals of distinct pending images, in APPROVAL_ROUNDS rounds a second
  apart; the figure is the best round's median, all rounds printed. Limit: under 5 ms. Rounds, as for the
  list below and as `timeit` repeats: this machine's speed swings by up to 2x within seconds (a fixed
  pure-Python loop takes 9 or 18 ms from one second to the next), and a slower phase only adds time.
- `GET images?page_size=50` requests per second against `/api/health`'s on the same server, the two URLs
  turn about, best of SERVED_ROUNDS. Limit: at least 0.35×.

Both are printed again as Django's test client measures them in process (no server, no sockets; on
PostgreSQL a persistent connection with its health check), without a limit.

The 5,000 images are generated in SQL as in bench_scale (10 % of them pending).
"""

from __future__ import annotations

import http.client
import logging
import os
import statistics
import time
import uuid

from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.test.utils import override_settings
from rest_framework.authtoken.models import Token

from benchmarks import Figure, figure, gateway
from benchmarks.bench_api import rates
from benchmarks.bench_scale import seed

IMAGES = 5_000
APPROVALS = 100
APPROVAL_ROUNDS = 3
APPROVAL_LIMIT_MS = 5.0
LIST_RATIO_LIMIT = 0.35
LIST_REQUESTS = 100
SERVED_REQUESTS = 200
SERVED_ROUNDS = 3
LIST_URL, HEALTH_URL = "/api/v1/images?page_size=50", "/api/health"


class _Durations(logging.Handler):
    """Keeps the server time of each request line instead of writing it out."""

    def __init__(self) -> None:
        super().__init__()
        self.ms: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.ms.append(record.duration_ms)


def _pending(count: int) -> list[str]:
    from images.models import Image, ImageStatus

    return list(Image.objects.filter(status=ImageStatus.PENDING).values_list("id", flat=True)[:count])


def _approval_line(label: str, durations: list[float], *, limit: float | None) -> Figure:
    median = statistics.median(durations)
    detail = f"(p90 {statistics.quantiles(durations, n=10)[-1]:.1f} ms over {len(durations)})"
    if limit is not None:
        return figure(label, median, limit, unit=" ms", detail=detail)
    return Figure(f"{label}: {median:.2f} ms {detail}")


def _approvals_in_process(client: Client, durations: _Durations, image_ids: list[str]) -> Figure:
    for image_id in image_ids[:5]:  # warm-up: the client's rate-limit bucket, caches
        client.post(f"/api/v1/images/{image_id}/approve", {}, content_type="application/json")
    durations.ms.clear()
    for image_id in image_ids[5:]:
        response = client.post(f"/api/v1/images/{image_id}/approve", {}, content_type="application/json")
        assert response.status_code == 200, response.content[:300]
    return _approval_line("  the same through Django's test client (in process, no server)", durations.ms,
                          limit=None)


def _ratio_line(label: str, list_rps: float, health_rps: float, *, limit: float | None) -> Figure:
    ratio = list_rps / health_rps
    text = f"{label}: {ratio:.2f}x ({list_rps:.0f} vs {health_rps:.0f} req/s)"
    # A floor, not a ceiling: figure() flags values over a limit, so this line is made by hand.
    below = limit is not None and ratio < limit
    if limit is not None:
        text += f" (limit >= {limit}x)" + (" BELOW THE LIMIT" if below else "")
    line = Figure(text)
    line.over_limit = below
    return line


def _list_vs_health_in_process(client: Client) -> Figure:
    list_rps, health_rps = rates(client, LIST_URL, HEALTH_URL, requests=LIST_REQUESTS)
    return _ratio_line("  the same through Django's test client (in process, no server)", list_rps, health_rps,
                       limit=None)


def _env() -> dict[str, str]:
    """This run's database (DATA_DIR's SQLite file, or DATABASE_URL/REDIS_URL), limits out of the way."""
    env = {key: value for key, value in os.environ.items() if key not in {"SECRET_KEY", "PROMETHEUS_MULTIPROC_DIR"}}
    env.update(DATA_DIR=str(settings.DATA_DIR), POD_ADMIN_PASSWORD="bench-password-1",
               RATE_LIMIT_READ="1000000000/h", RATE_LIMIT_APPROVAL="1000000000/h")
    return env


class _Served:
    """One kept-alive connection to the served gateway, with a token."""

    def __init__(self, base_url: str, token: str) -> None:
        host, _, port = base_url.removeprefix("http://").partition(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=30)
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}

    def request(self, method: str, url: str, body: bytes | None = None) -> http.client.HTTPResponse:
        self.connection.request(method, url, body=body, headers=self.headers)
        response = self.connection.getresponse()
        content = response.read()
        assert response.status == 200, content[:300]
        return response


def _server_ms(response: http.client.HTTPResponse) -> float:
    return float(response.headers["Server-Timing"].partition("dur=")[2])


def _approvals_served(served: _Served, image_ids: list[str]) -> Figure:
    for image_id in image_ids[:5]:  # warm-up
        served.request("POST", f"/api/v1/images/{image_id}/approve", b"{}")
    rounds = []
    for n in range(APPROVAL_ROUNDS):
        if n:
            time.sleep(1)
        batch = image_ids[5 + n * APPROVALS: 5 + (n + 1) * APPROVALS]
        rounds.append([_server_ms(served.request("POST", f"/api/v1/images/{image_id}/approve", b"{}"))
                       for image_id in batch])
    best = min(rounds, key=statistics.median)
    medians = ", ".join(f"{statistics.median(durations):.2f}" for durations in rounds)
    return _approval_line(f"one approval through the API at {IMAGES:,} images on a running server (make run), "
                          f"median server time, best of {APPROVAL_ROUNDS} rounds ({medians} ms)", best,
                          limit=APPROVAL_LIMIT_MS)


def _list_vs_health_served(served: _Served) -> Figure:
    urls = (LIST_URL, HEALTH_URL)
    for url in urls * 20:  # warm-up: connections, caches, the token's bucket
        served.request("GET", url)
    best = [float("inf")] * len(urls)
    for _ in range(SERVED_ROUNDS):
        spent = [0.0] * len(urls)
        for _ in range(SERVED_REQUESTS):
            for n, url in enumerate(urls):  # turn about, as bench_api.rates()
                start = time.perf_counter()
                served.request("GET", url)
                spent[n] += time.perf_counter() - start
        best = [min(b, s) for b, s in zip(best, spent, strict=True)]
    list_rps, health_rps = (SERVED_REQUESTS / seconds for seconds in best)
    return _ratio_line("GET images?page_size=50 vs /api/health on a running server (make run), requests/s",
                       list_rps, health_rps, limit=LIST_RATIO_LIMIT)


def _measure_served(token: str, image_ids: list[str]) -> list[Figure]:
    with gateway(_env()) as base_url:
        served = _Served(base_url, token)
        # The list first: the approvals' events keep the server's task worker busy for a while after.
        listed = _list_vs_health_served(served)
        return [_approvals_served(served, image_ids), listed]


def run() -> list[str]:
    seed(0, IMAGES, int(time.time()) - IMAGES - 86400)
    user = User.objects.create_superuser(username=f"bench-{uuid.uuid4().hex[:8]}", password=uuid.uuid4().hex)
    token = Token.objects.create(user=user).key
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    served_count = 5 + APPROVAL_ROUNDS * APPROVALS
    pending = _pending(served_count + 5 + APPROVALS)
    served_ids, in_process_ids = pending[:served_count], pending[served_count:]
    served = _measure_served(token, served_ids)
    request_log = logging.getLogger("pod_gateway.request")
    durations = _Durations()
    saved = request_log.level, request_log.propagate
    request_log.addHandler(durations)
    request_log.setLevel(logging.INFO)
    request_log.propagate = False
    limits = {tier: (10**9, 3600) for tier in settings.RATE_LIMITS}
    try:
        with override_settings(RATE_LIMITS=limits):
            in_process = [_approvals_in_process(client, durations, in_process_ids), _list_vs_health_in_process(client)]
    finally:
        request_log.removeHandler(durations)
        request_log.level, request_log.propagate = saved
    return [served[0], in_process[0], served[1], in_process[1]]
