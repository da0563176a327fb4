"""Rows per status, kept by the database itself: `status_counts(connection, table)` in constant time.

A `COUNT(*) … GROUP BY status` reads every row, so the stats, the review-queue badge and the pending
gauge grew with the table. Instead each counted table carries triggers that keep `core_status_count`
up to date on every INSERT, UPDATE and DELETE — whoever writes the rows: the services, a queryset
`update()`, a bulk insert by a script, a data migration, `loaddata`.

- SQLite has row triggers only; it has one writer at a time, so each row adds to or takes from one
  counter row in place (an UPSERT).
- PostgreSQL runs one statement trigger per INSERT/UPDATE/DELETE statement that appends the statement's
  net change per status as a *delta row* (from the transition tables), so a million-row INSERT costs one
  small insert and concurrent writers never wait on, or deadlock over, a shared counter row. Readers sum
  the rows of a table (exact: a committed transaction's deltas are all visible or none are) and fold
  them back into one row per status when they have piled up. A TRUNCATE zeroes the table's counters.

The counts table is not a Django model on purpose: `dumpdata`/`loaddata` and `flush` must not copy or
keep it separately from the rows it counts (a restore re-counts through the triggers).

`counters_ensure` creates what is missing and, when it had to (re)create a table's triggers, counts that
table afresh. Migrations call it, and so does `post_migrate` (core.apps), because Django's SQLite schema
editor rebuilds a table for many field changes and the rebuilt table has lost its triggers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

TABLE = "core_status_count"
# Delta rows a reader tolerates before folding them into one row per status (PostgreSQL).
FOLD_AFTER_ROWS = 200

_SQLITE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    tbl TEXT NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (tbl, status)
) WITHOUT ROWID
"""
# No key on PostgreSQL: a table's counts are its rows' sum (one per status after a fold, plus deltas).
_PG_TABLE = [
    f"CREATE TABLE IF NOT EXISTS {TABLE} (tbl TEXT NOT NULL, status TEXT NOT NULL, n BIGINT NOT NULL)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_tbl ON {TABLE} (tbl)",
]

# The counted columns are all `status`: for them the statements are static, and PL/pgSQL keeps their
# plans per table and session (an EXECUTE is parsed and planned on every run: 0.2 ms of a one-row UPDATE,
# against 0.085 ms for the static statements). Another column name takes the dynamic statements.
_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION core_status_count_delta() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    col text := TG_ARGV[0];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM {TABLE} WHERE tbl = TG_TABLE_NAME;
    ELSIF col = 'status' THEN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO {TABLE} (tbl, status, n) SELECT TG_TABLE_NAME, status, count(*) FROM new_rows GROUP BY 2;
        ELSIF TG_OP = 'DELETE' THEN
            INSERT INTO {TABLE} (tbl, status, n) SELECT TG_TABLE_NAME, status, -count(*) FROM old_rows GROUP BY 2;
        ELSE
            INSERT INTO {TABLE} (tbl, status, n) SELECT TG_TABLE_NAME, s, sum(d) FROM (
                SELECT status AS s, 1 AS d FROM new_rows UNION ALL SELECT status, -1 FROM old_rows
            ) AS changed GROUP BY s HAVING sum(d) <> 0;
        END IF;
    ELSIF TG_OP = 'INSERT' THEN
        EXECUTE format('INSERT INTO {TABLE} (tbl, status, n) SELECT %L, %I, count(*) FROM new_rows GROUP BY 2',
                       TG_TABLE_NAME, col);
    ELSIF TG_OP = 'DELETE' THEN
        EXECUTE format('INSERT INTO {TABLE} (tbl, status, n) SELECT %L, %I, -count(*) FROM old_rows GROUP BY 2',
                       TG_TABLE_NAME, col);
    ELSE
        EXECUTE format('INSERT INTO {TABLE} (tbl, status, n) SELECT %L, s, sum(d) FROM ('
                       '  SELECT %I AS s, 1 AS d FROM new_rows UNION ALL SELECT %I, -1 FROM old_rows'
                       ') AS changed GROUP BY s HAVING sum(d) <> 0', TG_TABLE_NAME, col, col);
    END IF;
    RETURN NULL;
