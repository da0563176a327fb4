"""Recording events in the outbox. Call these inside the transaction of the change they describe."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from pod_gateway.db.bulk import insert_rows
from webhooks.models import EventType, WebhookEvent


def _check(event_type: str) -> None:
    if event_type not in EventType.values:
        raise ValueError(f"Unknown event type {event_type!r}")
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("Events must be recorded inside the transaction of the change they describe")


def event_record(*, event_type: str, data: dict[str, Any]) -> WebhookEvent:
    """Record one event in the outbox, inside the caller's transaction."""
    _check(event_type)
    return WebhookEvent.objects.create(event_type=event_type, data=data)


def events_record(*, event_type: str, payloads: Iterable[dict[str, Any]]) -> int:
    """Record one event per payload with a single INSERT (set-wise, for batch actions); returns the count."""
    _check(event_type)
    # Plain rows rather than bulk_create: a 500-image batch would otherwise spend most of its time
    # building and converting WebhookEvent instances nobody reads (ids and created_at come from the
    # model's defaults either way).
    return insert_rows(WebhookEvent, fields=["data"], rows=([data] for data in payloads),
                       constants={"event_type": event_type})
