"""Recording events in the outbox. Call these inside the transaction of the change they describe."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from webhooks.models import EventType, WebhookEvent


def event_record(*, event_type: str, data: dict[str, Any]) -> WebhookEvent:
    """Record one event in the outbox, inside the caller's transaction."""
    return events_record(event_type=event_type, payloads=[data])[0]


def events_record(*, event_type: str, payloads: Iterable[dict[str, Any]]) -> list[WebhookEvent]:
    """Record one event per payload with a single INSERT (set-wise, for batch actions)."""
    if event_type not in EventType.values:
        raise ValueError(f"Unknown event type {event_type!r}")
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("Events must be recorded inside the transaction of the change they describe")
    return WebhookEvent.objects.bulk_create(
        [WebhookEvent(event_type=event_type, data=data) for data in payloads]
    )
