"""The gateway's own metrics (django-prometheus adds the request/database ones), for Prometheus and StatsD.

With several processes (gunicorn workers, task workers) prometheus_client's multiprocess mode is
used: `PROMETHEUS_MULTIPROC_DIR` is set in settings before prometheus_client is first imported, every
process writes its samples to files there, and /api/metrics (pod_gateway/views.py) adds them up. Counters
and histograms, plus one gauge in `livesum` mode (requests in flight in the web workers); the other
gauges (`DatabaseGauge`) are read from the database when they are asked for instead — at each scrape,
and every `STATSD_GAUGE_SECONDS` by each task worker for StatsD.

With `STATSD_HOST` set, every increment and observation of the metrics below also goes to StatsD (the
`statsd` package, UDP): a counter `pod_images_approved` as `<STATSD_PREFIX>.images_approved`, label values
appended in order (`pod.generation_failed.timeout`), a `_seconds` histogram as a timing in milliseconds
(`pod.api_request_duration.GET.api_v1_images`). That happens here, in the metric classes, so no call site
knows about StatsD.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator

import prometheus_client
from django.conf import settings
from django.db import close_old_connections
from prometheus_client.core import GaugeMetricFamily
from statsd import StatsClient

logger = logging.getLogger(__name__)

# --- StatsD ----------------------------------------------------------------------------------------

_client_lock = threading.Lock()
_client: tuple[tuple[str, int, str], StatsClient | None, float] | None = None
# A host that did not resolve (a StatsD container starting after the gateway) is tried again this often.
STATSD_RETRY_SECONDS = 60.0


def statsd_client() -> StatsClient | None:
    """The StatsD client for the current STATSD_* settings, or None when STATSD_HOST is unset.

    Made on first use and again when the settings change; a host that does not resolve is logged, sends
    nothing and is tried again after STATSD_RETRY_SECONDS, so a metrics outage never fails the work
    being counted and a StatsD that comes up later is used from then on.
    """
    global _client
    if not (host := settings.STATSD_HOST):
        return None
    key = (host, settings.STATSD_PORT, settings.STATSD_PREFIX)
    current = _client
    if current is not None and current[0] == key and (current[1] is not None or time.monotonic() < current[2]):
        return current[1]
    with _client_lock:
        try:
            client: StatsClient | None = StatsClient(host=key[0], port=key[1], prefix=key[2] or None)
        except OSError as exc:
            logger.warning("StatsD host %s:%s unusable, not sending metrics to it for %g s: %s",
                           key[0], key[1], STATSD_RETRY_SECONDS, exc)
            client = None
        _client = (key, client, time.monotonic() + STATSD_RETRY_SECONDS)
    return client


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def statsd_name(metric_name: str, label_values: tuple[str, ...] = ()) -> str:
    """`pod_generation_failed` + ("timeout",) → `generation_failed.timeout` (the client adds the prefix)."""
    name = metric_name.removeprefix("pod_").removesuffix("_seconds")
    parts = [name, *(_UNSAFE.sub("_", value).strip("_") or "none" for value in label_values)]
    return ".".join(parts)


class Counter(prometheus_client.Counter):
    """A Prometheus counter whose increments also go to StatsD as counts."""

    def inc(self, amount: float = 1, exemplar: dict[str, str] | None = None) -> None:
        super().inc(amount, exemplar)
        if client := statsd_client():
            client.incr(statsd_name(self._name, self._labelvalues), amount)


class Histogram(prometheus_client.Histogram):
    """A Prometheus histogram (of seconds) whose observations also go to StatsD as timings in ms."""

    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
        super().observe(amount, exemplar)
        if client := statsd_client():
            client.timing(statsd_name(self._name, self._labelvalues), amount * 1000)


# --- Gauges read from the database -----------------------------------------------------------------

class DatabaseGauge:
    """A gauge whose value is read from the database when asked, so every process reports the same.

    The app that owns the data gives the reading function in its AppConfig.ready (`read_with`).
    """

    def __init__(self, name: str, documentation: str) -> None:
        self.name = name
        self.documentation = documentation
        self.reader: Callable[[], float] | None = None

    def read_with(self, reader: Callable[[], float]) -> None:
        self.reader = reader


class DatabaseGaugeCollector:
    """Yields every database gauge that has a reader (for /api/metrics' registry)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for gauge in DATABASE_GAUGES:
            if gauge.reader is not None:
                family = GaugeMetricFamily(gauge.name, gauge.documentation)
                family.add_metric([], gauge.reader())
                yield family


def statsd_gauges_send() -> None:
    """Send every database gauge to StatsD once (nothing when STATSD_HOST is unset)."""
    if (client := statsd_client()) is None:
        return
    for gauge in DATABASE_GAUGES:
        if gauge.reader is not None:
            client.gauge(statsd_name(gauge.name), gauge.reader())


class StatsdGaugeReporter(threading.Thread):
    """Beside each task worker: sends the database gauges to StatsD every STATSD_GAUGE_SECONDS.

    StatsD has no scrape, so the gauges are pushed; every worker sends the same values, which is
    harmless for a gauge. Does nothing without STATSD_HOST.
    """

    def __init__(self) -> None:
        super().__init__(name="statsd-gauges", daemon=True)
        self._halt = threading.Event()

    def start(self) -> None:
        if settings.STATSD_HOST:
            super().start()

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout=10)

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                try:
                    statsd_gauges_send()
                except Exception:  # a failed read must not end the reporting for good
                    logger.warning("Sending the gauges to StatsD failed", exc_info=True)
                close_old_connections()
                self._halt.wait(float(settings.STATSD_GAUGE_SECONDS))
        finally:
            close_old_connections()


