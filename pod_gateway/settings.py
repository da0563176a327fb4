"""POD Gateway settings.

Every value comes from the environment (a `.env` file in the project root is read first) with an
embedded default, so `make run` works from a fresh clone. A malformed value stops the process at
start with a message naming the variable.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from datetime import date
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env")


# --- Environment parsing -------------------------------------------------------------------------

def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_number(name: str, default: float, *, minimum: float = 0, kind: type = float):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a {kind.__name__}, not {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {raw!r}")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")
PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def env_rate(name: str, default: str) -> tuple[int, int]:
    """Parse `N/period` (period s|m|h|d, optionally with a multiplier: `5/10m`) into (N, seconds)."""
    raw = env_str(name, default)
    match = RATE_RE.match(raw)
    if not match or int(match.group(1)) < 1:
        raise ImproperlyConfigured(f"{name} must look like 100/h (N/period, period s|m|h|d), not {raw!r}")
    multiplier = int(match.group(2) or 1)
    return int(match.group(1)), multiplier * PERIOD_SECONDS[match.group(3)]


# --- Core ----------------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", False)
DATA_DIR = Path(env_str("DATA_DIR") or BASE_DIR / "var").resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else a random key made once and kept in DATA_DIR."""
    if key := env_str("SECRET_KEY"):
        return key
    path = DATA_DIR / "secret_key"
    try:
        # O_EXCL: when several processes start at once exactly one writes the key, the others read it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):
            if key := path.read_text().strip():
                return key
            time.sleep(0.02)
        raise ImproperlyConfigured(f"{path} is empty: delete it or set SECRET_KEY") from None
    key = secrets.token_urlsafe(50)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL").rstrip("/")

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
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns on every request without it (before collectstatic)
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

DATABASE_URL = env_str("DATABASE_URL")
# The web server and the worker write at the same time. WAL lets readers proceed during a write;
# IMMEDIATE takes the write lock when a transaction starts (so it waits on the busy timeout instead
# of failing on a lock upgrade); the timeout absorbs the waits.
SQLITE_OPTIONS = {
    "timeout": 30,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
# Django's SQLite backend that knows SQLite's real parameter limit, so bulk inserts of a 500-image
# batch are not split into several statements (see pod_gateway/db/sqlite3/base.py).
SQLITE_ENGINE = "core.db.sqlite3"
if DATABASE_URL:
    try:
        DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        DATABASES["default"]["ENGINE"] = SQLITE_ENGINE
        DATABASES["default"]["OPTIONS"] = dict(SQLITE_OPTIONS)
        DATABASES["default"]["CONN_MAX_AGE"] = 0
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

REDIS_URL = env_str("REDIS_URL")
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
    }
)
RATELIMIT_USE_CACHE = "ratelimit"


# --- Background tasks ----------------------------------------------------------------------------

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# A running task whose worker has not sent a heartbeat for this long is handed to another worker.
WORKER_HEARTBEAT_SECONDS = env_number("WORKER_HEARTBEAT_SECONDS", 5.0, minimum=0.1)
WORKER_STALE_SECONDS = env_number("WORKER_STALE_SECONDS", 60.0, minimum=0.5)


# --- Authentication ------------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/admin/login/"


# --- Generation ----------------------------------------------------------------------------------

GENERATION_BACKENDS = ("procedural", "comfyui", "runpod")
GENERATION_BACKEND = env_str("GENERATION_BACKEND", "procedural")
if GENERATION_BACKEND not in GENERATION_BACKENDS:
    raise ImproperlyConfigured(
        f"GENERATION_BACKEND must be one of {', '.join(GENERATION_BACKENDS)}, not {GENERATION_BACKEND!r}"
    )
