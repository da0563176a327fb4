"""Batch approval is set-wise at full size: 500 images take as many queries as 10, on every database."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from images.models import Image, ImageStatus, ImageTransition
from images.services import images_approve
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db


def _pending(count: int, tag: str) -> list[str]:
    # Rows only (no files): the service never reads the bytes.
    images = [
        Image(status=ImageStatus.PENDING, prompt=f"{tag} {n}", width=64, height=64, format="PNG",
              sha256=f"{tag}{n}".ljust(64, "0"))
        for n in range(count)
    ]
    return [image.id for image in Image.objects.bulk_create(images)]


def _approve_queries(ids: list[str], actor) -> int:
    with CaptureQueriesContext(connection) as captured:
        result = images_approve(image_ids=ids, actor=actor)
    assert result.successful == ids
    return len(captured.captured_queries)


def test_batch_approve_of_500_takes_as_many_queries_as_10(reviewer_actor):
    small, big = _pending(10, "a"), _pending(500, "b")
    assert _approve_queries(big, reviewer_actor) == _approve_queries(small, reviewer_actor)
    # Every image moved, with one history row and one image.approved event each.
    assert Image.objects.filter(status=ImageStatus.APPROVED).count() == 510
    assert ImageTransition.objects.filter(to_status="approved").count() == 510
    assert WebhookEvent.objects.filter(event_type="image.approved").count() == 510


def test_api_batch_approve_of_500_takes_as_many_queries_as_10(reviewer_actor, settings):
    from tests.api.conftest import token_client

    settings.RATE_LIMITS = {tier: (100_000, 3600) for tier in ("generation", "publishing", "approval", "read")}
    client = token_client(reviewer_actor.user)
    small, big, warm = _pending(10, "c"), _pending(500, "d"), _pending(1, "e")

    def queries(ids: list[str]) -> int:
        with CaptureQueriesContext(connection) as captured:
            response = client.post("/api/v1/batch/approve", {"image_ids": ids}, format="json")
        assert response.status_code == 200, response.content[:300]
        assert response.json()["counts"]["successful"] == len(ids)
        return len(captured.captured_queries)

    queries(warm)  # the client's first request creates its rate-limit bucket
    assert queries(big) == queries(small)


def test_batch_events_keep_the_order_of_the_batch(reviewer_actor):
    ids = _pending(50, "f")
    images_approve(image_ids=ids, actor=reviewer_actor, note="ok")
    events = list(WebhookEvent.objects.all())  # the outbox order: created_at, id
    assert [event.data["image_id"] for event in events[:-1]] == ids
    assert events[-1].event_type == "batch.completed"
    assert events[0].data == {"image_id": ids[0], "status": "approved", "previous_status": "pending",
                              "actor": "reviewer1", "via": "api", "note": "ok", "sequence": 1}
    assert all(event.id.startswith("evt_") and len(event.id) == 30 for event in events)
    history = ImageTransition.objects.get(image_id=ids[0])
    assert (history.from_status, history.to_status, history.actor_id, history.actor_label, history.via,
            history.note) == ("pending", "approved", reviewer_actor.user.pk, "reviewer1", "api", "ok")
