"""GET /api/ready: is this instance able to serve (database, cache, a live task worker)?"""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

from api.exceptions import error_response, require_get

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
    from images.worker import worker_alive

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
