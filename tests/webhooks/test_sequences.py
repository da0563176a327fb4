"""Each object's events are numbered 1, 2, 3, … (`sequence`), handed out in one statement per batch."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from webhooks import services
from webhooks.models import EventSequence, EventType, WebhookEvent

pytestmark = pytest.mark.django_db


def _record(*image_ids: str) -> None:
    with transaction.atomic():
        services.events_record(event_type=EventType.IMAGE_APPROVED,
                               payloads=[{"image_id": image_id} for image_id in image_ids])


def _sequences(image_id: str) -> list[int]:
    return sorted(WebhookEvent.objects.filter(data__image_id=image_id).values_list("data__sequence", flat=True))


def test_a_subject_named_n_times_in_a_batch_gets_n_consecutive_numbers_after_its_last():
    _record("img_a", "img_b")
    _record("img_a", "img_c", "img_a", "img_b", "img_a")
    assert _sequences("img_a") == [1, 2, 3, 4]
    assert _sequences("img_b") == [1, 2]
    assert _sequences("img_c") == [1]
    # Within the batch the numbers follow the order of the payloads.
    events = WebhookEvent.objects.filter(data__image_id="img_a").order_by("created_at", "id")
    assert [event.data["sequence"] for event in events] == [1, 2, 3, 4]
    assert dict(EventSequence.objects.values_list("subject", "last")) == {"img_a": 4, "img_b": 2, "img_c": 1}


def test_a_batch_of_mixed_repeats_takes_one_sequence_statement_and_one_insert():
    _record("img_a")
    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        services.events_record(event_type=EventType.IMAGE_APPROVED,
                               payloads=[{"image_id": i} for i in ("img_a", "img_b", "img_b", "img_c", "img_c",
                                                                   "img_c")])
    statements = [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(("BEGIN", "SAVEPOINT",
                                                                                          "RELEASE"))]
    assert len(statements) == 2, statements
    assert _sequences("img_c") == [1, 2, 3]


def test_one_event_takes_one_sequence_statement_and_one_insert():
    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        services.event_record(event_type=EventType.IMAGE_APPROVED, data={"image_id": "img_a"})
    statements = [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(("BEGIN", "SAVEPOINT",
                                                                                          "RELEASE"))]
    assert len(statements) == 2, statements


def test_events_without_a_subject_take_no_sequence():
    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        services.events_record(event_type=EventType.BATCH_COMPLETED, payloads=[{"action": "approve"}])
    assert not any("eventsequence" in q["sql"].lower() for q in captured.captured_queries)
    assert "sequence" not in WebhookEvent.objects.get().data


@pytest.mark.django_db(transaction=True)
def test_concurrent_changes_of_one_object_never_share_a_number():
    threads, rounds = 4, 15
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work() -> None:
        try:
            start.wait()
            for _ in range(rounds):
                _record("img_x", "img_x")
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert _sequences("img_x") == list(range(1, threads * rounds * 2 + 1))


def test_a_batch_mixing_events_with_and_without_a_subject_numbers_only_those_with_one():
    _record("img_m")
    with transaction.atomic():
        services.events_record(event_type=EventType.IMAGE_APPROVED, payloads=[
            {"image_id": "img_m", "note": "first"}, {"action": "approve", "nested": {"b": [1, 2]}},
            {"image_id": "img_m", "sequence": 99, "note": "second"}, {"image_id": "", "generation_id": "gen_m"},
        ])
    events = list(WebhookEvent.objects.order_by("created_at", "id").values_list("data", flat=True))
    assert events == [
        {"image_id": "img_m", "sequence": 1},
        {"image_id": "img_m", "note": "first", "sequence": 2},
        {"action": "approve", "nested": {"b": [1, 2]}},
        {"image_id": "img_m", "sequence": 3, "note": "second"},  # the subject's number, not the payload's
        {"image_id": "", "generation_id": "gen_m", "sequence": 1},  # an empty id names no subject
    ]
