"""Sending the outbox: fan-out to deliveries, claiming them in batches, sending concurrently, recording outcomes.

One `Dispatcher` runs beside the task worker in every worker process (`webhooks.apps`). Each round it
  1. fans new events out to one delivery per matching subscription (set-wise, in one transaction);
  2. claims due deliveries for the subscriptions it could lock (PostgreSQL `FOR UPDATE SKIP LOCKED`,
     so several workers on several hosts share the load; SQLite serialises the claim), never more
     per subscription than `WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION` minus what is already in flight;
  3. sends them on a thread pool, so a receiver that hangs until the timeout holds only its own
     deliveries' threads and never delays the others;
  4. records the finished attempts set-wise: delivered, retried later on the schedule (with jitter and
     `Retry-After`), failed after the last try, or the subscription disabled (410, or failing too long).
A claimed delivery carries a lease; if its worker dies the lease runs out and another worker sends it
again. Receivers deduplicate by `webhook-id` (the event id), which every retry and redelivery keeps.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from core import metrics
from core.db.bulk import insert_rows
from webhooks import services, signing, urls
from webhooks.models import (
    DeliveryStatus,
    EventType,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)

logger = logging.getLogger(__name__)

RESPONSE_BODY_MAX = 16 * 1024
FAN_OUT_BATCH = 500
# Failed attempts in a row before the auto-disable clock (WEBHOOK_DISABLE_AFTER) may disable a subscription.
DISABLE_MIN_FAILURES = 10
PRUNE_EVERY = timedelta(days=1)
# How often a dispatcher looks for leases that ran out (deliveries of a worker that died mid-send).
LEASE_SWEEP_SECONDS = 5.0
# After the first attempt of a round finishes, how long to wait for others to record them together.
GATHER_SECONDS = 0.02


def event_body(*, event_id: str, event_type: str, created_at: datetime, data: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed) for an event: the same on every attempt and redelivery."""
    return json.dumps(
        {"event_type": event_type, "event_id": event_id, "timestamp": int(created_at.timestamp()), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")


# --- 1. Fan-out ----------------------------------------------------------------------------------

def _matches(subscription: dict[str, Any], event: WebhookEvent) -> bool:
    wanted = subscription["events"] or []
    return ("*" in wanted or event.event_type in wanted) and subscription["created_at"] <= event.created_at


def events_fan_out(*, limit: int = FAN_OUT_BATCH) -> int:
    """One delivery per (new event × active matching subscription); returns the events handled."""
    # A plain read first: on SQLite every transaction takes the write lock, and most rounds find nothing.
    if not WebhookEvent.objects.filter(dispatched_at__isnull=True).exists():
        return 0
    with transaction.atomic():
        pending = WebhookEvent.objects.filter(dispatched_at__isnull=True).order_by("created_at", "id")
        if connection.features.has_select_for_update_skip_locked:
            pending = pending.select_for_update(skip_locked=True)
        events = list(pending.only("id", "event_type", "created_at")[:limit])
        if not events:
            return 0
        now = timezone.now()
        subscriptions = list(
            WebhookSubscription.objects.filter(is_active=True).values("id", "events", "created_at")
        )
        deliveries = [
            WebhookDelivery(event_id=event.id, subscription_id=sub["id"], next_attempt_at=now)
            for event in events
            if event.event_type != EventType.WEBHOOK_PING
            for sub in subscriptions
            if _matches(sub, event)
        ]
        # ignore_conflicts: an event fanned out before (a run that died after its INSERT) keeps its deliveries.
        WebhookDelivery.objects.bulk_create(deliveries, batch_size=1000, ignore_conflicts=True)
        WebhookEvent.objects.filter(id__in=[event.id for event in events]).update(dispatched_at=now)
    return len(events)


# --- 2. Claiming ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Claim:
    """A delivery this worker has leased, with everything needed to send it without the database."""

    delivery_id: str
    subscription_id: str
    url: str
    secrets: list[str]
    event_id: str
    event_type: str
    body: bytes
    run_attempts: int
    attempt_count: int
    # The subscription had failures on record when claimed: a success must clear them.
    failing: bool = False


def _lease() -> timedelta:
    # Long enough for one attempt and the recording of its outcome.
    return timedelta(seconds=2 * float(settings.WEBHOOK_TIMEOUT) + 30)


def deliveries_claim(*, limit: int, release_expired: bool = True, look_first: bool = True) -> list[Claim]:
    """Lease up to `limit` due deliveries, at most the in-flight cap of each subscription.

    With `release_expired`, deliveries whose lease ran out (their worker died mid-send) are due again
    first. `look_first` makes a plain read before the transaction (an idle dispatcher's usual round).
    """
    if limit <= 0:
        return []
    now = timezone.now()
    cap = int(settings.WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION)
    due = Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
    expired = Q(status=DeliveryStatus.DELIVERING, lease_expires_at__lt=now)
    # On SQLite every transaction takes the write lock, and most idle rounds find nothing.
    if look_first and not WebhookDelivery.objects.filter(due | expired if release_expired else due).exists():
        return []
    with transaction.atomic(savepoint=False):
        if release_expired:
            WebhookDelivery.objects.filter(expired).update(status=DeliveryStatus.PENDING, lease_expires_at=None)
        # Each subscription's oldest due deliveries, at most its cap: one slow receiver's backlog never
        # hides another subscription's deliveries.
        heads = _heads(now=now, cap=cap, limit=limit * cap)
        if not heads:
            return []
        # Locking the subscriptions makes the in-flight count below exact across workers (PostgreSQL); one
        # that another worker is claiming for right now is skipped this round. SQLite serialises the claim.
        locked = WebhookSubscription.objects.filter(
            id__in={row["subscription_id"] for row in heads}, is_active=True
        ).only("id", "url", "secret", "previous_secret", "previous_secret_expires_at", "consecutive_failures",
               "failing_since")
        if connection.features.has_select_for_update_skip_locked:
            locked = locked.select_for_update(skip_locked=True)
        subscriptions = {sub.id: sub for sub in locked}
        busy = dict(
            WebhookDelivery.objects.filter(subscription_id__in=list(subscriptions), status=DeliveryStatus.DELIVERING)
            .order_by().values("subscription_id").annotate(n=Count("id")).values_list("subscription_id", "n")
        ) if subscriptions else {}
        chosen = [
            row for row in heads
            if row["subscription_id"] in subscriptions and row["rank"] <= cap - busy.get(row["subscription_id"], 0)
        ][:limit]
        if not chosen:
            return []
        WebhookDelivery.objects.filter(id__in=[row["id"] for row in chosen]).update(
            status=DeliveryStatus.DELIVERING, lease_expires_at=now + _lease()
        )
    events = {
        row["id"]: row for row in WebhookEvent.objects.filter(id__in={row["event_id"] for row in chosen}).values(
            "id", "event_type", "created_at", "data"
        )
    }
    claims = []
    for row in chosen:
        sub = subscriptions[row["subscription_id"]]
        event = events[row["event_id"]]
        valid = [sub.secret]
        if sub.previous_secret and sub.previous_secret_expires_at and sub.previous_secret_expires_at > now:
            valid.append(sub.previous_secret)
        claims.append(Claim(
            delivery_id=row["id"], subscription_id=sub.id, url=sub.url, secrets=valid, event_id=event["id"],
            event_type=event["event_type"], run_attempts=row["run_attempts"], attempt_count=row["attempt_count"],
            body=event_body(event_id=event["id"], event_type=event["event_type"], created_at=event["created_at"],
                            data=event["data"]),
            failing=bool(sub.consecutive_failures or sub.failing_since),
        ))
    return claims


# Hand-written because it runs every round of every dispatcher: the ORM's window-function query cost
# several times its own execution to build and compile. Plain columns only, so no value conversion.
_HEADS_SQL = """
SELECT id, subscription_id, run_attempts, attempt_count, event_id, rank FROM (
    SELECT id, subscription_id, run_attempts, attempt_count, event_id, next_attempt_at, created_at,
           ROW_NUMBER() OVER (PARTITION BY subscription_id ORDER BY next_attempt_at, created_at) AS rank
    FROM {table} WHERE status = %s AND next_attempt_at <= %s
) heads WHERE rank <= %s ORDER BY next_attempt_at, created_at LIMIT %s
"""


def _heads(*, now: datetime, cap: int, limit: int) -> list[dict[str, Any]]:
    """The oldest due deliveries of each subscription (at most `cap` each, `limit` in all), oldest first."""
    sql = _HEADS_SQL.format(table=connection.ops.quote_name(WebhookDelivery._meta.db_table))
    with connection.cursor() as cursor:
        cursor.execute(sql, [DeliveryStatus.PENDING.value, connection.ops.adapt_datetimefield_value(now), cap, limit])
        names = ["id", "subscription_id", "run_attempts", "attempt_count", "event_id", "rank"]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# --- 3. Sending ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Result:
    """What one attempt saw."""

    claim: Claim
    started_at: datetime
    duration_ms: int
    status_code: int | None = None
    error: str = ""
    response_body: str = ""
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


_sessions = threading.local()


def _session() -> requests.Session:
    """This thread's session (its connection pools are reused), made anew when the settings it uses change."""
    key = (float(settings.WEBHOOK_TIMEOUT), bool(settings.WEBHOOK_ALLOW_PRIVATE_URLS))
    if getattr(_sessions, "key", None) != key:
        _sessions.session = urls.session_new(timeout=key[0])
        _sessions.key = key
    return _sessions.session


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - timezone.now()).total_seconds())
    except (TypeError, ValueError):
        return None


