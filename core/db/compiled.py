"""`.values()` queries compiled by Django once per shape, and the rows read as `.values()` would.

Compiling a query (the compiler's setup, its joins, columns, ordering and SQL) costs a list page several
times what the database takes to answer it, and Django compiles every query anew. Two kinds of query
whose SQL a few facts determine are compiled once here: `core.db.keyed.values_in` (a key among values)
and `PlainValuesQuerySet` (all rows of a table, ordered and sliced: the unfiltered image list). Django
has no such cache of its own and no maintained package offers one.

`read_rows` runs a compiled statement with its parameters and converts the values as `.values()` does
(the compiler's converters for this thread's connection, made once per connection and time-zone setting),
column by column rather than row by row; `send_rows` sends it and reads the rows when asked, so that
several reads can share one round trip (`core.db.pipeline`).
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.conf import settings
from django.db import connections
from django.db.models import JSONField, QuerySet
from django.db.models.expressions import Col
from django.db.models.query import ValuesIterable
from django.db.models.sql import Query

# Shapes differ in their slice (a page's offset): enough for the pages and sizes clients use, then the
# cache starts over rather than grow with every deep page anyone asked for.
MAX_SHAPES = 1024


@dataclass(frozen=True)
class Compiled:
    sql: str
    params: tuple[Any, ...]
    names: tuple[str, ...]
    query: Query
    select: tuple[Any, ...]  # the selected expressions, for their converters
    # Per connection: the time-zone setting the converters were made for, and the converters.
    converters: weakref.WeakKeyDictionary = field(default_factory=weakref.WeakKeyDictionary, compare=False)


@dataclass(frozen=True)
class KeysFrom:
    """The keys a statement selects: its `column`'s values (the statement's SQL and parameters as its
    compiler made them, e.g. `PlainValuesQuerySet.keys_from()`), for `core.db.keyed.values_in_later`
    on PostgreSQL."""

    sql: str
    params: tuple[Any, ...]
    column: str

    def subquery(self, connection: Any) -> str:
        quote = connection.ops.quote_name
        return f"SELECT {quote(self.column)} FROM ({self.sql}) AS {quote('keys')}"


def compile_values(queryset: QuerySet, alias: str) -> Compiled:
    """The SQL of a `.values()` queryset and what reading its rows needs."""
    query = queryset.query
    compiler = query.get_compiler(using=alias)
    sql, params = compiler.as_sql()
    return Compiled(
        sql=sql,
        params=tuple(params),
        names=(*query.extra_select, *query.values_select, *query.annotation_select),
        query=query,
        select=tuple(column for column, _, _ in compiler.select),
    )


def read_rows(compiled: Compiled, params: list[Any] | tuple[Any, ...], alias: str) -> list[dict[str, Any]]:
    """The statement's rows as `.values()` dicts, each value converted as the compiler would."""
    return send_rows(compiled, params, alias)()


def send_rows(
    compiled: Compiled, params: list[Any] | tuple[Any, ...], alias: str, *, sql: str | None = None
) -> Callable[[], list[dict[str, Any]]]:
    """Send the statement now; what reads its rows (as `read_rows`), called once. `sql`, when given, is
    sent instead of the compiled SQL: the same columns, selected otherwise (`core.db.keyed.KeysFrom`).

    Inside `core.db.pipeline.pipelined()` on PostgreSQL the statements sent before the first read arrive
    with that read's round trip; elsewhere the statement has run when this returns.
    """
    connection = connections[alias]
    converters = _converters(compiled, connection)
    cursor = connection.cursor()
    try:
        cursor.execute(compiled.sql if sql is None else sql, params)
    except BaseException:
        cursor.close()
        raise

    def rows() -> list[dict[str, Any]]:
        with cursor:
            fetched = cursor.fetchall()
        return _as_values(compiled.names, converters, fetched, connection)

    return rows


def _as_values(names: tuple[str, ...], converters: dict[int, tuple[list[Any], Any]], rows: list[tuple],
               connection: Any) -> list[dict[str, Any]]:
    if not converters or not rows:
        return [dict(zip(names, row, strict=True)) for row in rows]
    columns = [list(column) for column in zip(*rows, strict=True)]
    for position, (functions, expression) in converters.items():
        values = columns[position]
        for function in functions:
            values = [function(value, expression, connection) for value in values]
        columns[position] = values
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _converters(compiled: Compiled, connection: Any) -> dict[int, tuple[list[Any], Any]]:
    """The compiler's converters of the statement's columns on this connection, made once per time-zone setting
    (a datetime converter holds the connection's zone)."""
    setting = (settings.USE_TZ, connection.timezone_name)
    known = compiled.converters.get(connection)
    if known is None or known[0] != setting:
        compiler = compiled.query.get_compiler(connection=connection)
        converters = {
            position: ([_orjson_reading(function, expression) for function in functions], expression)
            for position, (functions, expression) in compiler.get_converters(compiled.select).items()
        }
        known = (setting, converters)
        compiled.converters[connection] = known
    return known[1]


