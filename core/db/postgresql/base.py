"""Django's PostgreSQL backend: timestamps read by psycopg's compiled loader, pooled connections
handed out without a round trip. Use it as ENGINE "core.db.postgresql".

Django registers its own loader for `timestamptz` columns: psycopg's pure-Python one, plus a
`replace(tzinfo=…)` per value. With the session in UTC — Django sets it so when USE_TZ is on and the
database has no TIME_ZONE of its own — psycopg's compiled loader already answers datetimes in
`datetime.timezone.utc`, the same values at a fifth of the cost (a list page reads a hundred). New
connections get Django's loader with that `load`, under the `timezone` Django's `create_cursor`
compares, so a cursor made while another time zone is in force still gets Django's own.

With CONN_HEALTH_CHECKS, Django has its psycopg pool check each connection it hands out with an empty
query: a round trip on every request. Here a connection is queried only when its socket has something
to read, which an idle connection has only when the server ended it (a restart, an administrator's
pg_terminate_backend, idle_session_timeout: the server sends a FATAL error and closes) — then the check
runs and a dead connection is replaced, as before. A connection the network cut without a word is not
caught by either before the request's own query, which would wait on it as the empty query would.
"""

from __future__ import annotations

import datetime
import functools
import select

import psycopg
from django.db.backends.postgresql import base
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from psycopg.abc import AdaptContext
from psycopg.adapt import AdaptersMap
from psycopg.pq import Format
from psycopg_pool import ConnectionPool

TIMESTAMPTZ_OID = psycopg.adapters.types["timestamptz"].oid


class UtcTimestamptzLoader(BaseTzLoader):
    """Django's loader for a UTC session, whose `load` is psycopg's compiled loader's (a compiled class
    cannot be subclassed; the instance's attribute is what psycopg calls per value)."""

    timezone = datetime.UTC

    def __init__(self, oid: int, context: AdaptContext | None = None) -> None:
        super().__init__(oid, context)
        self.load = _COMPILED(oid, context).load  # psycopg_binary's, when installed


_COMPILED = psycopg.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)


@functools.cache
def _utc_adapters(django_adapters: AdaptersMap) -> AdaptersMap:
    adapters = AdaptersMap(django_adapters)
    adapters.register_loader(TIMESTAMPTZ_OID, UtcTimestamptzLoader)
    return adapters


def check_when_readable(connection: psycopg.Connection) -> None:
    """A pool's `check`: psycopg_pool's own (a round trip) only when the idle connection's socket has
    something to read — the server's word that it ended the session, or its closed socket."""
    poll = select.poll()
    poll.register(connection.fileno(), select.POLLIN)
    if poll.poll(0):
        ConnectionPool.check_connection(connection)


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self) -> ConnectionPool | None:
        pool = super().pool
        # Django passes psycopg_pool's check when CONN_HEALTH_CHECKS is on and takes no other; the pool
        # keeps it in an attribute it reads on each getconn().
        if pool is not None and pool._check is ConnectionPool.check_connection:
            pool._check = check_when_readable
        return pool

    def get_connection_params(self) -> dict:
        params = super().get_connection_params()
        if self.timezone is datetime.UTC:
            params["context"] = _utc_adapters(params["context"])
        return params
