"""The generation and product lists at any size: all rows or one status counted by the database's counters,
any other list a few pages past the page shown, never whole."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.admin_tools import CappedPaginator
from core.db.counters import TABLE as COUNTERS
from images.models import Generation, Image, ImageStatus
from publishing.models import Product

pytestmark = pytest.mark.django_db


def _counts(client, url: str, table: str) -> tuple[str, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    # COUNTs of the table's rows (the counters' own table is read with COUNT(*) of its delta rows).
    counts = [q["sql"] for q in captured.captured_queries
              if "COUNT(" in q["sql"].upper() and table in q["sql"] and COUNTERS not in q["sql"]]
    return response.content.decode(), counts


def _maker(model, make_generation, make_image):
    def make(n: int, status: str = "") -> None:
        for k in range(n):
            if model is Generation:
                generation = make_generation(prompt=f"batch {k}")
                if status:
                    Generation.objects.filter(pk=generation.pk).update(status=status)
            else:
                Product.objects.create(image=make_image(ImageStatus.APPROVED), platform="printify",
                                       status=status or "published", external_url=f"https://shop.example/p/{k}")
    return make


# A filter the counters do not answer: these lists are counted ten pages ahead of the page shown.
FILTERED = {Generation: "/admin/images/generation/?backend=procedural",
            Product: "/admin/publishing/product/?platform=printify"}


@pytest.mark.parametrize(("model", "url"), [(Generation, FILTERED[Generation]), (Product, FILTERED[Product])])
def test_the_generation_and_product_lists_are_counted_ten_pages_ahead(client, superuser, make_generation,
                                                                    make_image, monkeypatch, model, url):
    make = _maker(model, make_generation, make_image)

    monkeypatch.setattr(admin.site._registry[model], "list_per_page", 1)
    client.force_login(superuser)
    table = model._meta.db_table
    make(5)
    text, counts = _counts(client, url, table)
    assert counts and all(re.search(r"LIMIT 12\b", sql) for sql in counts), counts
    assert f"5 {model._meta.verbose_name_plural}" in text
    make(10)
    text, counts = _counts(client, url, table)
    assert len(counts) == 1 and re.search(r"LIMIT 12\b", counts[0]), counts  # once: no "x of y" count
    assert f"more than 11 {model._meta.verbose_name_plural}" in text
    assert f"Select all of the more than 11 {model._meta.verbose_name_plural}" in text
    assert client.get(url + "&p=14").status_code == 200  # past the pages the first one counted


@pytest.mark.parametrize(("model", "url", "status", "unused"), [
    (Generation, "/admin/images/generation/", "failed", "running"),
    (Product, "/admin/publishing/product/", "failed", "uploading"),
])
def test_all_rows_or_one_status_are_counted_exactly_by_the_counters(
    client, superuser, make_generation, make_image, monkeypatch, model, url, status, unused
):
    make = _maker(model, make_generation, make_image)
    monkeypatch.setattr(admin.site._registry[model], "list_per_page", 1)
    client.force_login(superuser)
    table, plural = model._meta.db_table, model._meta.verbose_name_plural
    make(14)
    make(3, status)
    text, counts = _counts(client, url, table)
    assert counts == []  # no COUNT of the table at all
    assert f"17 {plural}" in text and "more than" not in text
    assert f"Select all 17 {plural}" in text
    text, counts = _counts(client, url + f"?status__exact={status}", table)
    assert counts == [] and f"3 {plural}" in text
    # A status no row has is 0 without counting; an unknown one, or the filter given twice, is counted.
    text, counts = _counts(client, url + f"?status__exact={unused}", table)
    assert counts == [] and f"0 {plural}" in text
    for query in ("?status__exact=nonsense", f"?status__exact={status}&status__exact=published",
                  "?q=batch", "?q=nothing-matches"):
        _text, counts = _counts(client, url + query, table)
        assert counts, query


def test_a_client_s_own_generations_are_counted_not_read_from_every_generation_s_counters(
    client, client_user, make_generation
):
    for k in range(4):
        make_generation(prompt=f"someone else's {k}")
    make_generation(prompt="mine", created_by=client_user)
    client_user.is_staff = True
    client_user.save()
    client.force_login(client_user)
    text, counts = _counts(client, "/admin/images/generation/", Generation._meta.db_table)
    # Their own, counted: the counters would tell them how many generations everyone has made.
    assert counts
    assert "1 generation" in text and "5 generations" not in text


def test_an_exact_count_past_the_last_page_offered_says_so_and_how_to_see_the_rest(
    client, superuser, make_image, monkeypatch
):
    for _ in range(5):
        make_image(ImageStatus.PENDING)
    monkeypatch.setattr(admin.site._registry[Image], "list_per_page", 1)
    monkeypatch.setattr(CappedPaginator, "max_pages", 3)
    client.force_login(superuser)
    text = client.get("/admin/images/image/").content.decode()
    assert "5 images — narrow the list" in text and "more than" not in text
    assert "Select all 5 images" in text
    text = client.get("/admin/images/image/?status__exact=approved").content.decode()
    assert "0 images" in text and "narrow the list" not in text