def _read_body(response: requests.Response) -> str:
    chunks, size = [], 0
    for chunk in response.iter_content(4096):
        chunks.append(chunk)
        size += len(chunk)
        if size >= RESPONSE_BODY_MAX:
            break
    return b"".join(chunks)[:RESPONSE_BODY_MAX].decode("utf-8", "replace")


def attempt_send(claim: Claim) -> Result:
    """POST one delivery; never raises (every failure is a Result with `error`)."""
    started = timezone.now()
    clock = time.monotonic()
    headers = signing.headers(
        secrets_=claim.secrets, event_id=claim.event_id, event_type=claim.event_type,
        timestamp=int(time.time()), body=claim.body,
    )

    def result(**fields: Any) -> Result:
        return Result(claim=claim, started_at=started, duration_ms=int((time.monotonic() - clock) * 1000), **fields)

    try:
        response = urls.post(_session(), url=claim.url, body=claim.body, headers=headers,
                             timeout=float(settings.WEBHOOK_TIMEOUT))
        with response:
            body = _read_body(response)
            code = response.status_code
            error = "" if 200 <= code < 300 else f"HTTP {code}"
            if 300 <= code < 400:
                error = f"HTTP {code}: redirects are not followed"
            return result(status_code=code, error=error, response_body=body,
                          retry_after=_retry_after(response.headers.get("Retry-After")))
    except urls.UnsafeAddressError as exc:
        return result(error=str(exc))
    except requests.Timeout:
        return result(error=f"Timed out after {settings.WEBHOOK_TIMEOUT:g} s")
    except requests.RequestException as exc:
        return result(error=f"{type(exc).__name__}: {exc}"[:1000])
    except Exception as exc:  # a broken URL or an adapter error must fail the attempt, not the dispatcher
        logger.exception("Webhook delivery %s crashed", claim.delivery_id)
        return result(error=f"Internal error: {type(exc).__name__}")


