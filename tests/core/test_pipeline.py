"""`pipelined()`: a decision's statements reach PostgreSQL in fewer round trips, with the same outcome."""

from __future__ import annotations

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction
from psycopg import pq

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


def test_one_approval_takes_three_round_trips_with_its_history_and_event(make_image, reviewer, relay):
    first, second = make_image(), make_image()
    actor = Actor(reviewer, Via.API)
    image_approve(image_id=first.id, actor=actor)  # the statements' first run on this connection
    relay.round_trips = 0

    image_approve(image_id=second.id, actor=actor)

    # The locking read (BEGIN sent with it); the update, history, the event's sequence number and the
    # event (numbered by its INSERT) with COMMIT; the pipeline's end (one each, without the pipeline: seven).
    assert relay.round_trips <= 3
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


def test_an_error_in_a_transaction_begun_in_the_block_rolls_it_back_and_the_connection_goes_on(make_image):
    image = make_image()
    with pytest.raises(IntegrityError), pipelined(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE images_image SET status = %s WHERE id = %s", [ImageStatus.REJECTED, image.id])
        cursor.execute("INSERT INTO images_image (id, status) VALUES (%s, %s)", [image.id, ImageStatus.PENDING])
    assert Image.objects.get(id=image.id).status == ImageStatus.PENDING
    # Out of the transaction: a statement of its own is committed by itself, as Django's autocommit says.
    assert connection.get_autocommit() and not connection.in_atomic_block
    Image.objects.filter(id=image.id).update(status=ImageStatus.REJECTED)
    with connection.cursor() as cursor:
        cursor.execute("SELECT status FROM images_image WHERE id = %s", [image.id])
        assert cursor.fetchone() == (ImageStatus.REJECTED,)
    assert connection.connection.pgconn.transaction_status == pq.TransactionStatus.IDLE


def test_a_transaction_begun_in_the_block_is_one_transaction_committed_at_its_end(make_image):
    first, second = make_image(), make_image()
    with pipelined():
        with transaction.atomic():
            Image.objects.filter(id=first.id).update(status=ImageStatus.REJECTED)
            with connection.cursor() as cursor:
                cursor.execute("SELECT txid_current()")
                inside = cursor.fetchone()[0]
                Image.objects.filter(id=second.id).update(status=ImageStatus.REJECTED)
                cursor.execute("SELECT txid_current()")
                assert cursor.fetchone()[0] == inside  # both statements in the one transaction
        # Committed when the atomic block ended, before the pipeline's: seen by another connection.
        assert _seen_elsewhere(first.id) == ImageStatus.REJECTED
        with connection.cursor() as cursor:
            cursor.execute("SELECT txid_current()")
            assert cursor.fetchone()[0] != inside
    assert _seen_elsewhere(second.id) == ImageStatus.REJECTED


def test_a_transaction_begun_in_the_block_has_the_connections_isolation_level(make_image):
    with pipelined(), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SHOW transaction_isolation")
        assert cursor.fetchone() == ("read committed",)
    isolation = psycopg.IsolationLevel.REPEATABLE_READ
    connection.connection.isolation_level = isolation
    try:
        with pipelined(), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SHOW transaction_isolation")
            assert cursor.fetchone() == ("repeatable read",)
    finally:
        connection.connection.isolation_level = None


def _seen_elsewhere(image_id: str) -> str:
    settings = connection.settings_dict
    with psycopg.connect(host=settings["HOST"] or "127.0.0.1", port=settings["PORT"] or 5432,
                         user=settings["USER"], password=settings["PASSWORD"], dbname=settings["NAME"]) as other:
        return other.execute("SELECT status FROM images_image WHERE id = %s", [image_id]).fetchone()[0]


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
