"""Keeping below Printify's rate limits across worker processes (a token bucket in the shared cache).

Printify allows 600 requests per minute and 200 publishes per 30 minutes. A bucket that holds
`limit / 2` tokens and refills at `limit / (2 * window)` per second can never spend more than
`limit` in any window of that length, so a large batch slows down instead of running into 429s.
No library offers a cross-process token bucket over Django's cache API, hence this small one; the
lock is `cache.add` (atomic on Redis and in-process caches), held for a read and a write.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

LOCK_SECONDS = 5


@dataclass(frozen=True)
class Bucket:
    name: str
    limit: int
    window_seconds: float

    @property
    def capacity(self) -> float:
        return max(self.limit / 2, 1.0)

    @property
    def rate(self) -> float:
        return self.capacity / self.window_seconds


def printify_buckets(*, publish: bool) -> list[Bucket]:
    """The buckets one Printify call draws from: every request, and publishes on their own."""
    buckets = [Bucket("printify:requests", settings.PRINTIFY_REQUESTS_PER_MINUTE, 60.0)]
    if publish:
        buckets.append(Bucket("printify:publishes", settings.PRINTIFY_PUBLISHES_PER_30_MIN, 1800.0))
    return buckets


def reserve(buckets: list[Bucket]) -> float:
    """Take one token from each bucket; return how many seconds to wait before using them (0 = now)."""
    return max((_reserve_one(bucket) for bucket in buckets), default=0.0)


def _reserve_one(bucket: Bucket) -> float:
    key = f"pacing:{bucket.name}"
    lock = f"{key}:lock"
    deadline = time.monotonic() + LOCK_SECONDS
    while not cache.add(lock, 1, timeout=LOCK_SECONDS):
        if time.monotonic() > deadline:
            break  # a holder died with the lock; its timeout frees it, and pacing is best effort
        time.sleep(0.005)
    try:
        now = time.time()
        tokens, stamp = cache.get(key) or (bucket.capacity, now)
        tokens = min(bucket.capacity, tokens + (now - stamp) * bucket.rate) - 1
        # Tokens may go negative: the caller has reserved a slot in the future and waits for it.
        cache.set(key, (tokens, now), timeout=int(bucket.window_seconds * 2) + 1)
    finally:
        cache.delete(lock)
    return 0.0 if tokens >= 0 else -tokens / bucket.rate
