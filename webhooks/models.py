"""Webhook subscriptions, the event outbox, and the deliveries of events to subscriptions.

Events are written in the same transaction as the change that causes them, so nothing is announced
for a rolled-back change and nothing is lost when a process dies after commit. The worker fans each
event out to one delivery per matching subscription and sends it, retrying on its schedule; every
try is an attempt row. This app knows events only as types and JSON: it imports no domain app.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from core import ids


class EventType(models.TextChoices):
    GENERATION_STARTED = "generation.started"
    GENERATION_COMPLETED = "generation.completed"
    GENERATION_FAILED = "generation.failed"
    GENERATION_CANCELLED = "generation.cancelled"
    IMAGE_CREATED = "image.created"
    IMAGE_APPROVED = "image.approved"
    IMAGE_REJECTED = "image.rejected"
    IMAGE_DELETED = "image.deleted"
    PRODUCT_PUBLISHED = "product.published"
    PRODUCT_FAILED = "product.failed"
    BATCH_COMPLETED = "batch.completed"
    WEBHOOK_PING = "webhook.ping"


class WebhookEvent(models.Model):
    """One outbox entry: an event that happened, with the payload every subscriber receives."""

    id = models.CharField(primary_key=True, max_length=40, default=ids.new_event_id, editable=False)
    event_type = models.CharField(max_length=40, choices=EventType.choices, db_index=True)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Set once the dispatcher has fanned the event out to the matching subscriptions' deliveries.
    dispatched_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.id} {self.event_type}"


class WebhookSubscription(models.Model):
    """A receiver URL, the events it wants (or `*`), and the secret its deliveries are signed with."""

    id = models.CharField(primary_key=True, max_length=40, default=ids.new_webhook_id, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list)
    description = models.CharField(max_length=500, blank=True, default="")
    is_active = models.BooleanField(default=True)
    secret = models.CharField(max_length=100)
    # The secret before the last rotation, still signed with until `previous_secret_expires_at`.
    previous_secret = models.CharField(max_length=100, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # When the current run of failed attempts began (None after a success): the auto-disable clock.
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.url


class EventSequence(models.Model):
    """The last `sequence` handed out to events of one object (`img_…`, `prd_…`, `gen_…`, `wh_…`)."""

    subject = models.CharField(primary_key=True, max_length=40)
    last = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.subject}: {self.last}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookDelivery(models.Model):
    """One event for one subscription: sent, retried on the schedule, redelivered on request."""

    id = models.CharField(primary_key=True, max_length=40, default=ids.new_delivery_id, editable=False)
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    # Attempts of the current run (reset by a redelivery): the retry schedule counts these.
    run_attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # While delivering: when a worker that claimed it is presumed dead and the delivery goes back to pending.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=1000, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "subscription"], name="delivery_unique_event_subscription")
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["subscription", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class WebhookAttempt(models.Model):
    """One HTTP try of a delivery: when, how long, what the receiver answered (body up to 16 KB)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=1000, blank=True, default="")
    response_body = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="attempt_unique_number")]

    def __str__(self) -> str:
        return f"{self.delivery_id} #{self.number}: {self.status_code or self.error}"
