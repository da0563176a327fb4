"""The review queue at any size: no full count, every order read from an index, pages bounded."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse_lazy
from django.utils import timezone

from core.admin_tools import CappedPaginator
from core.db.bulk import insert_rows
from images.models import Image, ImageStatus
from images.selectors import generation_ids_of, images_pending
from publishing.review import workspace
from tests.plans import plan

pytestmark = pytest.mark.django_db

QUEUE = reverse_lazy("admin:images_image_changelist")
# list_display positions of the sortable columns: status, quality, created.
STATUS_COLUMN, QUALITY_COLUMN, CREATED_COLUMN = 2, 6, 7


def seed(n: int, **fields) -> list[str]:
    start = timezone.now() - timedelta(days=1)
    ids = [f"img_{uuid.uuid4().hex}" for _ in range(n)]
    statuses = [ImageStatus.PENDING, ImageStatus.APPROVED, ImageStatus.REJECTED]
    insert_rows(
        Image,
        fields=["id", "status", "prompt", "file", "sha256", "created_at", "quality_valid"],
        rows=[(i, fields.get("status", statuses[k % 3]), f"seeded {k} lighthouse", f"images/q/{i}.png",
               uuid.uuid4().hex * 2, start + timedelta(seconds=k), k % 5 != 0) for k, i in enumerate(ids)],
    )
    return ids


def page_queries(client, query: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(str(QUEUE) + query)
    assert response.status_code == 200, query
    return [q["sql"] for q in captured.captured_queries]


def counts_of_images(queries: list[str]) -> list[str]:
    return [sql for sql in queries
            if "COUNT(" in sql.upper() and "images_image" in sql and "core_status_count" not in sql]


@pytest.mark.parametrize("query", ["", "?status__exact=pending", "?status__exact=approved&p=2"])
def test_the_queue_and_each_status_are_counted_from_the_counters(client, staff_reviewer, query):
    seed(300)
    client.force_login(staff_reviewer)
    queries = page_queries(client, query)
    assert counts_of_images(queries) == [], "no COUNT over the images table"
    response = client.get(str(QUEUE) + query)
    expected = Image.objects.filter(**({"status": query.split("=")[1].split("&")[0]} if query else {})).count()
    assert response.context["cl"].result_count == expected


@pytest.mark.parametrize("query", ["?status__exact=", "?status__exact=pending&status__exact=approved"])
def test_an_empty_or_repeated_status_is_counted_as_what_the_list_shows(client, staff_reviewer, query):
    seed(30)
    client.force_login(staff_reviewer)
    response = client.get(str(QUEUE) + query)
    assert response.status_code == 200
    cl = response.context["cl"]
    assert cl.result_count == cl.queryset.count()


@pytest.mark.parametrize("query", [
    "?q=lighthouse", "?quality=errors", "?created_at__gte=2000-01-01+00:00:00%2B00:00", f"?o={STATUS_COLUMN}",
    f"?o=-{QUALITY_COLUMN}", "?status__exact=pending&quality=valid", "?generation=gen_x",
])
def test_other_lists_count_at_most_one_row_past_the_last_page(client, staff_reviewer, query):
    seed(30)
    client.force_login(staff_reviewer)
    queries = page_queries(client, query)
    for sql in counts_of_images(queries):
        assert re.search(r"LIMIT \d+", sql), sql
        # Only the images: the page's "duplicate prompt" marks are no part of the count.
        assert "images_generation" not in sql, sql


def test_the_page_costs_the_same_number_of_queries_with_filters_search_and_sorting(
    client, staff_reviewer, django_assert_max_num_queries
):
    seed(120)
    client.force_login(staff_reviewer)
    client.get(str(QUEUE))  # the session and permission caches warm up
    for query in ["", "?status__exact=pending", "?q=lighthouse+seeded", f"?o=-{CREATED_COLUMN}", "?p=2",
                  "?quality=warnings&status__exact=approved"]:
        with django_assert_max_num_queries(8):
            assert client.get(str(QUEUE) + query).status_code == 200


def test_the_generation_filter_lists_only_the_latest_generations(client, staff_reviewer, make_generation, make_image):
    generations = [make_generation(prompt=f"gen {n}") for n in range(20)]
    for n, generation in enumerate(generations):
        make_image(generation=generation, batch_index=0, created_at=timezone.now() + timedelta(minutes=n))
    client.force_login(staff_reviewer)
    response = client.get(str(QUEUE) + f"?generation={generations[0].pk}")
    spec = next(f for f in response.context["cl"].filter_specs if getattr(f, "parameter_name", None) == "generation")
    listed = [value for value, _ in spec.lookup_choices]
    assert len(listed) == 16 and generations[0].pk in listed  # the 15 newest and the one chosen
    assert generations[1].pk not in listed
    assert [i.pk for i in response.context["cl"].result_list] == [generations[0].images.get().pk]


def test_pages_stop_at_the_last_one_offered_and_the_count_says_more(client, staff_reviewer, monkeypatch):
    seed(12, status=ImageStatus.APPROVED)
    monkeypatch.setattr(CappedPaginator, "max_pages", 2)
    monkeypatch.setattr(admin.site._registry[Image], "list_per_page", 3)
    client.force_login(staff_reviewer)
    assert client.get(str(QUEUE) + "?p=2").status_code == 200
    deep = client.get(str(QUEUE) + "?p=3")
    assert deep.status_code == 302 and "e=1" in deep["Location"]
    searched = client.get(str(QUEUE) + "?q=lighthouse")
    assert searched.context["cl"].paginator.num_pages == 2
    assert "more than 6 images" in searched.content.decode()


@pytest.mark.parametrize(("query", "index"), [
    ("", "image_queue_order"),
    ("?status__exact=pending", "image_status_order"),
    (f"?o={STATUS_COLUMN}", "image_status_order"),
    (f"?o=-{STATUS_COLUMN}.{CREATED_COLUMN}", "image_status_order"),
    (f"?o={QUALITY_COLUMN}", "image_quality_order"),
    (f"?o=-{CREATED_COLUMN}", "image_created_order"),
    (f"?o={CREATED_COLUMN}", "image_created_order"),
])
def test_every_order_of_the_queue_is_read_from_an_index_without_sorting(client, staff_reviewer, query, index):
    seed(30)
    client.force_login(staff_reviewer)
    cl = client.get(str(QUEUE) + query).context["cl"]
    text = plan(cl.queryset[50:100])
    if connection.vendor == "postgresql":
        assert re.search(rf"Index Scan (Backward )?using {index} on images_image", text), text
        assert not re.search(r"^\s*(->\s+)?Sort", text, re.MULTILINE), text
    else:
        assert f"USING INDEX {index}" in text, text
        assert "TEMP B-TREE" not in text, text


@pytest.mark.parametrize("filters", [{}, {"quality": "errors"}])
def test_the_workspace_reads_the_tiles_after_a_position_as_a_range_of_an_index(filters):
    # The tiles past the first page (scrolling the queue) start at the last one shown: a range of the
    # pending order's index, not a walk from the queue's oldest image up to that position.
    ids = seed(30, status=ImageStatus.PENDING)
    position = Image.objects.get(pk=ids[15])
    rows = workspace.queue_rows(**filters, after=(position.created_at, position.pk))
    assert [row["id"] for row in rows] == [i for i in ids[16:] if "quality" not in filters
                                          or not Image.objects.get(pk=i).quality_valid]
    text = plan(rows.all()[:48])
    if connection.vendor == "postgresql":
        assert re.search(r"Index Scan (Backward )?using image_status_order on images_image", text), text
        assert re.search(r"Index Cond: \(.*status.* AND \(created_at >= ", text), text
    else:
        assert re.search(r"USING INDEX image_status_order \(status=\? AND created_at>\?\)", text), text


def test_the_workspace_offers_the_generations_of_the_newest_pending_images(client, staff_reviewer, make_generation,
                                                                         make_image):
    # A reviewer who has caught up: a few old images wait, every newer generation is decided.
    old = [make_generation(prompt=f"old batch {n}") for n in range(2)]
    for generation in old:
        make_image(generation=generation, batch_index=0)
    decided = [make_generation(prompt=f"decided batch {n}") for n in range(40)]
    for generation in decided:
        make_image(ImageStatus.APPROVED, generation=generation, batch_index=0)
    newest = make_generation(prompt="newest batch")
    make_image(generation=newest, batch_index=0)
    make_image(generation=newest, batch_index=1)
    make_image()  # an upload: no generation
    client.force_login(staff_reviewer)
    with CaptureQueriesContext(connection) as captured:
        choices = client.get("/admin/review/").context["generation_choices"]
    assert [value for value, _ in choices] == [newest.pk, old[1].pk, old[0].pk]
    walks = [q["sql"] for q in captured.captured_queries
             if re.search(r'FROM "images_generation" WHERE EXISTS', q["sql"])]
    assert walks == []
    # Read from the newest pending images through the pending order's index: not by asking each
    # generation, the decided ones too, whether it has a pending image.
    text = plan(generation_ids_of(images_pending(newest_first=True)))
    if connection.vendor == "postgresql":
        assert re.search(r"Index Scan (Backward )?using image_status_order on images_image", text), text
    else:
        assert "USING INDEX image_status_order (status=?)" in text, text
    assert "images_generation" not in text, text


def test_the_queue_offers_the_generations_of_the_newest_images_from_the_created_index(client, staff_reviewer,
                                                                                    make_generation, make_image):
    with_images = [make_generation(prompt=f"made {n}") for n in range(2)]
    for generation in with_images:
        make_image(generation=generation, batch_index=0)
    for n in range(30):
        make_generation(prompt=f"failed {n}", status="failed")  # newer, and no image
    client.force_login(staff_reviewer)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(str(QUEUE))
    spec = next(f for f in response.context["cl"].filter_specs if getattr(f, "parameter_name", None) == "generation")
    assert [value for value, _ in spec.lookup_choices] == [with_images[1].pk, with_images[0].pk]
    assert not [q["sql"] for q in captured.captured_queries
                if re.search(r'FROM "images_generation" WHERE EXISTS', q["sql"])]
    text = plan(generation_ids_of(Image.objects.order_by("-created_at", "-id")))
    if connection.vendor == "postgresql":
        assert re.search(r"Index Scan (Backward )?using image_created_order on images_image", text), text
    else:
        assert "USING INDEX image_created_order" in text, text
    assert "images_generation" not in text, text


def test_a_filtered_list_is_counted_a_few_pages_past_the_page_shown(client, staff_reviewer, monkeypatch):
    # A filter few rows match is counted by reading its index until enough rows match: up to ten pages
    # past the page shown, not to the last page offered.
    seed(60, status=ImageStatus.PENDING)
    monkeypatch.setattr(admin.site._registry[Image], "list_per_page", 2)
    monkeypatch.setattr(CappedPaginator, "max_pages", 15)
    client.force_login(staff_reviewer)
    for page, pages in ((1, 11), (3, 13), (8, 15)):
        queries = page_queries(client, f"?q=lighthouse&p={page}")
        assert [re.search(r"LIMIT (\d+)", sql).group(1) for sql in counts_of_images(queries)] == [str(2 * pages + 1)]
        cl = client.get(str(QUEUE) + f"?q=lighthouse&p={page}").context["cl"]
        assert cl.paginator.capped and cl.paginator.num_pages == min(pages + 1, 15)
        text = client.get(str(QUEUE) + f"?q=lighthouse&p={page}").content.decode()
        assert f"more than {2 * pages} images" in text
        assert ("narrow the list" in text) == (pages == 15)  # only at the last page offered
        # "Select all" across the pages takes every image the list holds: not said to be that many.
        assert f"Select all of the more than {2 * pages} images" in text
        assert f"Select all {cl.result_count} " not in text
    last = client.get(str(QUEUE) + "?q=lighthouse&p=12")  # past the pages the first one counted
    assert [row.pk for row in last.context["cl"].result_list] == \
        list(Image.objects.order_by("-created_at", "-id").values_list("pk", flat=True)[22:24])
