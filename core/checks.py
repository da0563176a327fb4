"""Configuration validation: `manage.py check_config` prints it as a report, `manage.py check` runs it too.

Malformed values already stop the process in settings.py; these checks catch settings that are each
well-formed but do not fit together (a backend without its credentials, a default secret in production).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.db import DatabaseError, connection

WEAK_SECRET_PREFIXES = ("django-insecure", "insecure", "changeme", "change-me", "secret")
ERROR = "error"
WARNING = "warning"
INFO = "info"


@dataclass(frozen=True)
class ConfigIssue:
    """One finding about the configuration: its level, the setting it concerns, what it means."""

    level: str
    setting: str
    message: str
    code: str = ""
    # False for findings that only belong in the `check_config` report, not on every manage.py command.
    system_check: bool = True


def _url_problem(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return f"{value!r} is not an http(s) URL with a host"
    if parts.query or parts.fragment:
        return f"{value!r} must not have a query or fragment"
    return None


def _generation_issues() -> list[ConfigIssue]:
    backend = settings.GENERATION_BACKEND
    issues = []
    if backend == "comfyui":
        if not settings.COMFYUI_API_URL:
            issues.append(ConfigIssue(ERROR, "COMFYUI_API_URL", "required by GENERATION_BACKEND=comfyui", "E001"))
        elif problem := _url_problem(settings.COMFYUI_API_URL):
            issues.append(ConfigIssue(ERROR, "COMFYUI_API_URL", problem, "E002"))
    if backend == "runpod":
        for name, code in (("RUNPOD_API_KEY", "E003"), ("RUNPOD_ENDPOINT_ID", "E004")):
            if not getattr(settings, name):
                issues.append(ConfigIssue(ERROR, name, "required by GENERATION_BACKEND=runpod", code))
        if problem := _url_problem(settings.RUNPOD_API_URL):
            issues.append(ConfigIssue(ERROR, "RUNPOD_API_URL", problem, "E005"))
    if backend != "runpod" and not settings.RUNPOD_API_KEY:
        issues.append(ConfigIssue(INFO, "RUNPOD_API_KEY", "RunPod serverless disabled"))
    return issues


def _publishing_issues() -> list[ConfigIssue]:
    issues = []
    if not settings.PRINTIFY_API_KEY:
        # Export-only installations are normal: report it, but don't warn on every command.
        issues.append(ConfigIssue(
            WARNING, "PRINTIFY_API_KEY", "Printify integration disabled", "W001", system_check=False
        ))
    elif not settings.PRINTIFY_SHOP_ID:
        issues.append(ConfigIssue(
            WARNING, "PRINTIFY_SHOP_ID", "not set: products cannot be created (see manage.py printify_shops)", "W002"
        ))
    if problem := _url_problem(settings.PRINTIFY_API_URL):
        issues.append(ConfigIssue(ERROR, "PRINTIFY_API_URL", problem, "E006"))
    if settings.PUBLIC_BASE_URL:
        if problem := _url_problem(settings.PUBLIC_BASE_URL):
            issues.append(ConfigIssue(ERROR, "PUBLIC_BASE_URL", problem, "E007"))
    else:
        issues.append(ConfigIssue(INFO, "PUBLIC_BASE_URL", "not set: print files are uploaded to Printify inline"))
    return issues


def _security_issues() -> list[ConfigIssue]:
    issues = []
    key = settings.SECRET_KEY
    if not settings.DEBUG and (len(key) < 32 or len(set(key)) < 5 or key.startswith(WEAK_SECRET_PREFIXES)):
        issues.append(ConfigIssue(
            WARNING, "SECRET_KEY",
            "weak (short, repetitive or a placeholder) with DEBUG off; set a random secret", "W003",
        ))
    if settings.SECRET_KEY_SOURCE == "file":
        issues.append(ConfigIssue(
            INFO, "SECRET_KEY",
            f"not set: the random key kept in {settings.SECRET_KEY_FILE} is used"
            " (set one when several hosts serve the gateway)",
        ))
    elif settings.SECRET_KEY_SOURCE == "process":
        issues.append(ConfigIssue(
            INFO, "SECRET_KEY",
            f"not set, and {settings.SECRET_KEY_FILE} does not exist yet: this process uses a random key of"
            " its own (make run, make serve, pod_gateway.wsgi and manage.py db_worker create the file)",
        ))
    if not settings.DEBUG and settings.WEBHOOK_ALLOW_PRIVATE_URLS:
        issues.append(ConfigIssue(
            WARNING, "WEBHOOK_ALLOW_PRIVATE_URLS",
            "webhooks may reach private and loopback addresses with DEBUG off", "W004",
        ))
    return issues


# A trusted network wider than this that is not private lets anyone in it choose its client address.
PROXY_NETWORK_MAX_PUBLIC = 2**16


def _proxy_issues() -> list[ConfigIssue]:
    entries = list(settings.TRUSTED_PROXIES)
    if not entries:
        return [ConfigIssue(INFO, "TRUSTED_PROXIES", "not set: X-Forwarded-For is ignored; clients are their socket's"
                            " address (set it to the addresses of the proxies in front of the gateway)")]
    issues = []
    for entry in entries:
        try:
            network = ipaddress.ip_network(str(entry), strict=False)
        except ValueError:
            issues.append(ConfigIssue(ERROR, "TRUSTED_PROXIES", f"{entry!r} is not an IP address or network", "E011"))
            continue
        if network.prefixlen == 0 or (not network.is_private and network.num_addresses > PROXY_NETWORK_MAX_PUBLIC):
            issues.append(ConfigIssue(
                WARNING, "TRUSTED_PROXIES",
                f"{network} trusts X-Forwarded-For from {network.num_addresses:,} addresses that are not all"
                " private: any client there can choose the address its rate limit counts", "W008",
            ))
    issues.append(ConfigIssue(INFO, "TRUSTED_PROXIES", f"X-Forwarded-For is read from {', '.join(map(str, entries))}"))
    return issues


def _webhook_issues() -> list[ConfigIssue]:
    issues = []
    delays = list(settings.WEBHOOK_RETRY_DELAYS)
    if any(delay < 0 for delay in delays):
        issues.append(ConfigIssue(ERROR, "WEBHOOK_RETRY_DELAYS", "delays must not be negative", "E008"))
    elif not delays:
        issues.append(ConfigIssue(WARNING, "WEBHOOK_RETRY_DELAYS", "empty: failed deliveries are not retried", "W005"))
    if settings.WEBHOOK_TIMEOUT > 60:
        issues.append(ConfigIssue(
            WARNING, "WEBHOOK_TIMEOUT", f"{settings.WEBHOOK_TIMEOUT:g}s holds a worker per slow receiver", "W006"
        ))
    return issues


def _webhook_schedule_issues() -> list[ConfigIssue]:
    """Webhook settings that are each valid but work against each other (the retry schedule, the pool, pruning)."""
    issues = []
    delays = list(settings.WEBHOOK_RETRY_DELAYS)
    if any(later < earlier for earlier, later in zip(delays, delays[1:], strict=False)):
        issues.append(ConfigIssue(
            WARNING, "WEBHOOK_RETRY_DELAYS",
            "the delays should not shrink: a receiver that is down gets retried faster the longer it stays down",
            "W020",
        ))
    retry_days = sum(max(delay, 0) for delay in delays) / 86400
    if retry_days >= settings.WEBHOOK_RETENTION_DAYS:
        issues.append(ConfigIssue(
            ERROR, "WEBHOOK_RETENTION_DAYS",
            f"{settings.WEBHOOK_RETENTION_DAYS} day(s) is not longer than the retry schedule ({retry_days:.1f} days):"
            " deliveries would be pruned while still being retried", "E020",
        ))
    if settings.WEBHOOK_CONCURRENCY <= settings.WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION:
        issues.append(ConfigIssue(
            WARNING, "WEBHOOK_CONCURRENCY",
            f"{settings.WEBHOOK_CONCURRENCY} sending thread(s) per worker, no more than one subscription may hold"
            f" (WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION={settings.WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION}):"
            " one slow receiver can take every thread", "W021",
        ))
    return issues


def _web_thread_issues(*, probe: bool) -> list[ConfigIssue]:
    """PostgreSQL connections: web threads that can outnumber their process' pool, pools that can
    outnumber what the server accepts."""
    if connection.vendor != "postgresql":
        return []
    issues = []
    if settings.WEB_THREADS > settings.DATABASE_POOL_MAX_SIZE:
        issues.append(ConfigIssue(
            WARNING, "WEB_THREADS",
            f"{settings.WEB_THREADS} request threads per web process share at most DATABASE_POOL_MAX_SIZE="
            f"{settings.DATABASE_POOL_MAX_SIZE} connections: under load some requests wait for one and are"
            " answered 503", "W023",
        ))
    if not probe:
        return issues
    # Every web process's full pool, and one connection for the task worker of `make serve`.
    wanted = settings.WEB_WORKERS * settings.DATABASE_POOL_MAX_SIZE + 1
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW max_connections")
            allowed = int(cursor.fetchone()[0])
    except DatabaseError:
        return issues  # the database check reports an unreachable server
    if wanted > allowed:
        issues.append(ConfigIssue(
            WARNING, "DATABASE_POOL_MAX_SIZE",
            f"WEB_WORKERS={settings.WEB_WORKERS} × DATABASE_POOL_MAX_SIZE={settings.DATABASE_POOL_MAX_SIZE} + a task"
            f" worker can ask for {wanted} connections from this host; the server accepts {allowed}"
            " (max_connections) from all its clients", "W024", system_check=False,
        ))
    return issues


def _statsd_issues(*, probe: bool) -> list[ConfigIssue]:
    """StatsD (STATSD_HOST): a prefix the line protocol cannot carry, a host that does not resolve."""
    if not settings.STATSD_HOST:
        return [ConfigIssue(INFO, "STATSD_HOST", "StatsD disabled (metrics are served at /api/metrics only)")]
    issues = []
    if not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", settings.STATSD_PREFIX):
        issues.append(ConfigIssue(
            ERROR, "STATSD_PREFIX",
            f"{settings.STATSD_PREFIX!r}: use letters, digits, '_' and '-' in dot-separated parts"
            " (':', '|' and '@' break the StatsD line format)", "E021",
        ))
    if not probe:
        return issues
    try:
        socket.getaddrinfo(settings.STATSD_HOST, settings.STATSD_PORT, socket.AF_INET, socket.SOCK_DGRAM)
    except OSError as exc:
        issues.append(ConfigIssue(
            WARNING, "STATSD_HOST", f"{settings.STATSD_HOST!r} does not resolve ({exc}): no metric reaches StatsD",
            "W022", system_check=False,
        ))
    return issues


def _writable_dir_problem(path: Path) -> str | None:
    """Why `path` cannot hold our files, or None; a missing directory is fine if its parent is writable."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None


