"""Case-insensitive substring search over one text column, served by each database's own index.

`text_search(queryset, column, term)` keeps the meaning of `column__icontains=term` (what the API and
the admin always offered) but reads an index instead of every row:

- PostgreSQL: a GIN trigram index (`pg_trgm`) on `UPPER(column)`, which is exactly the expression
  Django's `icontains` compares, so the ORM's own lookup uses it. The database maintains it.
- SQLite: an FTS5 table with the trigram tokenizer (case-folding), kept in step by triggers on the
  table. FTS5 rows are addressed by integer rowid while our keys are text, so a small key table maps
  the row's primary key to the FTS rowid (the table's own rowid is not stable across VACUUM). A quoted
  FTS5 trigram phrase matches exactly the rows containing the term as a substring.

Terms shorter than three characters have no trigram to look up; both databases then compare the
rows themselves (`icontains`).

`text_index_ensure` creates what is missing and rebuilds the SQLite index when its triggers had to be
(re)made: migrations call it, and so does `post_migrate` (core.apps), because Django's SQLite schema
editor rebuilds a table for many field changes and the rebuilt table has lost its triggers.
"""

from __future__ import annotations

from django.db import connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils.text import smart_split, unescape_string_literal

# Trigram indexes look up three characters at a time.
MIN_INDEXED_LENGTH = 3


def _names(table: str, column: str) -> dict[str, str]:
    base = f"{table}_{column}"
    return {
        "trgm": f"{base}_trgm",
        "key": f"{base}_key",
        "fts": f"{base}_fts",
        "ins": f"{base}_fts_ins",
        "upd": f"{base}_fts_upd",
        "del": f"{base}_fts_del",
    }


def _sqlite_triggers(table: str, column: str, pk: str) -> dict[str, str]:
    n = _names(table, column)
    add = (f"INSERT INTO {n['key']} (ref) VALUES (NEW.{pk}); "
           f"INSERT INTO {n['fts']} (rowid, body) VALUES (last_insert_rowid(), NEW.{column});")
    take = (f"DELETE FROM {n['fts']} WHERE rowid = (SELECT k FROM {n['key']} WHERE ref = OLD.{pk}); "
            f"DELETE FROM {n['key']} WHERE ref = OLD.{pk};")
    return {
        n["ins"]: f"CREATE TRIGGER {n['ins']} AFTER INSERT ON {table} BEGIN {add} END",
        n["upd"]: f"CREATE TRIGGER {n['upd']} AFTER UPDATE OF {column}, {pk} ON {table} "
                  f"WHEN OLD.{column} IS NOT NEW.{column} OR OLD.{pk} IS NOT NEW.{pk} BEGIN {take} {add} END",
        n["del"]: f"CREATE TRIGGER {n['del']} AFTER DELETE ON {table} BEGIN {take} END",
    }


def text_index_ensure(
    connection: BaseDatabaseWrapper, table: str, column: str, pk: str = "id", *, create: bool = True
) -> bool:
    """Create the index of `table.column` where missing; True when it was (re)built.

    With `create=False` only an index that exists in part (SQLite: its table without its triggers)
    is repaired.
    """
    tables = connection.introspection.table_names()
    if table not in tables:
        return False
    n = _names(table, column)
    if not create and (connection.vendor == "postgresql" or n["fts"] not in tables):
        return False
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT 1 FROM pg_indexes WHERE tablename = %s AND indexname = %s", [table, n["trgm"]])
            if cursor.fetchone():
                return False
            # pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create it.
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            cursor.execute(f"CREATE INDEX {n['trgm']} ON {table} USING gin (UPPER({column}) gin_trgm_ops)")
            return True
        if connection.vendor != "sqlite":
            return False
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [table])
        triggers = _sqlite_triggers(table, column, pk)
        if set(triggers) <= {row[0] for row in cursor.fetchall()}:
            return False
        for name in triggers:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
        cursor.execute(f"DROP TABLE IF EXISTS {n['fts']}")
        cursor.execute(f"DROP TABLE IF EXISTS {n['key']}")
        cursor.execute(f"CREATE TABLE {n['key']} (k INTEGER PRIMARY KEY, ref TEXT NOT NULL UNIQUE)")
        cursor.execute(f"CREATE VIRTUAL TABLE {n['fts']} USING fts5(body, tokenize = 'trigram case_sensitive 0')")
        cursor.execute(f"INSERT INTO {n['key']} (ref) SELECT {pk} FROM {table}")
        cursor.execute(
            f"INSERT INTO {n['fts']} (rowid, body) SELECT k.k, t.{column} FROM {n['key']} k "
            f"JOIN {table} t ON t.{pk} = k.ref"
        )
        for sql in triggers.values():
            cursor.execute(sql)
        return True


def text_index_drop(connection: BaseDatabaseWrapper, table: str, column: str) -> None:
    n = _names(table, column)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"DROP INDEX IF EXISTS {n['trgm']}")
        elif connection.vendor == "sqlite":
            for name in ("ins", "upd", "del"):
                cursor.execute(f"DROP TRIGGER IF EXISTS {n[name]}")
            cursor.execute(f"DROP TABLE IF EXISTS {n['fts']}")
            cursor.execute(f"DROP TABLE IF EXISTS {n['key']}")


def search_terms(words: str) -> list[str]:
    """An admin search box's words, a "quoted phrase" as one term, as Django's own admin search splits them."""
    terms = (unescape_string_literal(word) if word[:1] in ('"', "'") and word[-1:] == word[:1] else word
             for word in smart_split(words))
    return [term for term in terms if term]


def text_search(queryset: QuerySet, column: str, term: str) -> QuerySet:
    """`queryset` narrowed to rows whose `column` contains `term`, ignoring case, through the index."""
    return queryset.filter(text_match(queryset.model, column, term, using=queryset.db))


def text_match(model: type[models.Model], column: str, term: str, *, using: str = "default") -> Q:
    """The condition "`column` contains `term`, ignoring case" in the form the database's index serves."""
    if connections[using].vendor != "sqlite" or len(term) < MIN_INDEXED_LENGTH:
        return Q(**{f"{column}__icontains": term})
    n = _names(model._meta.db_table, model._meta.get_field(column).column)
    phrase = '"' + term.replace('"', '""') + '"'
    return Q(pk__in=RawSQL(
        f"SELECT ref FROM {n['key']} WHERE k IN (SELECT rowid FROM {n['fts']} WHERE {n['fts']} MATCH %s)", [phrase]
    ))
