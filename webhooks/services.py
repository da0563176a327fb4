"""Writes of the webhooks app: events into the outbox, subscriptions, and redeliveries.

`event_record` / `events_record` are called inside the transaction of the change they describe (the
outbox); the worker does the rest (`webhooks.delivery`). Nothing is ever sent from here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router, transaction
from django.db.models import QuerySet
from django.utils import timezone

from core.actors import Actor
from core.db.bulk import counters_add, insert_rows
from core.errors import InvalidInputError, InvalidStateError, NotFoundError
from webhooks import signing, urls
from webhooks.models import (
    DeliveryStatus,
    EventSequence,
    EventType,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)

# The first of these keys present in an event's data names the object its `sequence` counts for.
SUBJECT_KEYS = ("product_id", "image_id", "generation_id", "webhook_id")
SUBSCRIBABLE = [value for value in EventType.values if value != EventType.WEBHOOK_PING]
# How far back `redeliver_webhooks --since` reaches.
REDELIVER_MAX_AGE = timedelta(days=14)


# --- The outbox ----------------------------------------------------------------------------------

def _check(event_type: str) -> None:
    if event_type not in EventType.values:
        raise ValueError(f"Unknown event type {event_type!r}")
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("Events must be recorded inside the transaction of the change they describe")


def _subject(data: dict[str, Any]) -> str | None:
    return next((str(data[key]) for key in SUBJECT_KEYS if data.get(key)), None)


def _sequences(subjects: Sequence[str]) -> dict[str, list[int]]:
    """Hand out the next sequence numbers for each subject (a subject may appear several times).

    One upsert of the counter rows in the caller's transaction (`counters_add`): concurrent changes
    of one object wait for each other's row lock and never share a number.
    """
    wanted = Counter(subjects)
    last = counters_add(EventSequence, key="subject", counter="last", amounts=wanted)
    return {subject: list(range(last[subject] - n + 1, last[subject] + 1)) for subject, n in wanted.items()}


def _with_sequences(payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    subjects = [_subject(data) for data in payloads]
    numbers = _sequences([s for s in subjects if s is not None])
    out = []
    for data, subject in zip(payloads, subjects, strict=True):
        if subject is not None:
            data = {**data, "sequence": numbers[subject].pop(0)}
        out.append(data)
    return out


def event_record(*, event_type: str, data: dict[str, Any]) -> WebhookEvent:
    """Record one event in the outbox, inside the caller's transaction; `data` gets its `sequence`."""
    _check(event_type)
    (data,) = _with_sequences([data])
    return WebhookEvent.objects.create(event_type=event_type, data=data)


def events_record(*, event_type: str, payloads: Iterable[dict[str, Any]]) -> int:
    """Record one event per payload with a single INSERT (set-wise, for batch actions); returns the count."""
    _check(event_type)
    payloads = list(payloads)
    # The rows share one created_at, so the outbox order (created_at, id) within the batch is the id
    # order: ids made for the batch and handed out sorted keep the events in the order given.
    ids = sorted(WebhookEvent._meta.pk.get_default() for _ in payloads)
    connection = connections[router.db_for_write(WebhookEvent)]
    if connection.vendor == "postgresql" and any(_subject(data) for data in payloads):
        return _insert_numbered(connection, event_type, ids, payloads)
    payloads = _with_sequences(payloads)
    # Plain rows rather than bulk_create: a 500-image batch would otherwise spend most of its time
    # building and converting WebhookEvent instances nobody reads.
    return insert_rows(WebhookEvent, fields=["id", "data"], rows=zip(ids, payloads, strict=True),
                       constants={"event_type": event_type})


# The columns _insert_numbered writes: every column of the outbox (a new one fails its first insert).
_NUMBERED_COLUMNS = ("id", "event_type", "data", "created_at", "dispatched_at")


