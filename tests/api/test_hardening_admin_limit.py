"""The admin's "start a generation" counts in the same generation window as the user's `POST generate`."""

from __future__ import annotations

import pytest
from django.test import Client

from images.models import Generation
from tests.api.conftest import token_client
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

START = "/admin/images/generation/add/"


@pytest.fixture
def limit(settings):
    settings.REDIS_URL = ""  # the database limiter: its buckets go with the test database
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "generation": (3, 3600)}


def start_form(n: int) -> dict:
    return {"prompt": f"a retro sunset cat number {n}", "batch_size": "1", "width": "1024", "height": "1024",
            "steps": "20", "guidance": "3.5", "seed": "", "backend": "procedural"}


def test_the_admin_start_is_refused_over_the_generation_limit(limit):
    user = make_user("rita", "reviewers", is_staff=True)
    client = Client()
    client.force_login(user)
    assert [client.post(START, start_form(n)).status_code for n in range(3)] == [302, 302, 302]
    refused = client.post(START, start_form(3))
    assert refused.status_code == 429
    assert "Rate limit exceeded for the generation tier" in refused.content.decode()
    assert refused["RateLimit-Policy"] == '"generation";q=3;w=3600' and int(refused["Retry-After"]) > 0
    assert Generation.objects.count() == 3


def test_the_api_and_the_admin_share_one_window_per_user(limit):
    user = make_user("rita", "reviewers", is_staff=True)
    api = token_client(user)
    for n in range(2):
        assert api.post("/api/v1/generate", {"prompt": f"api cat {n}"}, format="json").status_code == 202
    client = Client()
    client.force_login(user)
    assert client.post(START, start_form(0)).status_code == 302
    assert client.post(START, start_form(1)).status_code == 429
    assert api.post("/api/v1/generate", {"prompt": "api cat 9"}, format="json").status_code == 429
    # Another user has a window of its own.
    other = Client()
    other.force_login(make_user("sam", "reviewers", is_staff=True))
    assert other.post(START, start_form(2)).status_code == 302
