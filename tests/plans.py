"""The database's query plan for a queryset, as the index tests read it."""

from __future__ import annotations

from django.db import connection, transaction


def plan(queryset) -> str:
    """The plan of `queryset`; on PostgreSQL with sorts and sequential scans priced out, so a small test
    table shows which order an index serves (with a million rows the planner needs no such nudge)."""
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_sort = off")
            return queryset.explain()
    return queryset.explain()