def _insert_numbered(connection: Any, event_type: str, ids: list[str], payloads: list[dict[str, Any]]) -> int:
    """PostgreSQL: the events with their sequence numbers added by the INSERT itself.

    The counters' upsert is sent without asking for the new values, and the INSERT reads them from the
    rows the upsert wrote (and locked) in this transaction: nothing is read back in between, so in a
    pipelined block (a review decision) both go with the block's next wait instead of one of their own.
    The numbers are those `_with_sequences` hands out: a subject's n events in a batch get the n after
    its last, in the payloads' order (`back`: how many of the subject's events follow this one).
    """
    columns = tuple(field.column for field in WebhookEvent._meta.concrete_fields)
    if columns != _NUMBERED_COLUMNS:
        raise ImproperlyConfigured(f"WebhookEvent's columns {columns} are not those events_record writes")
    subjects = [_subject(data) for data in payloads]
    wanted = Counter(subject for subject in subjects if subject is not None)
    counters_add(EventSequence, key="subject", counter="last", amounts=wanted, read=False)
    seen: Counter[str] = Counter()
    backs = []
    for subject in subjects:
        seen[subject] += 1
        backs.append(wanted[subject] - seen[subject] if subject is not None else 0)
    data_field = WebhookEvent._meta.get_field("data")
    quote = connection.ops.quote_name
    events, sequences = quote(WebhookEvent._meta.db_table), quote(EventSequence._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {events} ({', '.join(quote(c) for c in _NUMBERED_COLUMNS)}) "
            "SELECT e.id, %s, CASE WHEN e.subject IS NULL THEN e.data "
            "ELSE e.data || jsonb_build_object('sequence', s.last - e.back) END, %s, NULL "
            "FROM unnest(%s::text[], %s::jsonb[], %s::text[], %s::bigint[]) AS e(id, data, subject, back) "
            f"LEFT JOIN {sequences} s ON s.subject = e.subject",
            [event_type, timezone.now(), ids, [data_field.get_db_prep_save(data, connection) for data in payloads],
             subjects, backs],
        )
    return len(payloads)


# --- Who sees what ------------------------------------------------------------------------------

def _sees_all(actor: Actor) -> bool:
    # The system (commands, the worker) and superusers act on every subscription.
    return actor.user is None or bool(getattr(actor.user, "is_superuser", False))


def subscriptions_of(actor: Actor) -> QuerySet[WebhookSubscription]:
    """The subscriptions `actor` may see and change: a user's own; all of them for superusers."""
    subscriptions = WebhookSubscription.objects.all()
    return subscriptions if _sees_all(actor) else subscriptions.filter(owner_id=actor.user_id)


def deliveries_of(actor: Actor) -> QuerySet[WebhookDelivery]:
    """The deliveries of the subscriptions `actor` may see."""
    deliveries = WebhookDelivery.objects.all()
    return deliveries if _sees_all(actor) else deliveries.filter(subscription__owner_id=actor.user_id)


# --- Subscriptions -------------------------------------------------------------------------------

def subscription_validate(*, data: dict[str, Any], instance: WebhookSubscription | None = None) -> dict[str, Any]:
    """The subscription fields in `data`, checked; `InvalidInputError` naming each bad field."""
    fields: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    if "url" in data or instance is None:
        url = str(data.get("url") or "").strip()
        problem = urls.url_refusal(url)
        if problem:
            fields["url"] = [problem]
        cleaned["url"] = url
    if "events" in data or instance is None:
        events = data.get("events", ["*"])
        if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
            fields["events"] = ['A non-empty list of event names, or ["*"].']
        else:
            unknown = [e for e in events if e != "*" and e not in SUBSCRIBABLE]
            if unknown:
                fields["events"] = [f"Unknown event {', '.join(unknown)}. Allowed: *, {', '.join(SUBSCRIBABLE)}."]
            cleaned["events"] = ["*"] if "*" in events else list(dict.fromkeys(events))
    if "description" in data:
        description = str(data.get("description") or "").strip()
        if len(description) > 500:
            fields["description"] = ["At most 500 characters."]
        cleaned["description"] = description
    if "is_active" in data:
        if not isinstance(data["is_active"], bool):
            fields["is_active"] = ["Must be true or false."]
        cleaned["is_active"] = data["is_active"]
    if fields:
        raise InvalidInputError("Invalid webhook subscription", fields=fields)
    return cleaned