# --- 4. Outcomes ---------------------------------------------------------------------------------

def retry_delay(*, run_attempts: int, retry_after: float | None) -> float | None:
    """Seconds until the next try after `run_attempts` failed tries of this run, or None after the last.

    `WEBHOOK_RETRY_DELAYS` holds n delays (1 + n tries), each ±20 % jitter; a `Retry-After` is
    honoured when it asks for longer, up to the delay of the step after this one.
    """
    delays = list(settings.WEBHOOK_RETRY_DELAYS)
    if run_attempts > len(delays):
        return None
    base = float(delays[run_attempts - 1])
    delay = base * random.uniform(0.8, 1.2)
    if retry_after is not None:
        ceiling = float(delays[run_attempts]) if run_attempts < len(delays) else base
        delay = max(delay, min(retry_after, ceiling))
    return delay


def outcomes_record(results: list[Result]) -> None:
    """Write the attempts and what follows from them, set-wise (one transaction for the whole batch).

    Successes of subscriptions with no failure on record, the usual case, cost one INSERT of the
    attempts and one UPDATE of the deliveries; failures lock their subscriptions (in id order, so two
    workers never deadlock) and move each delivery on its own schedule.
    """
    if not results:
        return
    now = timezone.now()
    counts: list[tuple[str, str]] = []
    with transaction.atomic(savepoint=False):
        present = set(
            WebhookDelivery.objects.filter(id__in=[r.claim.delivery_id for r in results]).values_list("id", flat=True)
        )
        # Deleted meanwhile (the subscription was deleted, or the delivery pruned): nothing to record.
        results = sorted((r for r in results if r.claim.delivery_id in present), key=lambda r: r.started_at)
        insert_rows(
            WebhookAttempt,
            fields=["delivery_id", "number", "started_at", "duration_ms", "status_code", "error", "response_body"],
            rows=[(r.claim.delivery_id, r.claim.attempt_count + 1, r.started_at, r.duration_ms, r.status_code,
                   r.error[:1000], r.response_body) for r in results],
        )
        delivered = [r for r in results if r.ok]
        failed = [r for r in results if not r.ok]
        if delivered:
            WebhookDelivery.objects.filter(id__in=[r.claim.delivery_id for r in delivered]).update(
                status=DeliveryStatus.DELIVERED, delivered_at=now, attempt_count=F("attempt_count") + 1,
                run_attempts=F("run_attempts") + 1, lease_expires_at=None, next_attempt_at=None, last_error="",
            )
            counts += [(r.claim.event_type, "delivered") for r in delivered]
            # Only subscriptions with failures on record need their record cleared.
            failing = {f.claim.subscription_id for f in failed}
            recovered = {r.claim.subscription_id for r in delivered if r.claim.failing} - failing
            if recovered:
                WebhookSubscription.objects.filter(id__in=recovered).update(consecutive_failures=0, failing_since=None)
        if failed:
            counts += _failures_record(failed, delivered, now)

        def count() -> None:
            for event_type, outcome in counts:
                metrics.WEBHOOK_DELIVERIES.labels(event_type=event_type, outcome=outcome).inc()

        transaction.on_commit(count)


