"""Token authentication that refuses a token which cannot be a key before looking it up.

DRF's TokenAuthentication queries any string; a key holding a NUL byte makes PostgreSQL raise
(a 500 instead of 401). A key is at most 40 printable ASCII characters (DRF makes 40 hex digits).
On PostgreSQL a web process reuses what it read for a token (with the user's permissions) until the
database says any of it changed (api.tokencache).
"""

from __future__ import annotations

import functools
import re

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from api.tokencache import token_cache

_KEY_RE = re.compile(r"[\x21-\x7e]{1,40}")


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`; a key that is not 1-40 printable ASCII characters is "Invalid token." (401)."""

    def authenticate_credentials(self, key):
        if not _KEY_RE.fullmatch(key):
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        token = _known_token(key)
        # DRF's own answers and checks, in its order.
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return token.user, token


def _known_token(key: str) -> Token | None:
    """`token_with_user(key)`, from the values this process read for it before while nothing they come
    from has changed (api.tokencache, on PostgreSQL), with the user's permissions read then."""
    cache = token_cache(connection.alias)
    if cache is None:
        return token_with_user(key)
    known = cache.get(key)
    if known is not None:
        return _token_of(*known)
    generation = cache.generation()
    values = _token_values(key)
    if values is None:
        return None
    permissions = _permissions(_token_of(values, None).user)
    if generation is not None:
        cache.put(key, (values, permissions), generation)
    return _token_of(values, permissions)


def token_with_user(key: str) -> Token | None:
    """The token of `key` with its user loaded, in one query (what `select_related("user").get()` reads).

    Every API request asks this. Written as SQL made once from the two models' fields, because the
    ORM compiling the same join again for each request cost more than the rest of a small request.
    """
    values = _token_values(key)
    return None if values is None else _token_of(values, None)


def _token_values(key: str) -> tuple | None:
    query = _token_query(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(query.sql, [key])
        row = cursor.fetchone()
    if row is None:
        return None
    # The values as the ORM would hand them over: the backend's and the fields' converters applied.
    return tuple(value if not converters else _converted(value, converters, column)
                 for value, (converters, column) in zip(row, query.converters, strict=True))


def _token_of(values: tuple, permissions: tuple | None) -> Token:
    """New instances (a request may change its own) of the token and user with these values, and the
    permission caches ModelBackend would have filled for the user."""
    query = _token_query(connection.vendor)
    split = len(query.token_fields)
    token = Token.from_db(connection.alias, query.token_fields, values[:split])
    token.user = query.user_model.from_db(connection.alias, query.user_fields, values[split:])
    if permissions is not None:
        for name, value in zip(_PERMISSION_CACHES, permissions, strict=True):
            setattr(token.user, name, set(value))
    return token


# What ModelBackend.get_all_permissions() keeps on the user instance, read once with the token.
_PERMISSION_CACHES = ("_user_perm_cache", "_group_perm_cache", "_perm_cache")
_MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _permissions(user) -> tuple | None:
    """The user's permissions as ModelBackend reads them (two queries), for an active user who is not a
    superuser (a superuser's are never read) when ModelBackend is the only backend; else None."""
    if list(settings.AUTHENTICATION_BACKENDS) != [_MODEL_BACKEND] or not user.is_active or user.is_superuser:
        return None
    ModelBackend().get_all_permissions(user)
    return tuple(frozenset(getattr(user, name)) for name in _PERMISSION_CACHES)


def _converted(value, converters, column):
    for convert in converters:
        value = convert(value, column, connection)
    return value


class _TokenQuery:
    def __init__(self) -> None:
        quote = connection.ops.quote_name
        user_key = Token._meta.get_field("user")
        self.user_model = user_key.related_model
        token_table, user_table = Token._meta.db_table, self.user_model._meta.db_table
        token_fields, user_fields = Token._meta.concrete_fields, self.user_model._meta.concrete_fields
        self.token_fields = [field.attname for field in token_fields]
        self.user_fields = [field.attname for field in user_fields]
        columns = [field.get_col(token_table) for field in token_fields]
        columns += [field.get_col(user_table) for field in user_fields]
        self.converters = [
            (connection.ops.get_db_converters(column) + column.get_db_converters(connection), column)
            for column in columns
        ]
        selected = ", ".join(f"{quote(column.alias)}.{quote(column.target.column)}" for column in columns)
        self.sql = (
            f"SELECT {selected} FROM {quote(token_table)} INNER JOIN {quote(user_table)} "
            f"ON {quote(token_table)}.{quote(user_key.column)} = "
            f"{quote(user_table)}.{quote(user_key.target_field.column)} "
            f"WHERE {quote(token_table)}.{quote(Token._meta.pk.column)} = %s"
        )


@functools.cache
def _token_query(vendor: str) -> _TokenQuery:
    return _TokenQuery()
