"""The admin login is limited with django-ratelimit, per client IP and per username."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import User
from django.test import Client


@pytest.fixture
def login_rate(settings):
    settings.ADMIN_LOGIN_RATE = (3, 300)


@pytest.fixture
def staff(db) -> User:
    # A fresh username per test: the per-username counter outlives the test database.
    return User.objects.create_superuser(username=f"staff-{uuid.uuid4().hex[:8]}", password="pw-staff")


def _ip() -> str:
    # A fresh address per test: the counters live in a cache shared across runs (files or Redis).
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


def _attempt(client: Client, username: str, ip: str, password: str = "wrong"):
    return client.post("/admin/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


@pytest.mark.django_db
def test_too_many_attempts_from_one_address_are_refused(login_rate):
    client, ip = Client(), _ip()
    for n in range(3):
        response = _attempt(client, f"user{n}-{uuid.uuid4().hex[:6]}", ip)
        assert response.status_code == 200  # the form again, with its error
        assert b"Please enter the correct username and password" in response.content
    refused = _attempt(client, f"another-{uuid.uuid4().hex[:6]}", ip)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "300"
    assert _attempt(client, f"another-{uuid.uuid4().hex[:6]}", _ip()).status_code == 200


@pytest.mark.django_db
def test_too_many_attempts_at_one_username_are_refused_from_any_address(login_rate, staff):
    client = Client()
    target = staff.username
    for _ in range(3):
        assert _attempt(client, target, _ip()).status_code == 200
    # Even the right password is refused now: the username is locked for the window.
    refused = _attempt(client, target.upper(), _ip(), password="pw-staff")
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_a_correct_login_within_the_limit_signs_in(login_rate, staff):
    client = Client()
    response = _attempt(client, staff.username, _ip(), password="pw-staff")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(staff.pk)
    # Signed in, the login page sends staff on to the admin index.
    assert client.get("/admin/login/", REMOTE_ADDR=_ip())["Location"] == "/admin/"
