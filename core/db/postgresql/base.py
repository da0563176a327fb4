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

A transaction begun inside a `core.db.pipeline.pipelined()` block is begun by a BEGIN statement sent
with the block's next one. psycopg begins a transaction by sending BEGIN before the first statement and,
in pipeline mode, waits for its answer there (a round trip for nothing); with psycopg left in autocommit
and the transaction begun by a statement, it rolls back as it does its own (ROLLBACK, waited for with
everything sent before it). Its COMMIT is sent and answered by the block's end, with everything sent
after it: a transaction that ends inside the block takes no round trip of its own at either end. Its
`on_commit` callbacks wait for that answer (`pipeline_ended`, called by the block): they run once
PostgreSQL has said COMMIT, and are dropped if it did not.
"""

from __future__ import annotations

import datetime
import functools
import select

import psycopg
from django.db.backends.postgresql import base
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from psycopg import pq
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


def _committed(cursor: psycopg.Cursor) -> bool:
    result = cursor.pgresult
    return result is not None and result.status == pq.ExecStatus.COMMAND_OK and result.command_status == b"COMMIT"


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self) -> ConnectionPool | None:
        pool = super().pool
        # Django passes psycopg_pool's check when CONN_HEALTH_CHECKS is on and takes no other; the pool
        # keeps it in an attribute it reads on each getconn().
        if pool is not None and pool._check is ConnectionPool.check_connection:
            pool._check = check_when_readable
        return pool

    # The psycopg pipeline of the `core.db.pipeline.pipelined()` block running on this connection, if any.
    pipeline: psycopg.Pipeline | None = None
    # The psycopg connection whose transaction a BEGIN statement began (psycopg stays in autocommit).
    _begun_by_statement: psycopg.Connection | None = None
    # The COMMITs sent in the pipeline and not answered yet: each one's cursor and the on_commit
    # callbacks waiting for its answer.
    _unanswered_commits: list[tuple[psycopg.Cursor, list]] | None = None

    def _start_transaction_under_autocommit(self) -> None:
        # Django's hook for the outermost atomic(): a backend that has it begins the transaction here.
        if self.pipeline is None:
            self._set_autocommit(False)  # psycopg's own BEGIN, sent with the first statement
            return
        isolation = self.connection.isolation_level
        begin = "BEGIN" if isolation is None else f"BEGIN ISOLATION LEVEL {isolation.name.replace('_', ' ')}"
        with self.wrap_database_errors:
            self.connection.execute(begin.encode(), prepare=False)
        self._begun_by_statement = self.connection

    def _commit(self) -> None:
        if self._begun_by_statement is not self.connection:
            return super()._commit()
        # psycopg, in autocommit, would not commit. The COMMIT is answered with everything else at the
        # block's end (an error is raised there); Django's on_commit callbacks wait for it.
        with self.wrap_database_errors:
            cursor = self.connection.execute(b"COMMIT", prepare=False)
            if self.pipeline is None:  # the block ended before the transaction (not as documented)
                return None
        self._unanswered_commits = [*(self._unanswered_commits or []), (cursor, [])]
        return None

    def run_and_clear_commit_hooks(self) -> None:
        if not self._unanswered_commits:
            return super().run_and_clear_commit_hooks()
        # Kept apart, with their COMMIT: a later transaction's rollback in the block empties `run_on_commit`.
        self._unanswered_commits[-1][1].extend(self.run_on_commit)
        self.run_on_commit = []
        return None

    def pipeline_ended(self) -> None:
        """Called by `core.db.pipeline.pipelined()` once its pipeline has ended, with or without an error:
        the on_commit callbacks of each COMMIT sent in it run if PostgreSQL answered it with COMMIT (after
        an error before it, the COMMIT is not run, or answered ROLLBACK; a lost connection answers nothing)."""
        commits, self._unanswered_commits = self._unanswered_commits or [], None
        if commits and not self.in_atomic_block and self.connection is not None and \
                self.connection.pgconn.transaction_status in (pq.TransactionStatus.INERROR,
                                                              pq.TransactionStatus.INTRANS):
            # A statement before the COMMIT failed: PostgreSQL skipped the COMMIT and the transaction
            # is still open (Django, whose commit() returned, would not roll it back).
            with self.wrap_database_errors:
                self.connection.execute(b"ROLLBACK", prepare=False)
        callbacks = [callback for cursor, waiting in commits if _committed(cursor) for callback in waiting]
        if callbacks:
            self.run_on_commit = callbacks + self.run_on_commit
            super().run_and_clear_commit_hooks()

    # Rolling back is psycopg's own: it syncs the pipeline first, then sees the open transaction.

    def _set_autocommit(self, autocommit: bool) -> None:
        if autocommit and self._begun_by_statement is not None:
            # psycopg never left autocommit; setting it would sync the pipeline (a round trip) to check
            # that no transaction is open.
            self._begun_by_statement = None
            if self.connection.autocommit:
                return
        super()._set_autocommit(autocommit)

    def get_connection_params(self) -> dict:
        params = super().get_connection_params()
        if self.timezone is datetime.UTC:
            params["context"] = _utc_adapters(params["context"])
        return params