COMFYUI_API_URL = env_str("COMFYUI_API_URL", "http://127.0.0.1:8188").rstrip("/")
COMFYUI_CHECKPOINT = env_str("COMFYUI_CHECKPOINT", "flux1-dev-fp8.safetensors")
RUNPOD_API_KEY = env_str("RUNPOD_API_KEY")
RUNPOD_ENDPOINT_ID = env_str("RUNPOD_ENDPOINT_ID")
RUNPOD_API_URL = env_str("RUNPOD_API_URL", "https://api.runpod.ai/v2").rstrip("/")
# How often a remote job is polled, and how long it may take in all before it is given up.
GENERATION_POLL_SECONDS = env_number("GENERATION_POLL_SECONDS", 2.0, minimum=0.01)
GENERATION_TIMEOUT_SECONDS = env_number("GENERATION_TIMEOUT_SECONDS", 1800.0, minimum=1)
HTTP_TIMEOUT_SECONDS = env_number("HTTP_TIMEOUT_SECONDS", 30.0, minimum=0.1)
# Backend HTTP calls: retries of connection errors, 429 and 5xx, with exponential backoff from this base.
HTTP_RETRIES = env_number("HTTP_RETRIES", 4, kind=int)
HTTP_RETRY_BACKOFF_SECONDS = env_number("HTTP_RETRY_BACKOFF_SECONDS", 0.5)


# --- Image quality -------------------------------------------------------------------------------

IMAGE_MIN_WIDTH = env_number("IMAGE_MIN_WIDTH", 2400, kind=int)
IMAGE_MIN_HEIGHT = env_number("IMAGE_MIN_HEIGHT", 2400, kind=int)
IMAGE_RECOMMENDED_WIDTH = env_number("IMAGE_RECOMMENDED_WIDTH", 4500, kind=int)
IMAGE_RECOMMENDED_HEIGHT = env_number("IMAGE_RECOMMENDED_HEIGHT", 5400, kind=int)
IMAGE_MIN_DPI = env_number("IMAGE_MIN_DPI", 300, kind=int)
IMAGE_MAX_BYTES = env_number("IMAGE_MAX_MB", 50, kind=int) * 1024 * 1024
# Pillow refuses images with more pixels than this (decompression bombs).
IMAGE_MAX_PIXELS = env_number("IMAGE_MAX_PIXELS", 8192 * 8192, kind=int)
THUMBNAIL_SIZE = env_number("THUMBNAIL_SIZE", 512, kind=int)


# --- Publishing ----------------------------------------------------------------------------------

PRINTIFY_API_KEY = env_str("PRINTIFY_API_KEY")
PRINTIFY_SHOP_ID = env_str("PRINTIFY_SHOP_ID")
PRINTIFY_API_URL = env_str("PRINTIFY_API_URL", "https://api.printify.com/v1").rstrip("/")
EXPORT_DIR = DATA_DIR / "exports"
PRINTIFY_TIMEOUT_SECONDS = env_number("PRINTIFY_TIMEOUT_SECONDS", 30.0, minimum=0.1)
# urllib3 Retry for 429/5xx/connection errors: attempts, exponential backoff factor (seconds) with
# jitter, and the longest Retry-After a worker will sleep through before giving up the attempt.
PRINTIFY_RETRIES = env_number("PRINTIFY_RETRIES", 5, kind=int)
PRINTIFY_BACKOFF_SECONDS = env_number("PRINTIFY_BACKOFF_SECONDS", 1.0)
PRINTIFY_RETRY_AFTER_MAX = env_number("PRINTIFY_RETRY_AFTER_MAX", 60, kind=int)
# Printify allows 600 requests/min and 200 publishes per 30 min; a batch paces itself below these.
PRINTIFY_REQUESTS_PER_MINUTE = env_number("PRINTIFY_REQUESTS_PER_MINUTE", 600, minimum=1, kind=int)
PRINTIFY_PUBLISHES_PER_30_MIN = env_number("PRINTIFY_PUBLISHES_PER_30_MIN", 200, minimum=1, kind=int)
# Where a created product can be seen; {product_id} and {shop_id} are filled in.
PRINTIFY_PRODUCT_URL = env_str("PRINTIFY_PRODUCT_URL", "https://printify.com/app/product-details/{product_id}")
# How long a signed print-file URL handed to Printify (upload by URL) stays valid.
PRINT_FILE_URL_MAX_AGE = env_number("PRINT_FILE_URL_MAX_AGE", 86400, minimum=60, kind=int)


