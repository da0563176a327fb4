"""The gateway's operational endpoints and its admin login: liveness, readiness, metrics.

They live in the project package because they look at every app: readiness asks for a live task
worker, the metrics count the review queue, the login guards the whole admin.
"""

from __future__ import annotations

import hmac
import logging
import uuid

from django.conf import settings
from django.contrib import admin
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_ratelimit.core import is_ratelimited
from drf_spectacular.utils import extend_schema, inline_serializer
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.exposition import choose_encoder
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from api.exceptions import error_response, require_get
from api.views import PublicView
from core import metrics
from core.worker import worker_alive

logger = logging.getLogger(__name__)


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache() -> None:
    key, value = "pod:ready-probe", uuid.uuid4().hex
    cache.set(key, value, timeout=10)
    if cache.get(key) != value:
        raise RuntimeError("the cache did not return what was stored")


def _check_worker() -> None:
    if not worker_alive():
        raise RuntimeError(f"no task worker heartbeat in the last {settings.WORKER_STALE_SECONDS:g} s")


CHECKS = {"database": _check_database, "cache": _check_cache, "worker": _check_worker}


@require_get
def ready(request: HttpRequest) -> HttpResponse:
    """200 with every check "ok", or 503 SERVICE_UNAVAILABLE naming the checks that failed and why."""
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # any failure of a dependency means not ready, never a 500
            logger.warning("Readiness check %s failed: %s", name, exc)
            results[name] = f"failed: {exc}"
    failed = [name for name, result in results.items() if result != "ok"]
    if failed:
        return error_response(
            request,
            status=503,
            code="SERVICE_UNAVAILABLE",
            message=f"Not ready: {', '.join(failed)} check failed",
            details={"checks": results, "failed": failed},
            headers={"Retry-After": "5"},
        )
    return JsonResponse({"status": "ready", "checks": results})


# --- Liveness ----------------------------------------------------------------------------------

class HealthView(PublicView):
    # Liveness probes poll forever from one address; throttling them would report a healthy process dead.
    throttle_classes: list = []

    @extend_schema(
        operation_id="health",
        tags=["meta"],
        summary="Liveness: the process is up and serving requests",
        responses=inline_serializer(name="Health", fields={"status": serializers.CharField()}),
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


# --- Metrics -----------------------------------------------------------------------------------

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
    # The gauges (review queue, webhook backlog) are read from the database now, so every process agrees.
    registry.register(metrics.DatabaseGaugeCollector())
    # Text format 0.0.4 unless the scraper asks for OpenMetrics or a newer text format.
    encoder, content_type = choose_encoder(request.META.get("HTTP_ACCEPT", ""))
    return HttpResponse(encoder(registry), content_type=content_type)


# --- Admin login (django-ratelimit) -------------------------------------------------------------

ADMIN_LOGIN_GROUP = "pod_gateway.admin_login"


def admin_login(request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
    """The admin login view, refusing POSTs over ADMIN_LOGIN_RATE per client IP and per username."""
    if request.method == "POST":
        count, period = settings.ADMIN_LOGIN_RATE
        rate = f"{count}/{period}s"
        # Both counters advance on every attempt, so neither a spray over many usernames from one
        # address nor a distributed guess at one username gets more than `rate` tries.
        by_ip = is_ratelimited(request, group=ADMIN_LOGIN_GROUP, key="ip", rate=rate, method="POST", increment=True)
        by_user = is_ratelimited(
            request, group=ADMIN_LOGIN_GROUP + ".user", key=_username_key, rate=rate, method="POST", increment=True
        )
        if by_ip or by_user:
            logger.warning("Admin login refused: too many attempts (%s)", "ip" if by_ip else "username")
            return HttpResponse(
                "<h1>Too many login attempts</h1><p>Wait a few minutes and try again.</p>",
                status=429,
                headers={"Retry-After": str(period)},
            )
    return admin.site.login(request, extra_context)


def _username_key(group: str, request: HttpRequest) -> str:
    return request.POST.get("username", "").strip().lower()
