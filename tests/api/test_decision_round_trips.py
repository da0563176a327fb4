"""A decision through the API and its answer, and a list page, reach PostgreSQL in few round trips, and
answer as before."""

from __future__ import annotations

import pytest
from django.db import connection

from images.models import ImageStatus, ImageTransition

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="round trips to a PostgreSQL server"),
    pytest.mark.django_db(transaction=True),
]


@pytest.mark.parametrize(("action", "status"), [("approve", ImageStatus.APPROVED), ("reject", ImageStatus.REJECTED)])
def test_a_decision_and_its_answer_take_five_round_trips_beyond_the_requests_own(
    as_reviewer, make_image, relay, action, status
):
    warm, image = make_image(), make_image()
    as_reviewer.post(f"/api/v1/images/{warm.id}/{action}", {}, format="json")  # this connection's first run
    relay.round_trips = 0
    not_text = {"note": ["not text"], "reason": ["not text"]}
    refused = as_reviewer.post(f"/api/v1/images/{image.id}/{action}", not_text, format="json")
    assert refused.status_code == 400
    own = relay.round_trips  # the token, the rate limit (in the database without Redis), nothing else
    relay.round_trips = 0

    response = as_reviewer.post(f"/api/v1/images/{image.id}/{action}", {}, format="json")

    assert response.status_code == 200, response.content
    # BEGIN, the locking read, the writes with the event's sequence number, the events with the answer's
    # three reads and the pipeline's end, COMMIT; one per statement before: ten.
    assert relay.round_trips - own <= 5
    body = response.json()
    assert body["status"] == status
    assert [entry["to_status"] for entry in body["history"]] == [status]
    assert ImageTransition.objects.filter(image_id=image.id).count() == 1


def test_a_list_page_reads_its_products_and_history_in_one_round_trip(as_reviewer, make_image, relay):
    images = [make_image() for _ in range(3)]
    as_reviewer.post(f"/api/v1/images/{images[0].id}/approve", {}, format="json")
    as_reviewer.get("/api/v1/images?page_size=2")  # this connection's first run of each statement
    relay.round_trips = 0
    past_the_end = as_reviewer.get("/api/v1/images?page_size=2&page=99")  # the token, the limit, the count
    assert past_the_end.status_code == 404
    own = relay.round_trips
    relay.round_trips = 0

    response = as_reviewer.get("/api/v1/images?page_size=3")

    assert response.status_code == 200
    # The page, then its products and history together; one each before.
    assert relay.round_trips - own <= 2
    body = response.json()
    assert body["count"] == 3 and {row["id"] for row in body["results"]} == {image.id for image in images}
    approved = next(row for row in body["results"] if row["id"] == images[0].id)
    assert [entry["to_status"] for entry in approved["history"]] == [ImageStatus.APPROVED]