def _storage_issues() -> list[ConfigIssue]:
    issues = []
    for name, code in (("DATA_DIR", "E009"), ("MEDIA_ROOT", "E010")):
        if problem := _writable_dir_problem(Path(getattr(settings, name))):
            issues.append(ConfigIssue(ERROR, name, problem, code))
    return issues


def _image_issues() -> list[ConfigIssue]:
    if (settings.IMAGE_MIN_WIDTH > settings.IMAGE_RECOMMENDED_WIDTH
            or settings.IMAGE_MIN_HEIGHT > settings.IMAGE_RECOMMENDED_HEIGHT):
        return [ConfigIssue(
            WARNING, "IMAGE_MIN_WIDTH", "the minimum resolution is above the recommended one", "W007"
        )]
    return []


def _decode_issues() -> list[ConfigIssue]:
    issues = []
    budget = settings.IMAGE_DECODE_BUDGET_BYTES
    # The largest accepted image decoded in RGBA (4 bytes a pixel) and a sixteenth for its reduced copies,
    # or a progressive 4:4:4 JPEG of that size (2 bytes per coefficient, three components) at 1/8 scale.
    pixels = settings.IMAGE_MAX_PIXELS
    largest = max(pixels * 4 * 17 // 16, pixels * 6 + pixels * 4 // 64 * 2)
    if budget < largest:
        issues.append(ConfigIssue(
            WARNING, "IMAGE_DECODE_BUDGET_MB",
            f"{budget // 2**20} MB is less than the {-(-largest // 2**20)} MB the largest accepted image"
            " (IMAGE_MAX_PIXELS in RGBA, or a progressive JPEG) needs to decode: such uploads are refused with"
            " 503", "W010",
        ))
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 0
    if memory and budget > memory:
        issues.append(ConfigIssue(
            WARNING, "IMAGE_DECODE_BUDGET_MB",
            f"{budget // 2**20} MB is more than this host's {memory // 2**20} MB of memory:"
            " one process' decoding can make the host swap", "W011",
        ))
    return issues


def config_issues(*, probe: bool = True) -> list[ConfigIssue]:
    """Every finding about the current settings, errors first.

    With `probe`, also what only asking outside is found out by (a name lookup, the database server's
    connection limit): `check_config` probes, the system checks run on every manage.py command do not.
    """
    issues = [
        *_generation_issues(), *_publishing_issues(), *_security_issues(), *_proxy_issues(),
        *_webhook_issues(), *_storage_issues(), *_image_issues(), *_webhook_schedule_issues(),
        *_web_thread_issues(probe=probe), *_statsd_issues(probe=probe), *_decode_issues(),
    ]
    order = {ERROR: 0, WARNING: 1, INFO: 2}
    return sorted(issues, key=lambda issue: order[issue.level])


def config_summary() -> dict[str, Any]:
    """Which integrations the settings enable."""
    return {
        "generation_backend": settings.GENERATION_BACKEND,
        "printify_enabled": bool(settings.PRINTIFY_API_KEY and settings.PRINTIFY_SHOP_ID),
        "runpod_enabled": bool(settings.RUNPOD_API_KEY and settings.RUNPOD_ENDPOINT_ID),
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "shared_cache": bool(settings.REDIS_URL),
        "data_dir": str(settings.DATA_DIR),
    }


@checks.register("pod_gateway")
def check_configuration(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The configuration findings as Django system checks (errors stop `runserver`, `migrate`, …)."""
    kinds = {ERROR: checks.Error, WARNING: checks.Warning}
    return [
        kinds[issue.level](f"{issue.setting}: {issue.message}", id=f"pod_gateway.{issue.code}")
        for issue in config_issues(probe=False)
        if issue.level in kinds and issue.system_check
    ]
