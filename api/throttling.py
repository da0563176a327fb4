"""Rate limits per tier (CONTRACT §4): a sliding-window log per user (or client IP when anonymous).

With `REDIS_URL` the log is a Redis sorted set updated by one Lua script, so check-and-record is one
atomic step on a single clock (Redis `TIME`) and exact across any number of processes and hosts.
Without Redis the log lives in the database: the bucket row is locked (`SELECT … FOR UPDATE` on
PostgreSQL; SQLite's `BEGIN IMMEDIATE` serialises writers) while its hits are counted and the new one
is inserted, so it stays exact across gunicorn workers of one installation. Django's local-memory cache
would not: each worker would keep its own count.

The throttle stores what it decided on the Django request (`request.rate_limit`);
`api.middleware.RateLimitHeadersMiddleware` turns that into the headers of every limited response. A
view may read Redis's answer later, once it has sent its own reads (`ReadsBeforeRateLimitMixin`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.http import HttpRequest
from rest_framework.exceptions import Throttled
from rest_framework.throttling import BaseThrottle

from api.clientip import client_ip
from api.models import RateLimitBucket, RateLimitHit

logger = logging.getLogger(__name__)

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Decision:
    """The outcome of one hit on a tier's window, with everything the headers need."""

    tier: str
    limit: int
    window: int
    allowed: bool
    remaining: int
    # Seconds until the oldest counted request leaves the window (a slot frees up).
    reset_after: float
    now: float

    @property
    def reset_seconds(self) -> int:
        return max(1, math.ceil(self.reset_after))

    @property
    def reset_at(self) -> int:
        return math.ceil(self.now + self.reset_after)

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
            "RateLimit-Policy": f'"{self.tier}";q={self.limit};w={self.window}',
            "RateLimit": f'"{self.tier}";r={self.remaining};t={self.reset_seconds}',
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_seconds)
        return headers


class RateLimitExceeded(Throttled):
    """429 with the tier's facts; the API exception handler reads `error_code` and `error_details`."""

    error_code = "RATE_LIMIT_EXCEEDED"

    def __init__(self, decision: Decision) -> None:
        retry_after = decision.reset_seconds
        # `wait` is set after DRF's __init__, which would otherwise append its own "Expected available in
        # N seconds." to a message that already says when to retry.
        super().__init__(
            detail=(
                f"Rate limit exceeded for the {decision.tier} tier ({decision.limit} requests per "
                f"{decision.window} s); retry in {retry_after} s"
            ),
        )
        self.wait = retry_after
        self.error_details = {
            "tier": decision.tier,
            "limit": decision.limit,
            "window_seconds": decision.window,
            "retry_after": retry_after,
        }


# --- The two sliding-window logs ----------------------------------------------------------------

# KEYS[1] the bucket; ARGV limit, window (µs), a unique member. Returns allowed, count, now, oldest (integer µs).
SLIDING_WINDOW_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  count = count + 1
  allowed = 1
end
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local first = now
if oldest[2] then first = tonumber(oldest[2]) end
return {allowed, count, now, first}
"""


_SLIDING_WINDOW_SHA = hashlib.sha1(SLIDING_WINDOW_LUA.encode(), usedforsecurity=False).hexdigest()
_redis_clients = threading.local()


def _redis_client(url: str) -> redis.Redis:
    """This thread's client of `url`, on one connection of its own.

    Every limited request calls the script: through a shared client's pool and redis-py's `Script`
    wrapper it cost ~160 µs, of which ~50 µs were the pool's check-out and check-in, the client's retry
    and lock and the wrapper's argument handling. `_send_redis` writes the call on this connection and
    reads its answer itself, testing the connection first as the pool does. Threads are few and fixed
    (the web process's request threads)."""
    clients = getattr(_redis_clients, "by_url", None)
    if clients is None:
        clients = _redis_clients.by_url = {}
    client = clients.get(url)
    if client is None:
        client = clients[url] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2,
                                                     single_connection_client=True)
    return client


Hit = tuple[bool, int, float, float]  # allowed, count, now, oldest


def _send_redis(*, key: str, limit: int, window: int) -> Callable[[], Hit]:
    """Send the script's call on this thread's connection; what reads its answer, called once."""
    client = _redis_client(settings.REDIS_URL)
    connection = client.connection
    # The test a pool makes of a connection it hands out: one closed while idle (Redis restarted, a timeout
    # of its own) or holding an answer nobody read reads so here and is opened again.
    try:
        if connection.can_read():  # connects a connection not yet open
            raise redis.exceptions.ConnectionError("unread data on the connection")
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
        connection.disconnect()
    command = ("EVALSHA", _SLIDING_WINDOW_SHA, 1, f"pod:ratelimit:{key}", limit, window * 1_000_000,
               uuid.uuid4().hex)
    connection.send_command(*command)

    def answer() -> Hit:
        try:
            reply = connection.read_response()
        except redis.exceptions.NoScriptError:
            # Redis forgot the script (a restart, SCRIPT FLUSH): load it and send again, as `Script` does.
            client.script_load(SLIDING_WINDOW_LUA)
            reply = client.execute_command(*command)
        allowed, count, now_us, oldest_us = reply
        return bool(allowed), int(count), int(now_us) / 1e6, int(oldest_us) / 1e6

    return answer