# --- API -----------------------------------------------------------------------------------------

API_VERSIONS = ("v1", "v2")
API_DEPRECATED_VERSIONS = env_list("API_DEPRECATED_VERSIONS")
if set(API_DEPRECATED_VERSIONS) - set(API_VERSIONS):
    raise ImproperlyConfigured(f"API_DEPRECATED_VERSIONS may only name {', '.join(API_VERSIONS)}")


def env_sunsets(name: str) -> dict:
    """Parse `v1=2027-06-30,v2=…` into {version: date}: the Sunset header of a deprecated version."""
    sunsets = {}
    for item in env_list(name):
        version, _, day = item.partition("=")
        try:
            sunsets[version.strip()] = date.fromisoformat(day.strip())
        except ValueError:
            raise ImproperlyConfigured(f"{name} must look like v1=2027-06-30, not {item!r}") from None
        if version.strip() not in API_VERSIONS:
            raise ImproperlyConfigured(f"{name} names an unknown version {version.strip()!r}")
    return sunsets


API_SUNSET = env_sunsets("API_SUNSET")
# A refused CSRF check under /api/ answers in the API's error shape, not Django's HTML page.
CSRF_FAILURE_VIEW = "api.views.csrf_failure"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its `WWW-Authenticate: Token` challenge makes anonymous requests 401, not 403.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.ActionPermission"],
    "DEFAULT_VERSIONING_CLASS": "api.versioning.PathVersioning",
    "ALLOWED_VERSIONS": API_VERSIONS,
    "DEFAULT_VERSION": API_VERSIONS[-1],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
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
    },
}
RATE_LIMITS = {
    "generation": env_rate("RATE_LIMIT_GENERATION", "10/h"),
    "publishing": env_rate("RATE_LIMIT_PUBLISHING", "50/h"),
    "approval": env_rate("RATE_LIMIT_APPROVAL", "100/h"),
    "read": env_rate("RATE_LIMIT_READ", "1000/h"),
}
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
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
METRICS_TOKEN = env_str("METRICS_TOKEN")
# Every process (gunicorn workers, task workers) writes its samples here; /api/metrics adds them up.
# Set before prometheus_client is first imported (django_prometheus imports it when apps load).
PROMETHEUS_MULTIPROC_DIR = Path(env_str("PROMETHEUS_MULTIPROC_DIR") or DATA_DIR / "prometheus")
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(PROMETHEUS_MULTIPROC_DIR)
# A stored response is replayed for this long; a claim whose request never finished is freed after the other.
IDEMPOTENCY_TTL = env_number("IDEMPOTENCY_TTL_SECONDS", 86400, minimum=60, kind=int)
IDEMPOTENCY_RUNNING_TIMEOUT = env_number("IDEMPOTENCY_RUNNING_TIMEOUT_SECONDS", 600, minimum=1, kind=int)
# Admin login attempts per client IP and, separately, per username (django-ratelimit).
ADMIN_LOGIN_RATE = env_rate("RATE_LIMIT_ADMIN_LOGIN", "10/5m")


# --- Webhooks ------------------------------------------------------------------------------------

WEBHOOK_ALLOW_PRIVATE_URLS = env_bool("WEBHOOK_ALLOW_PRIVATE_URLS", False)
WEBHOOK_TIMEOUT = env_number("WEBHOOK_TIMEOUT", 10.0, minimum=0.1)
try:
    WEBHOOK_RETRY_DELAYS = [
        int(value) for value in env_list("WEBHOOK_RETRY_DELAYS", "5,30,120,600,1800,7200,21600,43200")
    ]
except ValueError:
    raise ImproperlyConfigured("WEBHOOK_RETRY_DELAYS must be comma-separated whole seconds") from None


# --- Logging -------------------------------------------------------------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOG_FORMAT = env_str("LOG_FORMAT", "text")
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}")

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