def _failures_record(failed: list[Result], delivered: list[Result], now: datetime) -> list[tuple[str, str]]:
    """The failed attempts' consequences: a retry on the schedule, the end of the delivery, a disable."""
    counts: list[tuple[str, str]] = []
    sub_ids = {r.claim.subscription_id for r in failed}
    locked = WebhookSubscription.objects.select_for_update().filter(id__in=sub_ids).order_by("id")
    subscriptions = {sub.id: sub for sub in locked}
    deliveries = {d.id: d for d in WebhookDelivery.objects.filter(id__in=[r.claim.delivery_id for r in failed])}
    succeeded_at = {r.claim.subscription_id: r.started_at for r in delivered}
    gone: list[str] = []
    for r in failed:
        delivery, sub = deliveries[r.claim.delivery_id], subscriptions[r.claim.subscription_id]
        delivery.attempt_count += 1
        delivery.run_attempts += 1
        delivery.lease_expires_at = None
        delivery.last_error = r.error[:1000]
        if succeeded_at.get(sub.id, r.started_at) > r.started_at:
            pass  # an attempt of this batch that started later succeeded: the receiver is back
        else:
            sub.consecutive_failures += 1
            sub.failing_since = sub.failing_since or r.started_at
        if r.status_code == 410 and sub.is_active:
            sub.is_active = False
            sub.disabled_reason = "The receiver answered 410 Gone"
            gone.append(sub.id)
        elif (sub.is_active and sub.consecutive_failures >= DISABLE_MIN_FAILURES and sub.failing_since
              and now - sub.failing_since >= timedelta(seconds=float(settings.WEBHOOK_DISABLE_AFTER))):
            sub.is_active = False
            sub.disabled_reason = (
                f"Every delivery failed since {sub.failing_since:%Y-%m-%d %H:%M} UTC "
                f"({sub.consecutive_failures} attempts in a row); last error: {r.error}"
            )[:500]
            gone.append(sub.id)
        delay = retry_delay(run_attempts=delivery.run_attempts, retry_after=r.retry_after) if sub.is_active else None
        if delay is None:
            delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
            if not sub.is_active:
                delivery.last_error = f"{sub.disabled_reason}; last error: {r.error}"[:1000]
            counts.append((r.claim.event_type, "failed"))
        else:
            delivery.status = DeliveryStatus.PENDING
            delivery.next_attempt_at = now + timedelta(seconds=delay)
            counts.append((r.claim.event_type, "retrying"))
    WebhookDelivery.objects.bulk_update(
        list(deliveries.values()),
        ["status", "attempt_count", "run_attempts", "next_attempt_at", "lease_expires_at", "last_error"],
    )
    WebhookSubscription.objects.bulk_update(
        list(subscriptions.values()), ["consecutive_failures", "failing_since", "is_active", "disabled_reason"]
    )
    for sub_id in gone:
        services.deliveries_fail_pending(subscription_id=sub_id, reason=subscriptions[sub_id].disabled_reason)
    return counts


