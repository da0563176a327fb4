"""Django's SQLite backend, told the real limit on parameters per statement.

Django 5.2 assumes SQLite's pre-3.32 default of 999 host parameters (`max_query_params = 999`), so
`bulk_create` splits a 500-row history or outbox insert into several INSERTs and a batch action's
query count grows with its size. SQLite ≥ 3.32 is compiled with 32766 by default (Debian: 250000);
Django 6 reads the limit from the connection. This backend does the same on 5.2 so a batch of up to
500 images stays one statement per table. It also converts datetime columns with the time-zone
setting read once per query rather than once per value. Use it as ENGINE "core.db.sqlite3".
"""

from __future__ import annotations

import datetime
import sqlite3

from django.conf import settings
from django.db.backends.sqlite3 import base, features, operations
from django.utils.functional import cached_property

from core.db.append_only import DELETE_TRIGGER_SUFFIX


class DatabaseFeatures(features.DatabaseFeatures):
    @cached_property
    def max_query_params(self) -> int:
        # The limit is compiled into the library every connection of this process uses; a scratch
        # in-memory connection reads it without opening (or needing) the real database.
        scratch = sqlite3.connect(":memory:")
        try:
            return scratch.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        finally:
            scratch.close()


class DatabaseOperations(operations.DatabaseOperations):
    def get_db_converters(self, expression):
        """Django's converters, with a datetime column's made once per query instead of deciding per value."""
        converters = super().get_db_converters(expression)
        if self.convert_datetimefield_value in converters:
            fast = self._datetime_converter()
            converters = [fast if c == self.convert_datetimefield_value else c for c in converters]
        return converters

    def _datetime_converter(self):
        # Django's `convert_datetimefield_value` reads settings.USE_TZ (a lazy-settings look-up) and checks
        # awareness twice for every value; a page of images has hundreds. A column declared `datetime` comes
        # out of the sqlite3 module already parsed (Django registers its converter for the type), other
        # expressions as text: both are handled here with the setting read once. Text that `fromisoformat`
        # does not read, and anything else, goes to Django's.
        slow = super().convert_datetimefield_value
        zone = self.connection.timezone if settings.USE_TZ else None
        parse, parsed_class = datetime.datetime.fromisoformat, datetime.datetime

        def convert(value, expression, connection):
            if value.__class__ is parsed_class:
                parsed = value
            elif value.__class__ is str:
                try:
                    parsed = parse(value)
                except ValueError:
                    return slow(value, expression, connection)
            else:
                return slow(value, expression, connection)
            if zone is not None and parsed.tzinfo is None:
                return parsed.replace(tzinfo=zone)
            return parsed

        return convert

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False) -> list[str]:
        """Django's flush (DELETE FROM each table), with the append-only delete triggers lifted for it.

        PostgreSQL flushes with TRUNCATE, which fires no row trigger; SQLite has no TRUNCATE, so the
        delete triggers of the flushed history tables are dropped first and re-created after, in the
        flush's own transaction (`core.db.append_only`).
        """
        statements = super().sql_flush(style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        if not statements:
            return statements
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE %s",
                ["%" + DELETE_TRIGGER_SUFFIX],
            )
            triggers = [(name, sql) for name, table, sql in cursor.fetchall() if table in set(tables)]
        drops = [f"DROP TRIGGER {self.quote_name(name)}" for name, _ in triggers]
        return [*drops, *statements, *(sql for _, sql in triggers)]


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
    ops_class = DatabaseOperations
