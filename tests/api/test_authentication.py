"""Token authentication reads the token and its user in one prepared query, as the ORM would load them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from api.authentication import token_with_user

pytestmark = pytest.mark.django_db


def test_the_token_and_its_user_are_what_the_orm_loads_field_by_field(superuser, django_assert_num_queries):
    key = Token.objects.create(user=superuser).key
    User.objects.filter(pk=superuser.pk).update(first_name="Ada", last_login=superuser.date_joined)
    with django_assert_num_queries(1):
        token = token_with_user(key)
    expected = Token.objects.select_related("user").get(key=key)
    for field in Token._meta.concrete_fields:
        assert getattr(token, field.attname) == getattr(expected, field.attname), field.name
    for field in User._meta.concrete_fields:
        ours, theirs = getattr(token.user, field.attname), getattr(expected.user, field.attname)
        # Types too: the database's raw values (text dates, 0/1 flags on SQLite) are converted.
        assert (ours, type(ours)) == (theirs, type(theirs)), field.name
    assert token.user.is_superuser is True
    assert token_with_user("no-such-key") is None


def test_an_unknown_token_and_an_inactive_users_token_are_refused(superuser):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    unknown = api.get("/api/v1/stats")
    assert unknown.status_code == 401 and unknown.json()["error"] == "Invalid token."
    key = Token.objects.create(user=superuser).key
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/stats").status_code == 200
    User.objects.filter(pk=superuser.pk).update(is_active=False)
    inactive = api.get("/api/v1/stats")
    assert inactive.status_code == 401 and inactive.json()["error"] == "User inactive or deleted."