def _hit_database(*, key: str, limit: int, window: int) -> Hit:
    # Plain SQL: on every limited request the ORM's query building cost several times the statements
    # themselves (four queries a request); the statements are the same on SQLite and PostgreSQL.
    buckets, hits = RateLimitBucket._meta.db_table, RateLimitHit._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {buckets} (key) VALUES (%s) ON CONFLICT DO NOTHING", [key])
        created = cursor.rowcount == 1
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT 1 FROM {buckets} WHERE key = %s FOR UPDATE", [key])
        now = time.time()
        if created:
            # A new client: clear hits that no window counts any more, left by clients not seen since
            # (their own requests prune their buckets, so only departed clients leave garbage).
            cursor.execute(f"DELETE FROM {hits} WHERE at <= %s", [now - _longest_window()])
        cursor.execute(f"DELETE FROM {hits} WHERE bucket_id = %s AND at <= %s", [key, now - window])
        cursor.execute(f"SELECT COUNT(*), MIN(at) FROM {hits} WHERE bucket_id = %s", [key])
        count, oldest = cursor.fetchone()
        allowed = count < limit
        if allowed:
            cursor.execute(f"INSERT INTO {hits} (bucket_id, at) VALUES (%s, %s)", [key, now])
            count += 1
    return allowed, count, now, oldest if oldest is not None else now


# RateLimitBucket.key's length. Idents are short (a user pk, an IP address); a longer one is hashed, so no
# client can choose how much a bucket stores.
BUCKET_KEY_MAX = 200


def bucket_key(tier: str, ident: str) -> str:
    """The bucket of `ident` in `tier`, at most BUCKET_KEY_MAX characters."""
    key = f"{tier}:{ident}"
    if len(key) <= BUCKET_KEY_MAX:
        return key
    return f"{tier}:sha256:{hashlib.sha256(ident.encode('utf-8', 'surrogatepass')).hexdigest()}"


def user_ident(user) -> str:
    """Whose window a signed-in user's requests count in: the same for the API and the admin."""
    return f"user:{user.pk}"


def rate_limit_hit(*, tier: str, ident: str) -> Decision:
    """Count one request of `ident` against `tier` (if there is room) and say whether it may proceed."""
    return rate_limit_send(tier=tier, ident=ident)()


def rate_limit_send(*, tier: str, ident: str) -> Callable[[], Decision]:
    """`rate_limit_hit` in two steps: the hit is sent (with Redis) or made (the database's); the function
    returned reads its decision, once. Between the two, the request may do what does not depend on it."""
    try:
        limit, window = settings.RATE_LIMITS[tier]
    except KeyError:
        raise ImproperlyConfigured(f"Unknown rate-limit tier {tier!r}; known: {sorted(settings.RATE_LIMITS)}") from None
    key = bucket_key(tier, ident)
    if settings.REDIS_URL:
        answer = _send_redis(key=key, limit=limit, window=window)
    else:
        hit = _hit_database(key=key, limit=limit, window=window)
        answer = lambda: hit  # noqa: E731

    def decision() -> Decision:
        allowed, count, now, oldest = answer()
        return Decision(
            tier=tier,
            limit=limit,
            window=window,
            allowed=allowed,
            remaining=max(0, limit - count),
            reset_after=max(0.0, oldest + window - now),
            now=now,
        )

    return decision


def _longest_window() -> int:
    return max(window for _, window in settings.RATE_LIMITS.values())


def rate_limit_prune() -> int:
    """Delete embedded-limiter hits older than the longest window, and buckets left empty; returns hits deleted."""
    deleted, _ = RateLimitHit.objects.filter(at__lte=time.time() - _longest_window()).delete()
    RateLimitBucket.objects.filter(hits__isnull=True).delete()
    return deleted


# --- DRF ----------------------------------------------------------------------------------------


class TierRateThrottle(BaseThrottle):
    """DRF throttle for every API view: GET/HEAD use `read`, other methods the view's `rate_tier`.

    A read action a view names in `ReadsBeforeRateLimitMixin.rate_limit_read_later` goes on while Redis
    answers: the view's reads are sent in the meantime, and the answer is read when they have been
    (`rate_limit_settle`); one over the limit is then refused as any other, its reads unused."""

    def allow_request(self, request, view) -> bool:
        tier = "read" if request.method in READ_METHODS else getattr(view, "rate_tier", None)
        if tier is None:
            return True
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            ident = user_ident(user)
        else:
            # The socket's address, or X-Forwarded-For's from a trusted proxy only (api.clientip).
            ident = f"ip:{client_ip(request._request)}"
        request._request.rate_limit_answer = rate_limit_send(tier=tier, ident=ident)
        if not (settings.REDIS_URL and tier == "read" and isinstance(view, ReadsBeforeRateLimitMixin)
                and getattr(view, "action", None) in view.rate_limit_read_later):
            rate_limit_settle(request._request)
        return True


def rate_limit_settle(request: HttpRequest) -> None:
    """Read the decision the throttle left to read on `request`, if any (for the headers: `request.rate_limit`);
    raises RateLimitExceeded when it refuses the request."""
    answer = vars(request).pop("rate_limit_answer", None)
    if answer is None:
        return
    decision = answer()
    # Read by RateLimitHeadersMiddleware on the way out, for success and failure alike.
    request.rate_limit = decision
    if not decision.allowed:
        raise RateLimitExceeded(decision)


class ReadsBeforeRateLimitMixin:
    """For API views: the actions in `rate_limit_read_later` read the rate limiter's answer (Redis's round
    trip) after sending their own reads, when they call `rate_limit_settle`; the response of one that did
    not (it failed first) reads it here, and is replaced by the 429 if the request was over the limit."""

    rate_limit_read_later: frozenset[str] = frozenset()

    def finalize_response(self, request, response, *args, **kwargs):
        try:
            rate_limit_settle(request._request)
        except Exception as error:
            response = self.handle_exception(error)
        return super().finalize_response(request, response, *args, **kwargs)
