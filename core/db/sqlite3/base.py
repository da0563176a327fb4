"""Django's SQLite backend, told the real limit on parameters per statement.

Django 5.2 assumes SQLite's pre-3.32 default of 999 host parameters (`max_query_params = 999`), so
`bulk_create` splits a 500-row history or outbox insert into several INSERTs and a batch action's
query count grows with its size. SQLite ≥ 3.32 is compiled with 32766 by default (Debian: 250000);
Django 6 reads the limit from the connection. This backend does the same on 5.2 so a batch of up to
500 images stays one statement per table. Use it as ENGINE "core.db.sqlite3".
"""

from __future__ import annotations

import sqlite3

from django.db.backends.sqlite3 import base, features
from django.utils.functional import cached_property


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


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
