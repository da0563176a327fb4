"""Stored state of the API machinery: idempotency records and the embedded rate-limit log."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class IdempotencyState(models.TextChoices):
    RUNNING = "running"
    COMPLETED = "completed"


class IdempotencyRecord(models.Model):
    """The first response to a POST sent with an `Idempotency-Key`, replayed for 24 h to the same user."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # sha256 over method, path and body: the same key with another request is refused, not replayed.
    request_hash = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=IdempotencyState.choices, default=IdempotencyState.RUNNING)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=255, blank=True, default="")
    location = models.CharField(max_length=2000, blank=True, default="")
    body = models.BinaryField(default=b"")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_unique_user_key")]

    def __str__(self) -> str:
        return f"{self.key} ({self.state})"


class RateLimitBucket(models.Model):
    """One row per (tier, client): locked while its hits are counted, so concurrent requests queue."""

    key = models.CharField(primary_key=True, max_length=200)

    def __str__(self) -> str:
        return self.key


class RateLimitHit(models.Model):
    """One counted request in a bucket's sliding window (the embedded limiter used without Redis)."""

    bucket = models.ForeignKey(RateLimitBucket, on_delete=models.CASCADE, related_name="hits")
    # Unix seconds as a float: compared against `now - window` on every request.
    at = models.FloatField()

    class Meta:
        indexes = [models.Index(fields=["bucket", "at"])]

    def __str__(self) -> str:
        return f"{self.bucket_id} @ {self.at}"
