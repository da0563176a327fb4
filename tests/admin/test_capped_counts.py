"""The generation and product lists at any size: counted a few pages past the page shown, never whole."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext

from images.models import Generation, ImageStatus
from publishing.models import Product

pytestmark = pytest.mark.django_db


def _counts(client, url: str, table: str) -> tuple[str, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    counts = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper() and table in q["sql"]]
    return response.content.decode(), counts


@pytest.mark.parametrize(("model", "url"), [(Generation, "/admin/images/generation/"),
                                            (Product, "/admin/publishing/product/")])
def test_the_generation_and_product_lists_are_counted_ten_pages_ahead(client, superuser, make_generation,
                                                                    make_image, monkeypatch, model, url):
    def make(n: int) -> None:
        for k in range(n):
            if model is Generation:
                make_generation(prompt=f"batch {k}")
            else:
                Product.objects.create(image=make_image(ImageStatus.APPROVED), platform="printify",
                                       status="published", external_url=f"https://shop.example/p/{k}")

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
    assert client.get(url + "?p=14").status_code == 200  # past the pages the first one counted
