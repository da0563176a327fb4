"""API clients authenticated by token in each role, and helpers shared by the API tests."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@pytest.fixture
def as_client(client_user) -> APIClient:
    return token_client(client_user)


@pytest.fixture
def as_reviewer(reviewer) -> APIClient:
    return token_client(reviewer)


@pytest.fixture
def as_admin(superuser) -> APIClient:
    return token_client(superuser)


@pytest.fixture(autouse=True)
def _generous_rate_limits(settings):
    # Rate limiting has its own tests; here a burst of requests must not be cut short by it.
    settings.RATE_LIMITS = {tier: (100_000, 3600) for tier in ("generation", "publishing", "approval", "read")}
