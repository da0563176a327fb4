"""`pipelined()`: a decision's statements reach PostgreSQL in fewer round trips, with the same outcome."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from core.actors import Actor, Via
from core.db.keyed import values_in, values_in_later
from core.db.pipeline import pipelined
from images import relations
from images.models import Image, ImageStatus, ImageTransition
from images.services import image_approve
from webhooks.models import WebhookEvent

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="round trips to a PostgreSQL server"),
    pytest.mark.django_db(transaction=True),
]


def test_one_approval_takes_five_round_trips_with_its_history_and_event(make_image, reviewer, relay):
    first, second = make_image(), make_image()
    actor = Actor(reviewer, Via.API)
    image_approve(image_id=first.id, actor=actor)  # the statements' first run on this connection
    relay.round_trips = 0

    image_approve(image_id=second.id, actor=actor)

    # BEGIN, the locking read, the update + history + the event's sequence number, the event, COMMIT
    # (one each, without the pipeline: seven).
    assert relay.round_trips <= 5
    assert Image.objects.get(id=second.id).status == ImageStatus.APPROVED
    history = ImageTransition.objects.filter(image_id=second.id).values_list("from_status", "to_status")
    assert list(history) == [(ImageStatus.PENDING, ImageStatus.APPROVED)]
    event = WebhookEvent.objects.get(event_type="image.approved", data__image_id=second.id)
    assert event.data["previous_status"] == ImageStatus.PENDING


def test_an_error_in_the_block_is_djangos_and_the_transaction_keeps_nothing(make_image):
    image = make_image()
    with pytest.raises(IntegrityError), transaction.atomic(), pipelined(), connection.cursor() as cursor:
        cursor.execute("UPDATE images_image SET status = %s WHERE id = %s", [ImageStatus.REJECTED, image.id])
        # A row the server refuses (the same primary key, no file): reported when the block ends.
        cursor.execute("INSERT INTO images_image (id, status) VALUES (%s, %s)", [image.id, ImageStatus.PENDING])
    assert Image.objects.get(id=image.id).status == ImageStatus.PENDING


def test_reads_sent_before_the_first_is_read_share_its_round_trip(make_image, reviewer, relay):
    image = make_image()
    image_approve(image_id=image.id, actor=Actor(reviewer, Via.API))
    fields = ("id", "status")
    history_fields = ("image_id", "from_status", "to_status")
    expected = (values_in(Image, key="id", keys=[image.id], fields=fields),
                values_in(ImageTransition, key="image_id", keys=[image.id], fields=history_fields),
                relations.product_summaries([image.id]))
    relay.round_trips = 0

    with pipelined():
        row = values_in_later(Image, key="id", keys=[image.id], fields=fields)
        history = values_in_later(ImageTransition, key="image_id", keys=[image.id], fields=history_fields)
        products = relations.product_summaries_later([image.id])
        answers = (row(), history(), products())

    # All three answers come with the first read's round trip; leaving the block is the other one.
    assert relay.round_trips == 2
    assert answers == expected
    assert answers[0] == [{"id": image.id, "status": ImageStatus.APPROVED}]
