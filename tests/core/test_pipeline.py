"""`pipelined()`: a decision's statements reach PostgreSQL in fewer round trips, with the same outcome."""

from __future__ import annotations

import psycopg
import pytest
from django.db import IntegrityError, ProgrammingError, connection, transaction
from psycopg import pq

from core.actors import Actor, Via
from core.db.keyed import values_in, values_in_later
from core.db.pipeline import pipelined, pipelined_snapshot
from images import relations
from images.models import Image, ImageStatus, ImageTransition
from images.services import image_approve
from webhooks.models import WebhookEvent

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="round trips to a PostgreSQL server"),
    pytest.mark.django_db(transaction=True),
]


def test_one_approval_takes_two_round_trips_with_its_history_and_event(make_image, reviewer, relay):
    first, second = make_image(), make_image()
    actor = Actor(reviewer, Via.API)
    image_approve(image_id=first.id, actor=actor)  # the statements' first run on this connection
    relay.round_trips = 0

    image_approve(image_id=second.id, actor=actor)

    # The locking read (BEGIN sent with it); the update, history, the event's sequence number and the
    # event (numbered by its INSERT) with COMMIT, answered at the pipeline's end (one each, without the
    # pipeline: seven).
    assert relay.round_trips <= 2
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
        # COMMIT was sent when the atomic block ended: a statement after it is in a transaction of its own
        # and, answered, has the COMMIT answered before it (seen by another connection).
        with connection.cursor() as cursor:
            cursor.execute("SELECT txid_current()")
            assert cursor.fetchone()[0] != inside
        assert _seen_elsewhere(first.id) == ImageStatus.REJECTED
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


def _transaction_facts(cursor) -> tuple:
    cursor.execute("SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only'), "
                   "transaction_timestamp()")
    return cursor.fetchone()


def test_a_snapshot_block_reads_in_one_read_only_repeatable_read_transaction_and_one_round_trip(make_image, relay):
    with connection.cursor() as cursor:
        _transaction_facts(cursor)  # this connection's first statements
    relay.round_trips = 0

    first, second = connection.cursor(), connection.cursor()
    with pipelined_snapshot():
        first.execute("SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only'), "
                      "transaction_timestamp()")
        second.execute("SELECT transaction_timestamp()")
    facts, (stamp,) = first.fetchone(), second.fetchone()
    first.close(), second.close()

    assert relay.round_trips == 1  # BEGIN, both reads and COMMIT, answered by the block's end
    assert facts[:2] == ("repeatable read", "on") and facts[2] == stamp  # one transaction
    assert connection.connection.pgconn.transaction_status == pq.TransactionStatus.IDLE
    with connection.cursor() as cursor:
        assert _transaction_facts(cursor)[:2] == ("read committed", "off")  # out of it afterwards


def test_a_snapshot_block_sees_no_change_committed_while_it_reads(make_image):
    image = make_image()
    with pipelined_snapshot(), connection.cursor() as cursor:
        cursor.execute("SELECT status FROM images_image WHERE id = %s", [image.id])
        before = cursor.fetchone()  # read: the snapshot is taken
        _set_elsewhere(image.id, ImageStatus.REJECTED)
        cursor.execute("SELECT status FROM images_image WHERE id = %s", [image.id])
        after = cursor.fetchone()
    assert before == after == (ImageStatus.PENDING,)
    assert Image.objects.get(id=image.id).status == ImageStatus.REJECTED


def test_an_error_in_a_snapshot_block_ends_its_transaction_and_the_connection_goes_on(make_image):
    image = make_image()
    with pytest.raises(ProgrammingError), pipelined_snapshot(), connection.cursor() as cursor:
        cursor.execute("SELECT status FROM images_image WHERE id = %s", [image.id])
        cursor.execute("SELECT no_such_column FROM images_image")
    assert connection.connection.pgconn.transaction_status == pq.TransactionStatus.IDLE
    with pytest.raises(ValueError), pipelined_snapshot(), connection.cursor() as cursor:
        cursor.execute("SELECT status FROM images_image WHERE id = %s", [image.id])
        raise ValueError("the block's own error")
    assert connection.connection.pgconn.transaction_status == pq.TransactionStatus.IDLE
    Image.objects.filter(id=image.id).update(status=ImageStatus.REJECTED)  # a write: not in a read-only one
    assert _seen_elsewhere(image.id) == ImageStatus.REJECTED


def _set_elsewhere(image_id: str, status: str) -> None:
    settings = connection.settings_dict
    with psycopg.connect(host=settings["HOST"] or "127.0.0.1", port=settings["PORT"] or 5432,
                         user=settings["USER"], password=settings["PASSWORD"], dbname=settings["NAME"],
                         autocommit=True) as other:
        other.execute("UPDATE images_image SET status = %s WHERE id = %s", [status, image_id])


def test_on_commit_callbacks_of_a_transaction_in_the_block_run_once_its_commit_is_answered(make_image):
    first, second = make_image(), make_image()
    ran = []
    with pipelined():
        with transaction.atomic():
            Image.objects.filter(id=first.id).update(status=ImageStatus.REJECTED)
            transaction.on_commit(lambda: ran.append("first"))
        assert ran == []  # COMMIT sent, not answered yet
        # A later transaction rolled back in the same block takes only its own callbacks with it.
        with pytest.raises(ValueError), transaction.atomic():
            Image.objects.filter(id=second.id).update(status=ImageStatus.REJECTED)
            transaction.on_commit(lambda: ran.append("second"))
            raise ValueError("changed its mind")
    assert ran == ["first"]
    assert Image.objects.get(id=first.id).status == ImageStatus.REJECTED
    assert Image.objects.get(id=second.id).status == ImageStatus.PENDING


def test_a_commit_the_server_refuses_runs_no_callbacks_and_the_connection_goes_on():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE pod_deferred (id int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED)")
    ran = []
    try:
        with pytest.raises(IntegrityError), pipelined():
            with transaction.atomic(), connection.cursor() as cursor:
                # Checked only by COMMIT: the duplicate key is refused there.
                cursor.execute("INSERT INTO pod_deferred VALUES (1), (1)")
                transaction.on_commit(lambda: ran.append("committed"))
        assert ran == []
        assert connection.get_autocommit() and not connection.in_atomic_block
        assert connection.connection.pgconn.transaction_status == pq.TransactionStatus.IDLE
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pod_deferred")
            assert cursor.fetchone() == (0,)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS pod_deferred")


def test_an_error_before_the_commit_runs_no_callbacks_and_rolls_the_transaction_back(make_image):
    image = make_image()
    ran = []
    with pytest.raises(IntegrityError), pipelined():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE images_image SET status = %s WHERE id = %s", [ImageStatus.REJECTED, image.id])
            cursor.execute("INSERT INTO images_image (id, status) VALUES (%s, %s)", [image.id, ImageStatus.PENDING])
            transaction.on_commit(lambda: ran.append("committed"))
    assert ran == []
    assert connection.connection.pgconn.transaction_status == pq.TransactionStatus.IDLE
    assert Image.objects.get(id=image.id).status == ImageStatus.PENDING
