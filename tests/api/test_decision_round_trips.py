"""A decision through the API and its answer, and a list page, reach PostgreSQL in few round trips, and
answer as before."""

from __future__ import annotations

import functools

import pytest
from django.core.paginator import Paginator
from django.db import connection

from api.pagination import PagePagination
from images.models import ImageStatus, ImageTransition
from publishing.models import Product

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="round trips to a PostgreSQL server"),
    pytest.mark.django_db(transaction=True),
]


@pytest.mark.parametrize(("action", "status"), [("approve", ImageStatus.APPROVED), ("reject", ImageStatus.REJECTED)])
def test_a_decision_and_its_answer_take_two_round_trips_beyond_the_requests_own(
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
    # The locking read (BEGIN sent with it); the writes and the events (numbered by their INSERT) with the
    # answer's three reads and COMMIT, answered at the pipeline's end. One per statement before: ten.
    assert relay.round_trips - own <= 2
    body = response.json()
    assert body["status"] == status
    assert [entry["to_status"] for entry in body["history"]] == [status]
    assert ImageTransition.objects.filter(image_id=image.id).count() == 1


@pytest.mark.parametrize("query", ["", "&status=approved"])
def test_a_list_page_takes_one_round_trip_beyond_the_requests_own(as_reviewer, make_image, relay, query):
    images = [make_image() for _ in range(3)]
    for image in images:
        as_reviewer.post(f"/api/v1/images/{image.id}/approve", {}, format="json")
    for _ in range(6):  # past the runs after which the connection prepares each statement
        as_reviewer.get(f"/api/v1/images?page_size=3{query}")
    relay.round_trips = 0
    refused = as_reviewer.get(f"/api/v1/images?page_size=3&page=first{query}")
    assert refused.status_code == 400
    own = relay.round_trips  # the token (the rate limit is in Redis, or in the database)
    relay.round_trips = 0

    response = as_reviewer.get(f"/api/v1/images?page_size=3{query}")

    assert response.status_code == 200
    # The count, the page, its products and its history, in one snapshot (BEGIN and COMMIT sent with them);
    # one each before the pipeline, then two.
    assert relay.round_trips - own <= 1
    body = response.json()
    assert body["count"] == 3 and {row["id"] for row in body["results"]} == {image.id for image in images}
    assert all([entry["to_status"] for entry in row["history"]] == [ImageStatus.APPROVED] for row in body["results"])


def test_the_last_page_and_a_page_past_the_end_are_answered_as_before(as_reviewer, make_image):
    ids = {make_image().id for _ in range(5)}
    last = as_reviewer.get("/api/v1/images?page_size=2&page=3").json()
    assert last["count"] == 5 and len(last["results"]) == 1 and last["next"] is None
    assert as_reviewer.get("/api/v1/images?page_size=2&page=last").json()["results"] == last["results"]
    pages = [as_reviewer.get(f"/api/v1/images?page_size=2&page={n}").json()["results"] for n in (1, 2, 3)]
    assert {row["id"] for page in pages for row in page} == ids
    assert as_reviewer.get("/api/v1/images?page_size=2&page=4").status_code == 404


def test_a_page_the_paginator_slices_otherwise_shows_each_rows_own_products_and_history(
    as_reviewer, make_image, monkeypatch
):
    # With orphans Django's Paginator folds the last rows into the page before: page 2 of 5 by 2 reads
    # rows 3 to 5, not the 3 and 4 sent with the count.
    monkeypatch.setattr(PagePagination, "django_paginator_class", functools.partial(Paginator, orphans=1))
    images = [make_image() for _ in range(5)]
    for n, image in enumerate(images):
        as_reviewer.post(f"/api/v1/images/{image.id}/approve", {"note": f"n{n}"}, format="json")
        Product.objects.create(image=image, platform="printify", status="published",
                               external_url=f"https://shop.example/p/{n}")

    rows = as_reviewer.get("/api/v1/images?page_size=2&page=2").json()["results"]

    assert len(rows) == 3
    for row in rows:
        assert row["products"] and row["history"]
        assert row == as_reviewer.get(f"/api/v1/images/{row['id']}").json()


def test_the_stats_take_one_round_trip_beyond_the_requests_own(as_reviewer, make_image, relay):
    image = make_image()
    as_reviewer.post(f"/api/v1/images/{image.id}/approve", {}, format="json")
    Product.objects.create(image=image, platform="printify", status="published", external_url="https://shop.example/p/1")
    for _ in range(6):  # past the runs after which the connection prepares each statement
        as_reviewer.get("/api/v1/stats")
    relay.round_trips = 0
    assert as_reviewer.get("/api/v1/images?page=first").status_code == 400
    own = relay.round_trips  # the token (the rate limit is in Redis, or in the database)
    relay.round_trips = 0

    response = as_reviewer.get("/api/v1/stats")

    assert response.status_code == 200
    # The images', the generations' and the products' counters, sent together: one each before.
    assert relay.round_trips - own <= 1
    body = response.json()
    assert body["images"]["by_status"] == {"approved": 1} and body["images"]["total"] == 1
    assert body["products"] == {"total": 1, "by_status": {"published": 1}}
    assert body["generations"]["total"] == 0
