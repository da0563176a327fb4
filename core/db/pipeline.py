"""`pipelined()`: a block's statements sent to PostgreSQL without waiting for each one's answer.

A review decision is a handful of small statements in one transaction (the locking read, the update,
the history row, the event's sequence number, the event) of which only two are read back. Waiting for
the answer to each cost a round trip to the server, and a round trip costs far more than the server's
work on these statements (the server process wakes up for each). In psycopg's pipeline mode a statement
is sent and the code goes on; a read (`fetch…`) waits for the answers to everything sent before it, and
leaving the block waits for the rest. The block's statements then take as many round trips as it has
reads, plus one for its end: worth it where a block sends more statements than that. Reads sent ahead
and read later (`core.db.keyed.values_in_later`) share the first one's round trip; read after the block
has ended, they cost none of their own (its end brought their answers).

An error is raised at the next read or when the block ends, not by the statement that caused it: use
the block only around code that does not catch database errors itself (no `try: … except
IntegrityError` inside, no savepoint meant to recover). For a transaction, this block first and then
`atomic()`: a transaction begun inside the block is begun by a BEGIN sent with its first statement and
committed by a COMMIT answered at the block's end with the rest (`core.db.postgresql`; its `on_commit`
callbacks run then, once PostgreSQL has said COMMIT), where psycopg, begun outside, would wait for its
BEGIN and the COMMIT would follow the block's end. Other databases run the block as it is (SQLite is
in-process: there is no round trip to save).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from psycopg import pq


def pipelines(using: str = DEFAULT_DB_ALIAS) -> bool:
    """Whether a `pipelined()` block on this database sends its statements without waiting (PostgreSQL)."""
    return connections[using].vendor == "postgresql"


@contextmanager
def pipelined(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    if not pipelines(using):
        yield
        return
    connection = connections[using]
    connection.ensure_connection()
    if connection.connection.pgconn.pipeline_status != pq.PipelineStatus.OFF:
        yield  # inside another block: its end waits for these statements too (a nested one would wait here)
        return
    # Errors psycopg raises when the block ends become Django's (IntegrityError, OperationalError, …),
    # as those of a read inside it already are.
    ended = getattr(connection, "pipeline_ended", None)
    try:
        with connection.wrap_database_errors, connection.connection.pipeline() as pipeline:
            # For the backend (core.db.postgresql): a transaction begun in the block is begun by a statement.
            connection.pipeline = pipeline
            try:
                yield
            finally:
                connection.pipeline = None
    finally:
        if ended is not None:
            ended()  # a COMMIT sent in the block has its answer: its on_commit callbacks run, or are dropped


@contextmanager
def pipelined_transaction(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """On PostgreSQL a block in one transaction and one pipeline, so that a change and the reads after it
    (an API answer showing it) share their round trips; the services inside keep their own transactions
    (savepoints then). Elsewhere the block as it is: on SQLite a transaction around the reads would only
    hold the database's one write lock longer."""
    if not pipelines(using):
        yield
        return
    with pipelined(using), transaction.atomic(using=using):
        yield


@contextmanager
def pipelined_snapshot(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """On PostgreSQL a block of reads in one pipeline and one read-only REPEATABLE READ transaction, begun
    and committed by statements sent with the block's own: its reads see the same rows (a page and, by a
    subquery of the page, the products of the images on it) and take one round trip, the block's end.
    Inside a transaction of the caller's, that one's; inside another block, that block's. Reads only: no
    `atomic()` in the block (its COMMIT would end the snapshot). Elsewhere the block as it is."""
    if not pipelines(using):
        yield
        return
    connection = connections[using]
    connection.ensure_connection()
    if connection.in_atomic_block or connection.connection.pgconn.pipeline_status != pq.PipelineStatus.OFF:
        with pipelined(using):
            yield  # in the caller's transaction or pipeline (whose end waits for these statements)
        return
    begun = connection.connection
    try:
        with pipelined(using):
            begun.execute(b"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", prepare=False)
            yield
            begun.execute(b"COMMIT", prepare=False)
    finally:
        # An error in the block (or a statement refused) leaves the transaction open: it ends here.
        if connection.connection is begun and begun.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            with connection.wrap_database_errors:
                begun.execute(b"ROLLBACK", prepare=False)
