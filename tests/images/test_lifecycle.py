"""The image lifecycle: the transition table, history rows and outbox events, set-wise."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.errors import InvalidStateError, NotFoundError
from images.models import ImageStatus as S
from images.models import ImageTransition
from images.services import (
    TRANSITIONS,
    Actor,
    BatchNotAppliedError,
    image_approve,
    image_delete,
    image_reject,
    image_reset,
    images_approve,
    images_reject,
    images_transition,
)
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db


def test_transition_table_matches_contract():
    assert TRANSITIONS[S.PENDING] == {S.APPROVED, S.REJECTED}
    assert TRANSITIONS[S.APPROVED] == {S.PUBLISHING, S.PENDING}
    assert TRANSITIONS[S.REJECTED] == {S.APPROVED, S.PENDING}
    assert TRANSITIONS[S.PUBLISHING] == {S.PUBLISHED, S.FAILED}
    assert TRANSITIONS[S.FAILED] == {S.PUBLISHING, S.PENDING}
    assert TRANSITIONS[S.PUBLISHED] == {S.PUBLISHING}  # another product for the same design


def test_approve_records_history_and_event(make_image, reviewer_actor):
    image = make_image()
    image_approve(image_id=image.id, actor=reviewer_actor, note="crisp")
    image.refresh_from_db()
    assert image.status == S.APPROVED
    row = ImageTransition.objects.get(image=image)
    assert (row.from_status, row.to_status, row.actor_label, row.via, row.note) == (
        "pending", "approved", "reviewer1", "api", "crisp"
    )
    event = WebhookEvent.objects.get(event_type="image.approved")
    assert event.data["image_id"] == image.id


def test_refused_transition_changes_nothing(make_image, reviewer_actor):
    image = make_image(status=S.PUBLISHED)
    with pytest.raises(InvalidStateError):
        image_reject(image_id=image.id, actor=reviewer_actor)
    image.refresh_from_db()
    assert image.status == S.PUBLISHED
    assert not ImageTransition.objects.exists()
    assert not WebhookEvent.objects.exists()


def test_unknown_image_is_not_found(reviewer_actor):
    with pytest.raises(NotFoundError):
        image_approve(image_id="img_missing", actor=reviewer_actor)


def test_reset_returns_rejected_image_to_queue(make_image, reviewer_actor):
    image = make_image(status=S.REJECTED)
    image_reset(image_id=image.id, actor=reviewer_actor)
    image.refresh_from_db()
    assert image.status == S.PENDING
    row = ImageTransition.objects.get(image=image)
    assert (row.from_status, row.to_status) == ("rejected", "pending")


def test_batch_reports_successful_failed_and_skipped(make_image, reviewer_actor):
    pending, approved = make_image(), make_image(status=S.APPROVED)
    result = images_approve(image_ids=[pending.id, approved.id, "img_nope"], actor=reviewer_actor)
    body = result.as_dict()
    assert body["successful"] == [pending.id]
    assert body["failed"][0]["image_id"] == "img_nope" and body["failed"][0]["code"] == "NOT_FOUND"
    assert body["skipped"][0]["image_id"] == approved.id
    assert body["counts"] == {"successful": 1, "failed": 1, "skipped": 1, "total": 3}
    assert WebhookEvent.objects.filter(event_type="batch.completed").count() == 1


def test_atomic_batch_applies_nothing_when_one_is_refused(make_image, reviewer_actor):
    pending, published = make_image(), make_image(status=S.PUBLISHED)
    with pytest.raises(BatchNotAppliedError) as info:
        images_reject(image_ids=[pending.id, published.id], actor=reviewer_actor, atomic=True)
    assert info.value.result.successful == [pending.id]
    pending.refresh_from_db()
    assert pending.status == S.PENDING
    assert not WebhookEvent.objects.exists()


def test_one_approval_reads_nothing_beyond_what_the_move_needs(make_image, reviewer_actor):
    # The single-image services are the batch service for one id: no extra read of the row afterwards.
    one, other = make_image(), make_image()
    with CaptureQueriesContext(connection) as single:
        image_approve(image_id=one.id, actor=reviewer_actor)
    with CaptureQueriesContext(connection) as batch:
        images_transition(image_ids=[other.id], to_status=S.APPROVED, actor=reviewer_actor)
    assert len(single.captured_queries) == len(batch.captured_queries)


def test_batch_uses_constant_queries(make_image, reviewer_actor):
    def queries_for(n):
        ids = [make_image().id for _ in range(n)]
        with CaptureQueriesContext(connection) as ctx:
            images_approve(image_ids=ids, actor=Actor(reviewer_actor.user, "api"))
        return len(ctx.captured_queries)

    assert queries_for(3) == queries_for(30)


def test_delete_refuses_published_and_needs_force_for_approved(make_image, reviewer_actor):
    published, approved = make_image(status=S.PUBLISHED), make_image(status=S.APPROVED)
    with pytest.raises(InvalidStateError):
        image_delete(image_id=published.id, actor=reviewer_actor, force=True)
    with pytest.raises(InvalidStateError, match="force"):
        image_delete(image_id=approved.id, actor=reviewer_actor)
    image_delete(image_id=approved.id, actor=reviewer_actor, force=True)
    assert not type(approved).objects.filter(id=approved.id).exists()


def test_history_is_append_only(make_image, reviewer_actor):
    image = make_image()
    image_approve(image_id=image.id, actor=reviewer_actor)
    row = ImageTransition.objects.get(image=image)
    row.note = "rewritten"
    with pytest.raises(ValueError):
        row.save()


def test_events_are_recorded_once_per_change_and_never_for_a_skipped_image(make_image, reviewer_actor):
    pending, approved, rejected = make_image(), make_image(status=S.APPROVED), make_image(status=S.REJECTED)
    images_approve(image_ids=[pending.id, approved.id, rejected.id, pending.id, "img_nope"], actor=reviewer_actor)
    images_approve(image_ids=[pending.id], actor=reviewer_actor)  # already approved: nothing to record
    events = WebhookEvent.objects.filter(event_type="image.approved")
    assert sorted(e.data["image_id"] for e in events) == sorted([pending.id, rejected.id])
    assert {e.data["image_id"]: e.data["previous_status"] for e in events}[rejected.id] == "rejected"
    assert ImageTransition.objects.count() == 2
    with pytest.raises(InvalidStateError):
        image_reject(image_id=approved.id, actor=reviewer_actor)
    assert not WebhookEvent.objects.filter(event_type="image.rejected").exists()
    assert WebhookEvent.objects.filter(event_type="batch.completed").count() == 2


def test_force_delete_keeps_an_image_whose_product_exists_on_the_platform(make_image, reviewer_actor):
    from publishing.models import Product

    failed, plain = make_image(status=S.FAILED), make_image(status=S.FAILED)
    Product.objects.create(image=failed, platform="printify", status="failed", external_id="6578abc")
    with pytest.raises(InvalidStateError, match="exists on the platform"):
        image_delete(image_id=failed.id, actor=reviewer_actor, force=True)
    assert Product.objects.filter(image=failed).exists()
    image_delete(image_id=plain.id, actor=reviewer_actor, force=True)
    assert not type(plain).objects.filter(id=plain.id).exists()


def test_refused_delete_names_the_action(make_image, reviewer_actor):
    approved = make_image(status=S.APPROVED)
    with pytest.raises(InvalidStateError, match="cannot delete an image that is approved"):
        image_delete(image_id=approved.id, actor=reviewer_actor)