@transaction.atomic
def subscription_create(*, data: dict[str, Any], actor: Actor) -> tuple[WebhookSubscription, str]:
    """A new subscription of `actor`'s user with a generated secret; returns it and the secret (shown once)."""
    cleaned = subscription_validate(data=data)
    secret = signing.secret_new()
    subscription = WebhookSubscription.objects.create(
        owner=actor.user, secret=secret, **{"events": ["*"], "is_active": True, **cleaned}
    )
    return subscription, secret


def _locked(subscription_id: str, actor: Actor) -> WebhookSubscription:
    # Another user's subscription is "not found", exactly like one that does not exist.
    subscription = subscriptions_of(actor).select_for_update().filter(id=subscription_id).first()
    if subscription is None:
        raise NotFoundError(f"Webhook {subscription_id} not found", details={"webhook_id": subscription_id})
    return subscription


@transaction.atomic
def subscription_update(*, subscription_id: str, data: dict[str, Any], actor: Actor) -> WebhookSubscription:
    """Change url, events, description or is_active; re-activating clears the failure record."""
    subscription = _locked(subscription_id, actor)
    cleaned = subscription_validate(data=data, instance=subscription)
    reactivated = cleaned.get("is_active") is True and not subscription.is_active
    for key, value in cleaned.items():
        setattr(subscription, key, value)
    if reactivated:
        subscription.disabled_reason = ""
        subscription.consecutive_failures = 0
        subscription.failing_since = None
    elif cleaned.get("is_active") is False and subscription.disabled_reason == "":
        subscription.disabled_reason = f"Disabled by {actor.label}"
    subscription.save()
    if cleaned.get("is_active") is False:
        deliveries_fail_pending(subscription_id=subscription.id, reason=subscription.disabled_reason)
    return subscription


@transaction.atomic
def subscription_delete(*, subscription_id: str, actor: Actor) -> None:
    """Delete a subscription with its deliveries and their attempts."""
    _locked(subscription_id, actor).delete()


@transaction.atomic
def subscription_rotate_secret(*, subscription_id: str, actor: Actor) -> tuple[WebhookSubscription, str]:
    """A new secret; the old one keeps signing (second signature) for WEBHOOK_ROTATION_GRACE seconds."""
    subscription = _locked(subscription_id, actor)
    secret = signing.secret_new()
    subscription.previous_secret = subscription.secret
    subscription.previous_secret_expires_at = timezone.now() + timedelta(seconds=settings.WEBHOOK_ROTATION_GRACE)
    subscription.secret = secret
    subscription.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    return subscription, secret


@transaction.atomic
def subscription_ping(*, subscription_id: str, actor: Actor) -> WebhookDelivery:
    """Queue one `webhook.ping` for this subscription alone, whatever its `events` say."""
    subscription = _locked(subscription_id, actor)
    if not subscription.is_active:
        raise InvalidStateError(
            f"Webhook {subscription_id} is disabled: {subscription.disabled_reason or 'inactive'}",
            details={"webhook_id": subscription_id},
        )
    event = event_record(
        event_type=EventType.WEBHOOK_PING, data={"webhook_id": subscription.id, "actor": actor.label}
    )
    # Fanned out here rather than by the worker: a ping goes to its subscription only.
    WebhookEvent.objects.filter(id=event.id).update(dispatched_at=timezone.now())
    return WebhookDelivery.objects.create(
        event=event, subscription=subscription, next_attempt_at=timezone.now()
    )


# --- Deliveries ----------------------------------------------------------------------------------

def deliveries_fail_pending(*, subscription_id: str, reason: str) -> int:
    """End the pending deliveries of a subscription that stopped receiving; they can be redelivered later."""
    return WebhookDelivery.objects.filter(
        subscription_id=subscription_id, status=DeliveryStatus.PENDING
    ).update(status=DeliveryStatus.FAILED, next_attempt_at=None, last_error=reason[:1000])


