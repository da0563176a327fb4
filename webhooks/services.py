"""Recording events in the outbox. Call these inside the transaction of the change they describe."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from core.db.bulk import insert_rows
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
    payloads = list(payloads)
    # The rows share one created_at, so the outbox order (created_at, id) within the batch is the id
    # order: ids made for the batch and handed out sorted keep the events in the order given.
    ids = sorted(WebhookEvent._meta.pk.get_default() for _ in payloads)
    # Plain rows rather than bulk_create: a 500-image batch would otherwise spend most of its time
    # building and converting WebhookEvent instances nobody reads.
    return insert_rows(WebhookEvent, fields=["id", "data"], rows=zip(ids, payloads, strict=True),
                       constants={"event_type": event_type})
