"""GET /api/metrics: Prometheus text for all processes, plus the review-queue gauge computed at scrape time."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from api.exceptions import error_response, require_get


class PendingReviewCollector:
    """`pod_images_pending_review`: read from the database on every scrape, so every process agrees."""

    def collect(self):
        from images.models import Image, ImageStatus

        gauge = GaugeMetricFamily("pod_images_pending_review", "Images waiting for review (status pending)")
        gauge.add_metric([], Image.objects.filter(status=ImageStatus.PENDING).count())
        yield gauge


def _authorized(request: HttpRequest) -> bool:
    if not settings.METRICS_TOKEN:
        return True
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), settings.METRICS_TOKEN.encode())


@require_get
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Every process's samples (gunicorn workers, task workers) summed from PROMETHEUS_MULTIPROC_DIR."""
    if not _authorized(request):
        return error_response(
            request,
            status=401,
            code="UNAUTHORIZED",
            message="A valid METRICS_TOKEN is required as a bearer token",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    # A fresh registry per scrape: the per-process default registry would only show this worker.
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(settings.PROMETHEUS_MULTIPROC_DIR))
    registry.register(PendingReviewCollector())
    # Text format 0.0.4 unless the scraper asks for OpenMetrics or a newer text format.
    encoder, content_type = choose_encoder(request.META.get("HTTP_ACCEPT", ""))
    return HttpResponse(encoder(registry), content_type=content_type)