# --- The loop ------------------------------------------------------------------------------------

class Dispatcher(threading.Thread):
    """Fans out, claims, sends and records until stopped; one per worker process."""

    def __init__(self, *, concurrency: int | None = None, poll_seconds: float | None = None) -> None:
        super().__init__(name="webhook-dispatcher", daemon=True)
        self.concurrency = int(concurrency or settings.WEBHOOK_CONCURRENCY)
        self.poll_seconds = float(poll_seconds if poll_seconds is not None else settings.WEBHOOK_POLL_SECONDS)
        self._halt = threading.Event()
        self._in_flight: set[Future[Result]] = set()
        self._last_prune = time.monotonic() - PRUNE_EVERY.total_seconds() + 60  # first prune a minute in
        self._last_release = 0.0

    def stop(self, timeout: float | None = None) -> None:
        """Stop claiming; wait for the attempts in flight (up to the webhook timeout) and record them."""
        self._halt.set()
        self.join(timeout=timeout if timeout is not None else float(settings.WEBHOOK_TIMEOUT) + 15)

    def run(self) -> None:
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="webhook-send")
        try:
            while not self._halt.is_set():
                try:
                    busy = self.round(pool)
                except DatabaseError:
                    logger.warning("Webhook dispatcher round failed; retrying", exc_info=True)
                    close_old_connections()
                    busy = False
                if not busy:
                    self._halt.wait(self.poll_seconds)
            self._drain(timeout=float(settings.WEBHOOK_TIMEOUT) + 5)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            connection.close()

    def round(self, pool: ThreadPoolExecutor) -> bool:
        """One pass; True if there was work (so the next pass starts at once)."""
        fanned = events_fan_out()
        release = time.monotonic() - self._last_release >= LEASE_SWEEP_SECONDS
        if release:
            self._last_release = time.monotonic()
        done = [future for future in self._in_flight if future.done()]
        self._in_flight.difference_update(done)
        # The finished attempts and the next claim share one transaction (one write lock on SQLite).
        with transaction.atomic():
            outcomes_record([future.result() for future in done])
            claims = deliveries_claim(
                limit=self.concurrency - len(self._in_flight), release_expired=release, look_first=not done
            )
        for claim in claims:
            self._in_flight.add(pool.submit(attempt_send, claim))
        if time.monotonic() - self._last_prune >= PRUNE_EVERY.total_seconds():
            self._last_prune = time.monotonic()
            pruned = services.webhooks_prune()
            if pruned:
                logger.info("Pruned %d webhook deliveries older than %d days", pruned,
                            settings.WEBHOOK_RETENTION_DAYS)
        if not self._in_flight:
            return bool(fanned or claims)
        # Wait for the first attempt to finish (the poll interval at most), then a moment for the ones
        # finishing with it, so that one transaction records many attempts.
        done, rest = wait(self._in_flight, timeout=self.poll_seconds, return_when=FIRST_COMPLETED)
        if done and rest:
            wait(rest, timeout=GATHER_SECONDS)
        return True

    def _collect(self) -> None:
        done = [future for future in self._in_flight if future.done()]
        if done:
            self._in_flight.difference_update(done)
            outcomes_record([future.result() for future in done])

    def _drain(self, *, timeout: float) -> None:
        try:
            if self._in_flight:
                wait(self._in_flight, timeout=timeout)
            self._collect()
        except DatabaseError:
            logger.warning("Could not record the last webhook attempts; their leases will expire", exc_info=True)
