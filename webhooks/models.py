"""Webhook subscriptions and the event outbox.

Events are written in the same transaction as the change that causes them, so nothing is announced
for a rolled-back change and nothing is lost when a process dies after commit.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from core import ids


class EventType(models.TextChoices):
    GENERATION_STARTED = "generation.started"
    GENERATION_COMPLETED = "generation.completed"
    GENERATION_FAILED = "generation.failed"
    IMAGE_CREATED = "image.created"
    IMAGE_APPROVED = "image.approved"
    IMAGE_REJECTED = "image.rejected"
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
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.url
