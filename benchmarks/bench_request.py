"""The request path of the two commonest calls, at 5,000 images (`make bench`).

- One approval (`POST images/{id}/approve`) through the whole stack: the median server time as the
  request's own log line reports it (RequestIdMiddleware: from the request id to the response, i.e.
  rate limiting, idempotency, authentication, the service, serialisation, metrics), over APPROVALS
  approvals of distinct pending images. Limit: under 5 ms.
- `GET images?page_size=50` requests per second against `/api/health`'s on the same server (the
  test client through every middleware, turn about, best of bench_api.REPEAT). Limit: at least 0.35×.

The 5,000 images are generated in SQL as in bench_scale (10 % of them pending).
"""

from __future__ import annotations

import logging
import statistics
import time
import uuid

from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.test.utils import override_settings
from rest_framework.authtoken.models import Token

from benchmarks import Figure, figure
from benchmarks.bench_api import rates
from benchmarks.bench_scale import seed

IMAGES = 5_000
APPROVALS = 150
APPROVAL_LIMIT_MS = 5.0
LIST_RATIO_LIMIT = 0.35
LIST_REQUESTS = 100


class _Durations(logging.Handler):
    """Keeps the server time of each request line instead of writing it out."""

    def __init__(self) -> None:
        super().__init__()
        self.ms: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.ms.append(record.duration_ms)


def _approvals(client: Client, durations: _Durations) -> list[str]:
    from images.models import Image, ImageStatus

    pending = list(Image.objects.filter(status=ImageStatus.PENDING).values_list("id", flat=True)[: APPROVALS + 5])
    for image_id in pending[:5]:  # warm-up: the client's rate-limit bucket, caches
        client.post(f"/api/v1/images/{image_id}/approve", {}, content_type="application/json")
    durations.ms.clear()
    for image_id in pending[5:]:
        response = client.post(f"/api/v1/images/{image_id}/approve", {}, content_type="application/json")
        assert response.status_code == 200, response.content[:300]
    median = statistics.median(durations.ms)
    return [figure(
        f"one approval through the API at {IMAGES:,} images, median server time", median, APPROVAL_LIMIT_MS,
        unit=" ms", detail=f"(p90 {statistics.quantiles(durations.ms, n=10)[-1]:.1f} ms over {len(durations.ms)})",
    )]


def _list_vs_health(client: Client) -> list[str]:
    list_rps, health_rps = rates(client, "/api/v1/images?page_size=50", "/api/health", requests=LIST_REQUESTS)
    ratio = list_rps / health_rps
    # A floor, not a ceiling: figure() flags values over a limit, so this line is made by hand.
    below = ratio < LIST_RATIO_LIMIT
    line = Figure(f"GET images?page_size=50 vs /api/health, requests/s: {ratio:.2f}x ({list_rps:.0f} vs "
                  f"{health_rps:.0f} req/s) (limit >= {LIST_RATIO_LIMIT}x)" + (" BELOW THE LIMIT" if below else ""))
    line.over_limit = below
    return [line]


def run() -> list[str]:
    seed(0, IMAGES, int(time.time()) - IMAGES - 86400)
    user = User.objects.create_superuser(username=f"bench-{uuid.uuid4().hex[:8]}", password=uuid.uuid4().hex)
    client = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    request_log = logging.getLogger("pod_gateway.request")
    durations = _Durations()
    saved = request_log.level, request_log.propagate
    request_log.addHandler(durations)
    request_log.setLevel(logging.INFO)
    request_log.propagate = False
    limits = {tier: (10**9, 3600) for tier in settings.RATE_LIMITS}
    try:
        with override_settings(RATE_LIMITS=limits):
            return _approvals(client, durations) + _list_vs_health(client)
    finally:
        request_log.removeHandler(durations)
        request_log.level, request_log.propagate = saved
