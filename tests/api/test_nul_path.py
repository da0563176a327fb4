"""A NUL byte in a path is not found, never a database error (PostgreSQL refuses NUL in text)."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/images/abc%00def"),
        ("post", "/api/v1/images/abc%00def/approve"),
        ("get", "/api/v1/products/abc%00def"),
        ("post", "/api/v1/generations/abc%00def/cancel"),
        ("delete", "/api/v2/product-templates/abc%00def"),
    ],
)
def test_an_id_with_a_nul_byte_is_not_found(as_admin, method, path):
    response = getattr(as_admin, method)(path, {}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"
    assert response["X-Request-ID"]


def test_an_admin_page_with_a_nul_byte_is_not_found(superuser):
    client = Client()
    client.force_login(superuser)
    assert client.post("/admin/images/image/abc%00/approve/").status_code == 404
    assert client.get("/admin/images/image/abc%00/change/").status_code == 404