END $$
"""


def _trigger_names(table: str) -> list[str]:
    return [f"{table}_count_{event}" for event in ("ins", "upd", "del", "trunc")]


def _sqlite_triggers(table: str, column: str) -> list[str]:
    add = (f"INSERT INTO {TABLE} (tbl, status, n) VALUES ('{table}', NEW.{column}, 1) "
           f"ON CONFLICT (tbl, status) DO UPDATE SET n = n + 1;")
    # A decrement never creates a row: when both tables are emptied (`flush`) the order does not matter.
    take = f"UPDATE {TABLE} SET n = n - 1 WHERE tbl = '{table}' AND status = OLD.{column};"
    ins, upd, dele, _ = _trigger_names(table)
    return [
        f"CREATE TRIGGER {ins} AFTER INSERT ON {table} BEGIN {add} END",
        f"CREATE TRIGGER {upd} AFTER UPDATE OF {column} ON {table} WHEN OLD.{column} IS NOT NEW.{column} "
        f"BEGIN {take} {add} END",
        f"CREATE TRIGGER {dele} AFTER DELETE ON {table} BEGIN {take} END",
    ]


def _pg_triggers(table: str, column: str) -> list[str]:
    ins, upd, dele, trunc = _trigger_names(table)
    run = f"FOR EACH STATEMENT EXECUTE FUNCTION core_status_count_delta('{column}')"
    return [
        f"CREATE TRIGGER {ins} AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows {run}",
        f"CREATE TRIGGER {upd} AFTER UPDATE ON {table} REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows {run}",
        f"CREATE TRIGGER {dele} AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows {run}",
        f"CREATE TRIGGER {trunc} AFTER TRUNCATE ON {table} {run}",
    ]


def _existing_triggers(connection: BaseDatabaseWrapper, table: str) -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass(%s) AND NOT tgisinternal",
                           [table])
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [table])
        return {row[0] for row in cursor.fetchall()}


def counters_ensure(
    connection: BaseDatabaseWrapper, counted: Iterable[tuple[str, str]], *, create: bool = True
) -> list[str]:
    """Create the counts table and each `(table, status column)`'s triggers where missing.

    A table whose triggers had to be made is counted afresh in the same transaction. Tables that do
    not exist (yet) are left alone; with `create=False` nothing is done unless the counts table exists
    (a migration made it). Returns the tables (re)counted.
    """
    if connection.vendor not in ("postgresql", "sqlite"):
        return []
    existing = set(connection.introspection.table_names())
    if not create and TABLE not in existing:
        return []
    recounted = []
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        for statement in [*_PG_TABLE, _PG_FUNCTION] if connection.vendor == "postgresql" else [_SQLITE_TABLE]:
            cursor.execute(statement)
        for table, column in counted:
            if table not in existing:
                continue
            have = _existing_triggers(connection, table)
            if connection.vendor == "postgresql":
                wanted = dict(zip(_trigger_names(table), _pg_triggers(table, column), strict=True))
            else:
                wanted = dict(zip(_trigger_names(table)[:3], _sqlite_triggers(table, column), strict=True))
            if set(wanted) <= have:
                continue
            # Lock the table so no write slips in between the count and the triggers.
            if connection.vendor == "postgresql":
                cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
            for name in wanted.keys() & have:
                cursor.execute(f"DROP TRIGGER {name}" + (f" ON {table}" if connection.vendor == "postgresql" else ""))
            for sql in wanted.values():
                cursor.execute(sql)
            _recount(cursor, table, column)
            recounted.append(table)
    return recounted


def counters_drop(connection: BaseDatabaseWrapper, counted: Iterable[tuple[str, str]]) -> None:
    """Remove the triggers of these tables and their counts (a migration's way back)."""
    with connection.cursor() as cursor:
        for table, _column in counted:
            for name in _trigger_names(table):
                on = f" ON {table}" if connection.vendor == "postgresql" else ""
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}{on}")
            if TABLE in connection.introspection.table_names():
                cursor.execute(f"DELETE FROM {TABLE} WHERE tbl = %s", [table])


def _recount(cursor, table: str, column: str) -> None:
    cursor.execute(f"DELETE FROM {TABLE} WHERE tbl = %s", [table])
    cursor.execute(
        f"INSERT INTO {TABLE} (tbl, status, n) SELECT %s, {column}, COUNT(*) FROM {table} GROUP BY {column}", [table]
    )


def status_counts(connection: BaseDatabaseWrapper, tables: Sequence[str]) -> dict[str, dict[str, int]]:
    """Table → {status: rows} for statuses with at least one row, read from the counters."""
    return status_counts_later(connection, tables)()


def status_counts_later(
    connection: BaseDatabaseWrapper, tables: Sequence[str]
) -> Callable[[], dict[str, dict[str, int]]]:
    """`status_counts` in two steps: the read is sent now and answered when the function returned is called
    (once), so that it can share a round trip with other reads (`core.db.pipeline`)."""
    # The tables' names (the models', never a client's) as literals: a statement without parameters keeps
    # its plan on PostgreSQL even under the sessions' force_custom_plan, where planning this one cost more
    # than running it (~60 µs against ~25 µs).
    names = ", ".join("'" + table.replace("'", "''") + "'" for table in tables)
    cursor = connection.cursor()
    try:
        cursor.execute(
            f"SELECT tbl, status, SUM(n), COUNT(*) FROM {TABLE} WHERE tbl IN ({names}) GROUP BY tbl, status"
        )
    except BaseException:
        cursor.close()
        raise

    def counts() -> dict[str, dict[str, int]]:
        with cursor:
            rows = cursor.fetchall()
        result: dict[str, dict[str, int]] = {table: {} for table in tables}
        for table, status, n, _pieces in rows:
            if n:
                result[table][status] = int(n)
        if connection.vendor == "postgresql" and sum(pieces for *_, pieces in rows) > FOLD_AFTER_ROWS + len(rows):
            status_counts_fold(connection, tables)
        return result

    return counts


def status_counts_fold(connection: BaseDatabaseWrapper, tables: Sequence[str]) -> None:
    """Replace the delta rows of `tables` by one row per status, in one statement (PostgreSQL; a reader
    does it once it reads more than FOLD_AFTER_ROWS of them).

    The rows deleted are exactly those summed back (a concurrent fold skips rows this one deleted), so
    the counts never change; a transaction still writing deltas is not touched.
    """
    marks = ", ".join(["%s"] * len(tables))
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(
            f"WITH folded AS (DELETE FROM {TABLE} WHERE tbl IN ({marks}) RETURNING tbl, status, n) "
            f"INSERT INTO {TABLE} (tbl, status, n) SELECT tbl, status, SUM(n) FROM folded GROUP BY tbl, status "
            "HAVING SUM(n) <> 0",
            list(tables),
        )

