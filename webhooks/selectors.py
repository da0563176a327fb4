"""Reads of the webhook tables that several callers share: the backlog the metrics report."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEvent


def delivery_backlog_count() -> int:
    """Deliveries due to be sent now: pending, their next attempt time reached (a retry waiting is not due)."""
    due = Q(next_attempt_at__lte=timezone.now()) | Q(next_attempt_at__isnull=True)
    return WebhookDelivery.objects.filter(due, status=DeliveryStatus.PENDING).count()


def outbox_backlog_count() -> int:
    """Events recorded but not yet fanned out to their subscriptions' deliveries."""
    return WebhookEvent.objects.filter(dispatched_at__isnull=True).count()