_LONG_NUMBER = re.compile(r"[0-9]{19}")


def _orjson_reading(function: Callable[..., Any], expression: Any) -> Callable[..., Any]:
    """A JSONField's own reading of a column's text (`json.loads`, ~20x orjson's time: a page's quality
    reports), read by orjson where it reads the same Python objects. A text with 19 digits in a row
    (orjson reads an integer beyond 64 bits as a float) and what orjson refuses (NaN, a lone surrogate)
    go to the field's own reading."""
    json_field = getattr(function, "__self__", None)
    if not (isinstance(json_field, JSONField) and function.__func__ is JSONField.from_db_value
            and json_field.decoder is None and isinstance(expression, Col)):
        return function
    loads, decode_error, long_number = orjson.loads, orjson.JSONDecodeError, _LONG_NUMBER.search

    def read(value: Any, expression: Any, connection: Any) -> Any:
        if value.__class__ is str and not long_number(value):
            try:
                return loads(value)
            except decode_error:
                pass
        return function(value, expression, connection)

    return read


_plain: dict[tuple[Any, ...], Compiled] = {}


class PlainValuesQuerySet(QuerySet):
    """A QuerySet whose `.values()` rows of a whole table (ordered by columns, sliced) come from SQL
    compiled once per model, columns, ordering, slice and database.

    Such a query's SQL has no parameters and depends on nothing else; any other query (a filter, an
    annotation, a join, DISTINCT, a lock, a union, expressions in the ordering) runs through the ORM.
    """

    def _fetch_all(self) -> None:
        if self._result_cache is None and self._iterable_class is ValuesIterable and not self._prefetch_related_lookups:
            compiled = self._plain_compiled()
            if compiled is not None:
                self._result_cache = read_rows(compiled, compiled.params, self.db)
        super()._fetch_all()

    def send(self) -> Callable[[], list[dict[str, Any]]]:
        """The rows in two steps: the statement sent now (`send_rows`), the function returned reads them
        (once). `.values()` rows of any query (compiled by Django, once per shape for the plain ones);
        anything else, or rows already read, as `list(queryset)` when called."""
        if self._result_cache is not None or self._iterable_class is not ValuesIterable or \
                self._prefetch_related_lookups:
            return lambda: list(self)
        compiled = self._compiled()
        return send_rows(compiled, compiled.params, self.db)

    def keys_from(self, column: str) -> KeysFrom | None:
        """The values of `column` this queryset's statement selects, for reads sent with it
        (`core.db.keyed.values_in_later`); None unless it reads `.values()` rows holding `column`."""
        if self._result_cache is not None or self._iterable_class is not ValuesIterable or \
                self._prefetch_related_lookups or column not in self.query.values_select:
            return None
        compiled = self._compiled()
        return KeysFrom(compiled.sql, compiled.params, column)

    def _compiled(self) -> Compiled:
        # Kept on this queryset: `send()` and `keys_from()` of one compile it once (a clone starts over).
        compiled = self.__dict__.get("_statement")
        if compiled is None:
            compiled = self._statement = self._plain_compiled() or compile_values(self, self.db)
        return compiled

    def _plain_compiled(self) -> Compiled | None:
        shape = _plain_shape(self)
        if shape is None:
            return None
        compiled = _plain.get(shape)
        if compiled is None:
            if len(_plain) >= MAX_SHAPES:
                _plain.clear()
            compiled = _plain.setdefault(shape, compile_values(self, self.db))
        return compiled


def _plain_shape(queryset: QuerySet) -> tuple[Any, ...] | None:
    query = queryset.query
    if (
        query.where
        or query.annotations
        or query.extra
        or query.extra_tables
        or query.extra_order_by
        or query.distinct
        or query.select_for_update
        or query.combinator
        or query.select_related
        or query.group_by is not None
        or query.subquery
        or any(query.alias_refcount.get(alias) for alias in list(query.alias_map)[1:])  # a join in use
        or not query.values_select
        or not all(isinstance(name, str) and "__" not in name for name in query.order_by)
    ):
        return None
    return (query.model, queryset.db, query.values_select, query.order_by, query.default_ordering,
            query.standard_ordering, query.low_mark, query.high_mark)
