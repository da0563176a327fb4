"""A decision through the API and its answer reach PostgreSQL in few round trips, and answer as before."""

from __future__ import annotations

import pytest
from django.db import connection

from images.models import ImageStatus, ImageTransition

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="round trips to a PostgreSQL server"),
    pytest.mark.django_db(transaction=True),
]


@pytest.mark.parametrize(("action", "status"), [("approve", ImageStatus.APPROVED), ("reject", ImageStatus.REJECTED)])
def test_a_decision_and_its_answer_take_six_round_trips_beyond_the_requests_own(
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
    # BEGIN, the locking read, the writes with the event's sequence number, the answer's three reads,
    # the pipeline's end, COMMIT; one per statement before: ten.
    assert relay.round_trips - own <= 6
    body = response.json()
    assert body["status"] == status
    assert [entry["to_status"] for entry in body["history"]] == [status]
    assert ImageTransition.objects.filter(image_id=image.id).count() == 1
