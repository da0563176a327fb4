"""The events services now record: generation.cancelled, image.deleted, batch.completed's id lists, the counter."""

from __future__ import annotations

import pytest
from django.db import transaction

from core import metrics
from core.actors import Actor, Via
from images.generation import generation_cancel
from images.models import Generation, ImageStatus
from images.services import images_approve, images_delete
from tests.webhooks.conftest import deliver_pass
from webhooks import services
from webhooks.models import EventType, WebhookEvent

pytestmark = pytest.mark.django_db


def test_cancelling_a_generation_records_generation_cancelled(reviewer):
    generation = Generation.objects.create(prompt="retro sunset cat", backend="procedural", prompt_hash="h",
                                           params={"batch_size": 1})
    generation_cancel(generation_id=generation.id, actor=Actor(reviewer, Via.API))
    (event,) = WebhookEvent.objects.filter(event_type=EventType.GENERATION_CANCELLED)
    assert event.data == {"generation_id": generation.id, "actor": "reviewer1", "via": "api", "sequence": 1}


def test_deleting_images_records_image_deleted_for_each_deleted_one_only(make_image, reviewer):
    pending, rejected, published = make_image(), make_image(status=ImageStatus.REJECTED), make_image(
        status=ImageStatus.PUBLISHED
    )
    images_delete(image_ids=[pending.id, rejected.id, published.id], actor=Actor(reviewer, Via.ADMIN))
    events = WebhookEvent.objects.filter(event_type=EventType.IMAGE_DELETED)
    assert sorted((e.data["image_id"], e.data["previous_status"], e.data["via"]) for e in events) == sorted(
        [(pending.id, "pending", "admin"), (rejected.id, "rejected", "admin")]
    )


def test_batch_completed_carries_the_id_lists_and_counts(make_image, reviewer):
    pending, approved = make_image(), make_image(status=ImageStatus.APPROVED)
    images_approve(image_ids=[pending.id, approved.id, "img_nope"], actor=Actor(reviewer, Via.API))
    (event,) = WebhookEvent.objects.filter(event_type=EventType.BATCH_COMPLETED)
    assert event.data == {
        "action": "approve", "successful": [pending.id], "failed": ["img_nope"], "skipped": [approved.id],
        "counts": {"successful": 1, "failed": 1, "skipped": 1, "total": 3},
    }


def test_deliveries_are_counted_by_event_type_and_outcome(receiver, subscribe, django_capture_on_commit_callbacks):
    subscribe(receiver.url_for("/ok"))
    subscribe(receiver.url_for("/status/500"))
    delivered = metrics.WEBHOOK_DELIVERIES.labels(event_type="image.rejected", outcome="delivered")
    retrying = metrics.WEBHOOK_DELIVERIES.labels(event_type="image.rejected", outcome="retrying")
    before = delivered._value.get(), retrying._value.get()
    with transaction.atomic():
        services.event_record(event_type=EventType.IMAGE_REJECTED, data={"image_id": "img_c"})
    with django_capture_on_commit_callbacks(execute=True):
        deliver_pass()
    assert (delivered._value.get() - before[0], retrying._value.get() - before[1]) == (1, 1)
