"""POD Gateway settings.

Every value comes from the environment, read with environs (a `.env` file in the project root is
read first; the environment wins over it), with an embedded default so `make run` works from a fresh
clone. A blank value means the default. A malformed value stops the process at start with a message
naming the variable.

Importing this module writes nothing: the data directory, its subdirectories and the secret key file
are made by `core.datadir.prepare()`, which the processes that serve call before Django starts.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import secrets
from datetime import date, timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from environs import Env, EnvError, ValidationError, validate

from core import datadir

BASE_DIR = Path(__file__).resolve().parent.parent


# --- Reading the environment ---------------------------------------------------------------------

class GatewayEnv(Env):
    """environs' reader where surrounding whitespace is ignored and a blank value means the default.

    `KEY=` in a `.env` file (or an exported empty variable) has always meant "not set" here; environs
    alone would hand the empty string to the parser and refuse it for numbers and booleans.
    """

    def _get_value(self, env_key: str, default):  # environs' one lookup of a raw value
        value = super()._get_value(env_key, default)
        if isinstance(value, str):
            value = value.strip()
            if not value:
                return default
        return value


env = GatewayEnv()
env.read_env(BASE_DIR / ".env", recurse=False)

API_VERSIONS = ("v1", "v2")
# `N/period`: period s|m|h|d or DRF's second|minute|hour|day, optionally with a multiplier (`5/10m`).
PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "second": 1, "minute": 60, "hour": 3600, "day": 86400}
RATE_RE = re.compile(r"(\d+)\s*/\s*(\d*)\s*(second|minute|hour|day|s|m|h|d)")


@env.parser_for("rate")
def _parse_rate(value: str) -> tuple[int, int]:
    """`1000/hour`, `100/h` or `5/10m` as (requests, window in seconds)."""
    match = RATE_RE.fullmatch(value.strip().lower())
    if not match or int(match.group(1)) < 1 or int(match.group(2) or 1) < 1:
        raise ValidationError(
            "must look like 100/hour or 100/h (N/period, period s|m|h|d or second|minute|hour|day, "
            f"optionally with a multiplier: 5/10m), not {value!r}"
        )
    return int(match.group(1)), int(match.group(2) or 1) * PERIOD_SECONDS[match.group(3)]


@env.parser_for("names")
def _parse_names(value: str, *, allowed: tuple[str, ...] | None = None) -> list[str]:
    """A comma-separated list: spaces around items ignored, empty items dropped (`a, b,` is [a, b])."""
    names = [item.strip() for item in value.split(",") if item.strip()]
    if allowed is not None and (unknown := [name for name in names if name not in allowed]):
        raise ValidationError(f"may only name {', '.join(allowed)}, not {', '.join(unknown)}")
    return names


@env.parser_for("sunsets")
def _parse_sunsets(value: str) -> dict[str, date]:
    """`v1=2027-06-30,v2=…` as {version: date}: the Sunset header of a deprecated version."""
    sunsets = {}
    for item in _parse_names(value):
        version, _, day = (part.strip() for part in item.partition("="))
        try:
            sunsets[version] = date.fromisoformat(day)
        except ValueError:
            raise ValidationError(f"must look like v1=2027-06-30, not {item!r}") from None
        if version not in API_VERSIONS:
            raise ValidationError(f"names an unknown version {version!r} (known: {', '.join(API_VERSIONS)})")
    return sunsets


def at_least(minimum: float) -> validate.Range:
    return validate.Range(min=minimum, error="must be at least {min}")


# --- Core ----------------------------------------------------------------------------------------

DEBUG = env.bool("DEBUG", False)
# The data directory (database, media, exports, metrics files) and where prometheus_client's files go.
DATA_DIR, PROMETHEUS_MULTIPROC_DIR = datadir.locate(env)

# SECRET_KEY from the environment, else the random key `core.datadir.prepare()` keeps in DATA_DIR, else
# (nobody prepared DATA_DIR yet: a one-off manage.py command) a random key for this process alone.
SECRET_KEY_FILE = DATA_DIR / datadir.SECRET_KEY_FILE
SECRET_KEY = env.str("SECRET_KEY", "")
SECRET_KEY_SOURCE = "environment"
if not SECRET_KEY:
    try:
        SECRET_KEY = datadir.read_secret_key(DATA_DIR)
    except ValueError as exc:
        raise ImproperlyConfigured(str(exc)) from None
    SECRET_KEY_SOURCE = "file"
    if SECRET_KEY is None:
        SECRET_KEY, SECRET_KEY_SOURCE = secrets.token_urlsafe(50), "process"

ALLOWED_HOSTS = env.names("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", "").rstrip("/")

# --- Applications, middleware, templates ------------------------------------------------------

INSTALLED_APPS = [
    # Our apps first: `core` overrides django_tasks_db's `db_worker` with a crash-safe worker.
    "core",
    "images",
    "publishing",
    "webhooks",
    # Cross-cutting API machinery (errors, versioning, throttling, idempotency) that no domain app owns.
    "api",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "django_prometheus",
    "django_tasks",
    "django_tasks_db",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # Outermost of ours: every response (errors and CORS preflights too) carries the request id.
    "api.middleware.RequestIdMiddleware",
    "api.middleware.ApiMetricsMiddleware",
    "api.middleware.NulPathMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "api.versioning.DeprecationMiddleware",
    # Before anything reads the body (CSRF, idempotency, views): an oversized one is refused unread.
    "api.middleware.BodySizeLimitMiddleware",
    # Every JSON body under /api/ parsed once, a malformed one refused (400) whoever sends it.
    "api.middleware.JsonBodyMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "api.middleware.RateLimitHeadersMiddleware",
    # After authentication: a key belongs to the user who sent it.
    "api.idempotency.IdempotencyMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "pod_gateway.urls"
WSGI_APPLICATION = "pod_gateway.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Made by core.datadir.prepare() (WhiteNoise warns on every request while it is missing).
STATIC_ROOT = DATA_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_URL = "media/"
MEDIA_ROOT = DATA_DIR / "media"
# Uploads larger than this are streamed to a temporary file rather than held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 60 * 1024 * 1024


# --- Database ------------------------------------------------------------------------------------

# Empty: SQLite in DATA_DIR. Otherwise a database URL (dj-database-url), e.g. postgres://user@host:5432/db.
DATABASE_URL = env.str("DATABASE_URL", "")
# The web server and the worker write at the same time. WAL lets readers proceed during a write;
# IMMEDIATE takes the write lock when a transaction starts (so it waits on the busy timeout instead
# of failing on a lock upgrade); the timeout absorbs the waits.
SQLITE_OPTIONS = {
    "timeout": 30,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
# Django's SQLite backend that knows SQLite's real parameter limit, so bulk inserts of a 500-image
# batch are not split into several statements (see core/db/sqlite3/base.py).
SQLITE_ENGINE = "core.db.sqlite3"
# Django's PostgreSQL backend reading timestamps with psycopg's compiled loader (core/db/postgresql/base.py).
POSTGRESQL_ENGINE = "core.db.postgresql"
if DATABASE_URL:
    DATABASES = {"default": env.dj_db_url("DATABASE_URL", conn_max_age=60, conn_health_checks=True)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        DATABASES["default"]["ENGINE"] = SQLITE_ENGINE
        DATABASES["default"]["OPTIONS"] = dict(SQLITE_OPTIONS)
        DATABASES["default"]["CONN_MAX_AGE"] = 0
    elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"]["ENGINE"] = POSTGRESQL_ENGINE
        # The server binds the parameters (psycopg's client-side binding quoted each value into the SQL
        # in Python), and a statement a connection has run five times is prepared: the same few
        # statements serve every request, so the server stops parsing them each time. Each run is still
        # planned for its own values (plan_cache_mode): a plan made once for any value, which PostgreSQL
        # switches to after five runs when it looks no dearer, cannot use what only the values tell (a
        # partial index, how many rows a search's words match). DATABASE_PREPARED_STATEMENTS=false for a
        # connection pooler that keeps no prepared statements (PgBouncer before 1.21 in transaction
        # mode); then no startup option is sent either.
        options = DATABASES["default"].setdefault("OPTIONS", {})
        options["server_side_binding"] = True
        options["prepare_threshold"] = None
        if env.bool("DATABASE_PREPARED_STATEMENTS", True):
            options["prepare_threshold"] = 5
            options["options"] = f"{options.get('options', '')} -c plan_cache_mode=force_custom_plan".strip()
else:
    DATABASES = {
        "default": {
            "ENGINE": SQLITE_ENGINE,
            "NAME": DATA_DIR / "db.sqlite3",
            "OPTIONS": dict(SQLITE_OPTIONS),
        }
    }
if DATABASES["default"]["ENGINE"] == SQLITE_ENGINE:
    # A file (not memory) so that worker processes started by tests share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-db.sqlite3")}


# --- Cache (shared across processes when REDIS_URL is set) --------------------------------------

REDIS_URL = env.str("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# django-ratelimit (admin login) needs a cache every worker shares: Redis, else files in DATA_DIR.
CACHES["ratelimit"] = (
    dict(CACHES["default"], KEY_PREFIX="ratelimit")
    if REDIS_URL
    else {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": DATA_DIR / "cache" / "ratelimit",
        # Past MAX_ENTRIES files the file cache deletes a random third of them, counters still counting
        # included: at Django's default of 300, a spray of logins from a few hundred addresses would reset
        # the others' counts. Each counter is a small file that expires with its window.
        "OPTIONS": {"MAX_ENTRIES": 100_000},
    }
)
RATELIMIT_USE_CACHE = "ratelimit"


# --- Background tasks ----------------------------------------------------------------------------

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# A running task whose worker has not sent a heartbeat for this long is handed to another worker.
WORKER_HEARTBEAT_SECONDS = env.float("WORKER_HEARTBEAT_SECONDS", 5.0, validate=at_least(0.1))
WORKER_STALE_SECONDS = env.float("WORKER_STALE_SECONDS", 60.0, validate=at_least(0.5))


# --- Authentication ------------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/admin/login/"


# --- Generation ----------------------------------------------------------------------------------

GENERATION_BACKENDS = ("procedural", "comfyui", "runpod")
GENERATION_BACKEND = env.str("GENERATION_BACKEND", "procedural", validate=validate.OneOf(GENERATION_BACKENDS))
COMFYUI_API_URL = env.str("COMFYUI_API_URL", "http://127.0.0.1:8188").rstrip("/")
COMFYUI_CHECKPOINT = env.str("COMFYUI_CHECKPOINT", "flux1-dev-fp8.safetensors")
RUNPOD_API_KEY = env.str("RUNPOD_API_KEY", "")
RUNPOD_ENDPOINT_ID = env.str("RUNPOD_ENDPOINT_ID", "")
RUNPOD_API_URL = env.str("RUNPOD_API_URL", "https://api.runpod.ai/v2").rstrip("/")
# How often a remote job is polled, and how long it may take in all before it is given up.
GENERATION_POLL_SECONDS = env.float("GENERATION_POLL_SECONDS", 2.0, validate=at_least(0.01))
GENERATION_TIMEOUT_SECONDS = env.float("GENERATION_TIMEOUT_SECONDS", 1800.0, validate=at_least(1))
HTTP_TIMEOUT_SECONDS = env.float("HTTP_TIMEOUT_SECONDS", 30.0, validate=at_least(0.1))
# Backend HTTP calls: retries of connection errors, 429 and 5xx, with exponential backoff from this base.
HTTP_RETRIES = env.int("HTTP_RETRIES", 4, validate=at_least(0))
HTTP_RETRY_BACKOFF_SECONDS = env.float("HTTP_RETRY_BACKOFF_SECONDS", 0.5, validate=at_least(0))


# --- Image quality -------------------------------------------------------------------------------

IMAGE_MIN_WIDTH = env.int("IMAGE_MIN_WIDTH", 2400, validate=at_least(0))
IMAGE_MIN_HEIGHT = env.int("IMAGE_MIN_HEIGHT", 2400, validate=at_least(0))
IMAGE_RECOMMENDED_WIDTH = env.int("IMAGE_RECOMMENDED_WIDTH", 4500, validate=at_least(0))
IMAGE_RECOMMENDED_HEIGHT = env.int("IMAGE_RECOMMENDED_HEIGHT", 5400, validate=at_least(0))
IMAGE_MIN_DPI = env.int("IMAGE_MIN_DPI", 300, validate=at_least(0))
IMAGE_MAX_BYTES = env.int("IMAGE_MAX_MB", 50, validate=at_least(0)) * 1024 * 1024
# Pillow refuses images with more pixels than this (decompression bombs).
IMAGE_MAX_PIXELS = env.int("IMAGE_MAX_PIXELS", 8192 * 8192, validate=at_least(0))
THUMBNAIL_SIZE = env.int("THUMBNAIL_SIZE", 512, validate=at_least(0))

# --- Image decoding ------------------------------------------------------------------------------

# Decoded pixels one process may hold at once, shared by its threads: the largest accepted image fits
# (IMAGE_MAX_PIXELS in RGBA, 272 MB with its reduced copy; 392 MB as a progressive 4:4:4 JPEG), and three
# 4500x5400 RGB ones fit together. An intake that does not fit
# waits up to IMAGE_DECODE_WAIT_SECONDS for the budget, then is refused (an upload with 503 and Retry-After).
IMAGE_DECODE_BUDGET_BYTES = env.int("IMAGE_DECODE_BUDGET_MB", 400, validate=at_least(1)) * 1024 * 1024
IMAGE_DECODE_WAIT_SECONDS = env.float("IMAGE_DECODE_WAIT_SECONDS", 10.0, validate=at_least(0))


# --- Publishing ----------------------------------------------------------------------------------

PRINTIFY_API_KEY = env.str("PRINTIFY_API_KEY", "")
PRINTIFY_SHOP_ID = env.str("PRINTIFY_SHOP_ID", "")
PRINTIFY_API_URL = env.str("PRINTIFY_API_URL", "https://api.printify.com/v1").rstrip("/")
EXPORT_DIR = DATA_DIR / "exports"
PRINTIFY_TIMEOUT_SECONDS = env.float("PRINTIFY_TIMEOUT_SECONDS", 30.0, validate=at_least(0.1))
# urllib3 Retry for 429/5xx/connection errors: attempts, exponential backoff factor (seconds) with
# jitter, and the longest Retry-After a worker will sleep through before giving up the attempt.
PRINTIFY_RETRIES = env.int("PRINTIFY_RETRIES", 5, validate=at_least(0))
PRINTIFY_BACKOFF_SECONDS = env.float("PRINTIFY_BACKOFF_SECONDS", 1.0, validate=at_least(0))
PRINTIFY_RETRY_AFTER_MAX = env.int("PRINTIFY_RETRY_AFTER_MAX", 60, validate=at_least(0))
# Printify allows 600 requests/min and 200 publishes per 30 min; a batch paces itself below these.
PRINTIFY_REQUESTS_PER_MINUTE = env.int("PRINTIFY_REQUESTS_PER_MINUTE", 600, validate=at_least(1))
PRINTIFY_PUBLISHES_PER_30_MIN = env.int("PRINTIFY_PUBLISHES_PER_30_MIN", 200, validate=at_least(1))
# Where a created product can be seen; {product_id} and {shop_id} are filled in.
PRINTIFY_PRODUCT_URL = env.str("PRINTIFY_PRODUCT_URL", "https://printify.com/app/product-details/{product_id}")
# How long a signed print-file URL handed to Printify (upload by URL) stays valid.
PRINT_FILE_URL_MAX_AGE = env.int("PRINT_FILE_URL_MAX_AGE", 86400, validate=at_least(60))


# --- API -----------------------------------------------------------------------------------------

# API_VERSIONS is defined above, with the parsers that check version names.
API_DEPRECATED_VERSIONS = env.names("API_DEPRECATED_VERSIONS", "", allowed=API_VERSIONS)


def env_sunsets(name: str) -> dict[str, date]:
    """{version: date} from the variable `name`; ImproperlyConfigured (naming it) when malformed."""
    try:
        return env.sunsets(name, "")
    except EnvError as exc:
        raise ImproperlyConfigured(str(exc)) from None


API_SUNSET = env_sunsets("API_SUNSET")
# A refused CSRF check under /api/ answers in the API's error shape, not Django's HTML page.
CSRF_FAILURE_VIEW = "api.views.csrf_failure"

# On PostgreSQL each web process keeps the tokens it read, with their users and permissions, until the
# database notices a change to any of them (api.tokencache); off, every request reads its token.
API_TOKEN_CACHE = env.bool("API_TOKEN_CACHE", True)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its `WWW-Authenticate: Token` challenge makes anonymous requests 401, not 403.
        "api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.ActionPermission"],
    "DEFAULT_VERSIONING_CLASS": "api.versioning.PathVersioning",
    "ALLOWED_VERSIONS": API_VERSIONS,
    "DEFAULT_VERSION": API_VERSIONS[-1],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.JsonBodyParser"],
    # DRF's JSONRenderer output, encoded by orjson (api/renderers.py).
    "DEFAULT_RENDERER_CLASSES": ["api.renderers.FastJSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "api.exceptions.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.TierRateThrottle"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "POD Gateway API",
    "DESCRIPTION": (
        "Generate print-on-demand designs, review them and publish them as products. "
        "Authenticate with `Authorization: Token <key>` (`manage.py create_api_token`) or a session. "
        "v1 errors are `{error, code, details, request_id}` and lists are page-numbered; "
        "v2 errors are RFC 9457 `application/problem+json` and lists use cursors. "
        "These docs describe the version in `?version=` (the current one, v2, when absent)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ImageStatusEnum": "images.models.ImageStatus",
        "GenerationStatusEnum": "images.models.GenerationStatus",
        "ProductStatusEnum": "publishing.models.ProductStatus",
        "PlatformEnum": "publishing.models.Platform",
    },
}


# --- Rate limits ---------------------------------------------------------------------------------

RATE_LIMITS = {
    "generation": env.rate("RATE_LIMIT_GENERATION", "10/h"),
    "publishing": env.rate("RATE_LIMIT_PUBLISHING", "50/h"),
    "approval": env.rate("RATE_LIMIT_APPROVAL", "100/h"),
    "read": env.rate("RATE_LIMIT_READ", "1000/h"),
}
# Admin login attempts per client IP and, separately, per username (django-ratelimit).
ADMIN_LOGIN_RATE = env.rate("RATE_LIMIT_ADMIN_LOGIN", "10/5m")
# A stored response is replayed for this long; a claim whose request never finished is freed after the other.
IDEMPOTENCY_TTL = env.int("IDEMPOTENCY_TTL_SECONDS", 86400, validate=at_least(60))
IDEMPOTENCY_RUNNING_TIMEOUT = env.int("IDEMPOTENCY_RUNNING_TIMEOUT_SECONDS", 600, validate=at_least(1))


# --- Client addresses ----------------------------------------------------------------------------

# Proxies (IPs or CIDR networks, comma-separated) whose X-Forwarded-For is believed; none by default, so
# every client is the address it connects from (api/clientip.py). The API's rate limits and the admin
# login's (django-ratelimit) both key anonymous clients by that address.
@env.parser_for("networks")
def _parse_networks(value: str) -> list[str]:
    networks = []
    for item in _parse_names(value):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValidationError(f"must list IP addresses or networks (10.0.0.1, 10.0.0.0/8), not {item!r}") from None
    return networks


TRUSTED_PROXIES = env.networks("TRUSTED_PROXIES", "")
RATELIMIT_IP_META_KEY = "api.clientip.ratelimit_ip"


# --- CORS ----------------------------------------------------------------------------------------

CORS_ALLOWED_ORIGINS = env.names("CORS_ALLOWED_ORIGINS", "")
if "*" in CORS_ALLOWED_ORIGINS:
    # Credentials (session cookies) are allowed, and a wildcard origin with credentials is never safe.
    raise ImproperlyConfigured("CORS_ALLOWED_ORIGINS must list origins (https://app.example.com), not '*'")
CORS_ALLOW_CREDENTIALS = True
CORS_URLS_REGEX = r"^/api/.*$"
CORS_EXPOSE_HEADERS = [
    "X-Request-ID", "Location", "Retry-After", "Idempotent-Replayed", "Deprecation", "Sunset",
    "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit-Policy", "RateLimit",
]
CORS_ALLOW_HEADERS = [
    "accept", "authorization", "content-type", "user-agent", "x-csrftoken", "x-requested-with",
    "x-request-id", "idempotency-key",
]


# --- Metrics -------------------------------------------------------------------------------------

METRICS_TOKEN = env.str("METRICS_TOKEN", "")
# Every process (gunicorn workers, task workers) writes its samples to files in PROMETHEUS_MULTIPROC_DIR
# and /api/metrics adds them up. prometheus_client takes that mode from this environment variable
# when it is first imported (django_prometheus imports it while the apps load, after these settings),
# and needs the directory before its first metric is made. So the variable is set here, explicitly,
# when core.datadir.prepare() has made the directory; otherwise it is removed, and a process started
# on a data directory nobody prepared (a one-off manage.py command on a fresh clone) keeps its
# samples in memory instead of failing.
if PROMETHEUS_MULTIPROC_DIR.is_dir():
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(PROMETHEUS_MULTIPROC_DIR)
else:
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

# StatsD (core/metrics.py): with STATSD_HOST set, the pod_* counters and timings are also sent there over UDP,
# and each task worker sends the gauges every STATSD_GAUGE_SECONDS.
STATSD_HOST = env.str("STATSD_HOST", "").strip()
STATSD_PORT = env.int("STATSD_PORT", 8125, validate=validate.Range(min=1, max=65535))
STATSD_PREFIX = env.str("STATSD_PREFIX", "pod").strip().strip(".")
STATSD_GAUGE_SECONDS = env.float("STATSD_GAUGE_SECONDS", 10.0, validate=at_least(0.1))


# --- Webhooks ------------------------------------------------------------------------------------

# Receivers on loopback/private addresses (local development); never with DEBUG off (check_config warns).
WEBHOOK_ALLOW_PRIVATE_URLS = env.bool("WEBHOOK_ALLOW_PRIVATE_URLS", False)
# Seconds one attempt may take (connect and read).
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", 10.0, validate=at_least(0.1))
# Whole seconds between tries, comma-separated: n values mean 1 + n attempts (about three days by default).
WEBHOOK_RETRY_DELAYS = env.list(
    "WEBHOOK_RETRY_DELAYS", [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400], subcast=int
)
# How long the secret before a rotation still signs (seconds, or 24h / 1d).
WEBHOOK_ROTATION_GRACE = env.timedelta("WEBHOOK_ROTATION_GRACE", timedelta(hours=24)).total_seconds()
# Deliveries of one subscription being sent at once, across all workers: a slow receiver holds no more.
WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION = env.int(
    "WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION", 10, validate=at_least(1)
)
# A subscription whose deliveries all failed for this long (and at least 10 times) is disabled.
WEBHOOK_DISABLE_AFTER = env.timedelta("WEBHOOK_DISABLE_AFTER", timedelta(days=5)).total_seconds()
# Deliveries and attempts older than this many days are pruned (daily by the worker, prune_webhooks).
WEBHOOK_RETENTION_DAYS = env.int("WEBHOOK_RETENTION_DAYS", 30, validate=at_least(1))
# Sending threads per worker process, and how often an idle dispatcher looks for new events (seconds).
WEBHOOK_CONCURRENCY = env.int("WEBHOOK_CONCURRENCY", 100, validate=at_least(1))
WEBHOOK_POLL_SECONDS = env.float("WEBHOOK_POLL_SECONDS", 0.2, validate=at_least(0.01))


# --- Logging -------------------------------------------------------------------------------------

# A level name (any case) or number, as logging knows them.
LOG_LEVEL = env.log_level("LOG_LEVEL", logging.INFO)
LOG_FORMAT = env.str("LOG_FORMAT", "text", validate=validate.OneOf(["text", "json"]))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # The filter puts the current request's id on every record, whichever logger wrote it.
    "filters": {"request_id": {"()": "core.logging.RequestIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "core.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Our access log already has one line per request; keep django.request for 5xx tracebacks only.
        "django.request": {"level": "ERROR"},
    },
}


# --- Serving (pod_gateway.runner, pod_gateway.server) ----------------------------------------------

# gunicorn's asyncio ASGI worker: a slow or stalled client holds a socket, never a thread. A request
# whose headers are not complete this long after its connection opened is dropped (later requests on a
# kept-alive connection: gunicorn's 5 s keep-alive), one whose body has not fully arrived this long
# after its headers is answered 408.
SERVER_HEADER_TIMEOUT_SECONDS = env.float("SERVER_HEADER_TIMEOUT_SECONDS", 10.0, validate=at_least(0.1))
SERVER_BODY_TIMEOUT_SECONDS = env.float("SERVER_BODY_TIMEOUT_SECONDS", 60.0, validate=at_least(0.1))
# Web worker processes of `make serve` (`make run` has one); blank: 2 × cores + 1.
WEB_WORKERS = env.int("WEB_WORKERS", 0, validate=at_least(0)) or 2 * (os.cpu_count() or 1) + 1
# After SIGTERM, web workers finish the requests they accepted and task workers hand back or finish
# their task within these many seconds; then they are ended.
SERVER_GRACEFUL_TIMEOUT_SECONDS = env.float("SERVER_GRACEFUL_TIMEOUT_SECONDS", 30.0, validate=at_least(1))
WORKER_STOP_GRACE_SECONDS = env.float("WORKER_STOP_GRACE_SECONDS", 30.0, validate=at_least(1))
# Threads per web worker process that run requests (pod_gateway.asgi.GatewayHandler): the requests one
# process works on at once; more wait for a free thread (their sockets cost no thread meanwhile).
WEB_THREADS = env.int("WEB_THREADS", 16, validate=at_least(1))
# Under ASGI (pod_gateway.asgi says so) the requests run on that fixed pool of threads, so on SQLite each
# thread keeps its connection between requests (a new one costs more than a small request: SQLite reads
# the schema again). On PostgreSQL the web processes take their connections from a psycopg pool instead
# (Django's `pool` option, which wants CONN_MAX_AGE = 0), at most DATABASE_POOL_MAX_SIZE per web process.
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", 20, validate=at_least(1))
if os.environ.get("POD_SERVER_INTERFACE") == "asgi":
    if DATABASES["default"]["ENGINE"] == SQLITE_ENGINE:
        DATABASES["default"]["CONN_MAX_AGE"] = None
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = 0
    if DATABASES["default"]["ENGINE"] == POSTGRESQL_ENGINE:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1, "max_size": DATABASE_POOL_MAX_SIZE, "timeout": 10,
        }

# A request naming a host outside ALLOWED_HOSTS is the client's mistake (or a scan): one warning line,
# no traceback (Django logs it as an error with one). Under /api/ it is answered 400 in the API's shape.
LOGGING["filters"]["one_line_warning"] = {"()": "core.logging.OneLineWarning"}
LOGGING["loggers"]["django.security.DisallowedHost"] = {"filters": ["one_line_warning"]}