# --- The metrics -----------------------------------------------------------------------------------

GENERATION_STARTED = Counter("pod_generation_started", "Generations started on a backend")
GENERATION_COMPLETED = Counter("pod_generation_completed", "Generations completed")
GENERATION_FAILED = Counter("pod_generation_failed", "Generations failed", ["error_type"])
GENERATION_DURATION = Histogram(
    "pod_generation_duration_seconds",
    "Wall time of a generation from start to finish",
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, float("inf")),
)
IMAGES_APPROVED = Counter("pod_images_approved", "Images approved")
IMAGES_REJECTED = Counter("pod_images_rejected", "Images rejected")
PRODUCTS_PUBLISHED = Counter("pod_products_published", "Products published", ["platform"])
PRODUCTS_FAILED = Counter("pod_products_failed", "Products whose publishing failed", ["platform"])
API_REQUESTS = Counter("pod_api_requests", "API requests", ["method", "endpoint", "status"])
API_REQUEST_DURATION = Histogram(
    "pod_api_request_duration_seconds",
    "API request latency",
    ["method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, float("inf")),
)
WEBHOOK_DELIVERIES = Counter("pod_webhook_deliveries", "Webhook delivery attempts", ["event_type", "outcome"])

IMAGES_PENDING_REVIEW = DatabaseGauge("pod_images_pending_review", "Images waiting for review (status pending)")
WEBHOOK_BACKLOG = DatabaseGauge(
    "pod_webhook_backlog", "Webhook deliveries due to be sent now (pending, their next attempt time reached)"
)
WEBHOOK_OUTBOX_BACKLOG = DatabaseGauge(
    "pod_webhook_outbox_backlog", "Events recorded but not yet fanned out to webhook deliveries"
)
DATABASE_GAUGES = (IMAGES_PENDING_REVIEW, WEBHOOK_BACKLOG, WEBHOOK_OUTBOX_BACKLOG)

# Requests a web worker holds (from their headers to their last byte out), summed over the live workers:
# slow clients show here. `livesum` drops a dead worker's share once gunicorn reports it gone.
HTTP_REQUESTS_IN_FLIGHT = prometheus_client.Gauge(
    "pod_http_requests_in_flight", "HTTP requests being received or answered", multiprocess_mode="livesum"
)
