"""The dispatcher as it runs: a thread beside the worker, and a real worker process that crashes."""

from __future__ import annotations

import signal
import time

import pytest
from django.contrib.auth.models import User
from django.db import transaction

from core.models import WorkerHeartbeat
from tests.servers import WorkerProcess
from webhooks import services
from webhooks.delivery import Dispatcher
from webhooks.models import DeliveryStatus, EventType, WebhookDelivery


def wait_until(check, *, timeout: float = 20, what: str = "condition", worker: WorkerProcess | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{worker.output()[-3000:]}" if worker else ""))


def _owner() -> User:
    # Transactional tests start from an emptied database: no role groups, so a plain user.
    return User.objects.create_user("hook-owner")


def _record(n: int) -> str:
    with transaction.atomic():
        return services.event_record(event_type=EventType.IMAGE_APPROVED, data={"image_id": f"img_{n}"}).id


@pytest.mark.django_db(transaction=True)
def test_a_hanging_receiver_never_delays_a_healthy_one_nor_exceeds_its_cap(receiver, subscribe, settings):
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION = 3
    settings.WEBHOOK_TIMEOUT = 30.0
    owner = _owner()
    hanging, _ = subscribe(receiver.url_for("/hang"), user=owner)
    subscribe(receiver.url_for("/ok"), user=owner)
    dispatcher = Dispatcher(concurrency=8, poll_seconds=0.05)
    dispatcher.start()
    try:
        ids = [_record(n) for n in range(6)]
        wait_until(lambda: len(receiver.at("/ok")) == 6, what="the healthy receiver's six deliveries")
        assert {r.header("webhook-id") for r in receiver.at("/ok")} == set(ids)
        time.sleep(0.3)
        # The hanging receiver holds only its cap of requests, the rest of its deliveries wait their turn.
        assert len(receiver.at("/hang")) == 3
        assert WebhookDelivery.objects.filter(subscription=hanging, status=DeliveryStatus.DELIVERING).count() == 3
        receiver.release.set()
        wait_until(lambda: WebhookDelivery.objects.filter(
            subscription=hanging, status=DeliveryStatus.DELIVERED).count() == 6, what="the released deliveries")
    finally:
        receiver.release.set()
        dispatcher.stop()
    assert not dispatcher.is_alive()


@pytest.mark.django_db(transaction=True)
def test_an_event_committed_while_the_worker_is_dead_is_delivered_once_after_restart(
    receiver, subscribe, tmp_path
):
    env = {"WEBHOOK_ALLOW_PRIVATE_URLS": "true", "WEBHOOK_POLL_SECONDS": "0.05"}
    first = WorkerProcess(data_dir=tmp_path, env=env).start()
    try:
        subscription, _ = subscribe(receiver.url_for("/ok"), user=_owner())
        wait_until(WorkerHeartbeat.objects.exists, what="the first worker's heartbeat", worker=first)
        first.signal(signal.SIGKILL)
        first.wait()
        event_id = _record(1)  # committed while no worker is alive
        time.sleep(0.3)
        assert receiver.at("/ok") == []
        second = WorkerProcess(data_dir=tmp_path, env=env).start()
        try:
            wait_until(lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 1,
                       what="the delivery after the restart", worker=second)
            time.sleep(0.5)
        finally:
            second.signal(signal.SIGTERM)
            second.wait()
    finally:
        first.stop()
    assert [r.header("webhook-id") for r in receiver.at("/ok")] == [event_id]
    assert WebhookDelivery.objects.get(subscription=subscription).attempt_count == 1