@transaction.atomic
def delivery_redeliver(*, delivery_id: str, actor: Actor) -> WebhookDelivery:
    """Queue a delivery again (same event id, a new attempt); refused while it is being sent."""
    delivery = deliveries_of(actor).select_for_update().filter(id=delivery_id).select_related(
        "subscription"
    ).first()
    if delivery is None:
        raise NotFoundError(f"Delivery {delivery_id} not found", details={"delivery_id": delivery_id})
    if delivery.status == DeliveryStatus.DELIVERING:
        raise InvalidStateError(f"Delivery {delivery_id} is being sent right now", details={"delivery_id": delivery_id})
    if not delivery.subscription.is_active:
        raise InvalidStateError(
            f"Webhook {delivery.subscription_id} is disabled; activate it (is_active=true) first",
            details={"delivery_id": delivery_id, "webhook_id": delivery.subscription_id},
        )
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = timezone.now()
    delivery.run_attempts = 0
    delivery.last_error = ""
    delivery.save(update_fields=["status", "next_attempt_at", "run_attempts", "last_error"])
    return delivery


@transaction.atomic
def deliveries_redeliver_selected(*, delivery_ids: Sequence[str], actor: Actor) -> tuple[list[str], dict[str, str]]:
    """Queue these deliveries again, set-wise; returns (queued ids, {refused id: why}).

    The same rules as `delivery_redeliver`: only deliveries `actor` may see, not while being sent, not
    for a disabled subscription.
    """
    ids = list(dict.fromkeys(delivery_ids))
    rows = {
        delivery_id: (status, active)
        for delivery_id, status, active in deliveries_of(actor).select_for_update(of=("self",))
        .filter(id__in=ids).values_list("id", "status", "subscription__is_active")
    }
    refused: dict[str, str] = {}
    for delivery_id in ids:
        status, active = rows.get(delivery_id, (None, None))
        if status is None:
            refused[delivery_id] = "not found"
        elif status == DeliveryStatus.DELIVERING:
            refused[delivery_id] = "being sent right now"
        elif not active:
            refused[delivery_id] = "its subscription is disabled; activate it first"
    queued = [delivery_id for delivery_id in ids if delivery_id not in refused]
    WebhookDelivery.objects.filter(id__in=queued).update(
        status=DeliveryStatus.PENDING, next_attempt_at=timezone.now(), run_attempts=0, last_error=""
    )
    return queued, refused


def deliveries_redeliver(
    *, failed_only: bool, since: datetime | None, actor: Actor, until: datetime | None = None
) -> int:
    """Queue again, set-wise, the deliveries of active subscriptions since `since` (at most 14 days back).

    With `failed_only`, only deliveries that ended `failed`; otherwise delivered ones too. With `until`,
    only those created before it (a long recovery goes window by window).
    """
    floor = timezone.now() - REDELIVER_MAX_AGE
    since = max(since, floor) if since else floor
    statuses = [DeliveryStatus.FAILED] if failed_only else [DeliveryStatus.FAILED, DeliveryStatus.DELIVERED]
    window = {"created_at__lt": until} if until is not None else {}
    return WebhookDelivery.objects.filter(
        status__in=statuses, created_at__gte=since, subscription__is_active=True, **window
    ).update(status=DeliveryStatus.PENDING, next_attempt_at=timezone.now(), run_attempts=0, last_error="")


def webhooks_prune(*, older_than: timedelta | None = None, batch_size: int = 1000) -> int:
    """Delete deliveries (with their attempts) and dispatched events older than WEBHOOK_RETENTION_DAYS.

    In batches, so a large backlog never holds one long transaction. Returns the deliveries deleted.
    """
    cutoff = timezone.now() - (older_than or timedelta(days=settings.WEBHOOK_RETENTION_DAYS))
    deleted = 0
    while True:
        ids = list(
            WebhookDelivery.objects.filter(created_at__lt=cutoff)
            .exclude(status=DeliveryStatus.DELIVERING)
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            break
        with transaction.atomic():
            WebhookDelivery.objects.filter(id__in=ids).delete()
        deleted += len(ids)
    while True:
        event_ids = list(
            WebhookEvent.objects.filter(created_at__lt=cutoff, dispatched_at__isnull=False, deliveries__isnull=True)
            .values_list("id", flat=True)[:batch_size]
        )
        if not event_ids:
            break
        WebhookEvent.objects.filter(id__in=event_ids).delete()
    return deleted
