"""`values_in`: `Model.objects.filter(key__in=keys).values(*fields)`, compiled by Django once per shape.

Every image body reads the same small queries with other ids: its history and its products by image id
(50 ids for a list page, one for a detail or a decision). Building and compiling those QuerySets cost
several times what the database took to answer an indexed read, on every request. Here Django builds
and compiles the query once per model, key, fields, ordering and size bucket (the ids are padded to the
next power of two by repeating one, which selects the same rows; on PostgreSQL they are one array
parameter and there is one statement for any number), and each call only sets the ids as the
statement's parameters and converts the values as `.values()` would (the compiler's converters, for
this thread's connection). Django has no such cache of its own and no maintained package offers one.

On PostgreSQL the keys may also be what another statement selects (`KeysFrom`): the read is then sent
with that statement, before its answer is known, and selects by it as a subquery (`key = ANY(ARRAY(…))`),
so both share one round trip; in one snapshot (`core.db.pipeline.pipelined_snapshot`) the two see the
same rows.

Only plain cases are compiled once: a default manager that adds no filter, annotation, slice or
DISTINCT, and a key column that stores its values as given (text, integers; see `core.db.lookups`).
Anything else runs through the ORM as usual. A default manager is taken to give the same query on every
call (one whose filter changed at run time, per tenant say, is not for `values_in`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, models, router
from django.db.models import F
from django.db.models.expressions import RawSQL
from django.db.transaction import TransactionManagementError

from core.db.compiled import Compiled, KeysFrom, compile_values, send_rows
from core.db.lookups import InValues, stored_as_given

__all__ = ["KeysFrom", "values_in", "values_in_later"]

# Larger sets of keys are rare (a page is at most 200 images) and run through the ORM.
MAX_COMPILED_KEYS = 1024


@dataclass(frozen=True)
class _Keyed:
    compiled: Compiled
    positions: tuple[int, ...]  # where the keys go among its parameters
    array: int | None  # or the parameter that is their array (PostgreSQL; `core.db.lookups.InValues`)


_compiled: dict[tuple[Any, ...], _Keyed] = {}


# SQL of compiled shapes whose keys are a statement's: (shape, that statement's SQL) → SQL.
_by_statement: dict[tuple[Any, ...], str] = {}
MAX_STATEMENTS = 1024
_PLACEHOLDER = re.compile(r"%%|%s")


def values_in(model: type[models.Model], **query: Any) -> list[dict[str, Any]]:
    """The `.values(*fields)` rows of `model`'s default manager whose `key` is one of `keys`, in `order_by`
    (default: the model's ordering), locked with `for_update` (`select_for_update()`, inside the caller's
    transaction); the arguments are `values_in_later`'s. Keys must be values of the key column's type."""
    return values_in_later(model, **query)()


def values_in_later(
    model: type[models.Model],
    *,
    key: str,
    keys: Collection[Any] | KeysFrom,
    fields: Sequence[str],
    order_by: Sequence[str] | None = None,
    for_update: bool = False,
) -> Callable[[], list[dict[str, Any]]]:
    """`values_in` in two steps: the statement is sent now (`core.db.compiled.send_rows`; a shape that runs
    through the ORM, when called) and the function returned reads its rows, once. `keys` may be a
    `KeysFrom` on PostgreSQL (the rows whose key that statement selects)."""
    # A locking read goes where writes go, as select_for_update() sends it.
    alias = router.db_for_write(model) if for_update else router.db_for_read(model)
    connection = connections[alias]
    by_statement = isinstance(keys, KeysFrom)
    if by_statement:
        if connection.vendor != "postgresql":
            raise ValueError("values_in_later: keys from a statement are for PostgreSQL")
    else:
        keys = list(dict.fromkeys(keys))
        if not keys:
            return list
    bucket = 0 if connection.vendor == "postgresql" else 1 << (len(keys) - 1).bit_length()
    shape = (model, alias, key, tuple(fields), tuple(order_by) if order_by is not None else None, for_update,
             bucket)
    compiled = _compiled.get(shape)
    if compiled is None:  # first call of this shape (a known one builds no QuerySet at all)
        base = model._default_manager.all()
        if order_by is not None:
            base = base.order_by(*order_by)
        if for_update:
            base = base.select_for_update()
        query = base.query
        plain = not (query.where or query.annotations or query.extra or query.distinct or query.is_sliced)
        if not plain or not stored_as_given(model._meta.get_field(key)) or \
                (not by_statement and len(keys) > MAX_COMPILED_KEYS):
            if by_statement:
                queryset = base.filter(**{f"{key}__in": RawSQL(keys.subquery(connection), keys.params)})
            else:
                queryset = base.filter(InValues(F(key), keys))
            queryset = queryset.values(*fields)
            return lambda: list(queryset)
        compiled = _compiled.setdefault(shape, _compile(base, alias, key, fields, bucket or 1))
    params, sql = list(compiled.compiled.params), None
    if by_statement:
        sql = _by_statement.get((shape, keys.sql))
        if sql is None:
            if len(_by_statement) >= MAX_STATEMENTS:
                _by_statement.clear()
            sql = _array_replaced(compiled, f"ARRAY({keys.subquery(connection)})")
            _by_statement[(shape, keys.sql)] = sql
        params[compiled.array: compiled.array + 1] = keys.params
    elif compiled.array is not None:
        params[compiled.array] = keys
    else:
        padded = keys + [keys[-1]] * (bucket - len(keys))
        for position, value in zip(compiled.positions, padded, strict=True):
            params[position] = value
    if for_update and connection.features.has_select_for_update and connection.get_autocommit():
        raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
    return send_rows(compiled.compiled, params, alias, sql=sql)


def _array_replaced(keyed: _Keyed, replacement: str) -> str:
    """The compiled SQL with the placeholder of its keys' array (the `array`-th) replaced."""
    sql, seen = keyed.compiled.sql, 0
    for match in _PLACEHOLDER.finditer(sql):
        if match.group() == "%s":
            if seen == keyed.array:
                return f"{sql[:match.start()]}{replacement}{sql[match.end():]}"
            seen += 1
    raise RuntimeError("values_in: the keys' placeholder is not in the compiled SQL")


def _compile(base: models.QuerySet, alias: str, key: str, fields: Sequence[str], bucket: int) -> _Keyed:
    # Distinct stand-ins for the keys (`IN` drops repeated values), found again among the parameters.
    marks = [f"\x00key {n}" for n in range(bucket)]
    compiled = compile_values(base.filter(InValues(F(key), marks)).values(*fields), alias)
    at = {id(mark): n for n, mark in enumerate(marks)}
    arrays = [position for position, value in enumerate(compiled.params)
              if isinstance(value, list) and [at.get(id(mark)) for mark in value] == list(range(bucket))]
    if len(arrays) == 1:
        return _Keyed(compiled, positions=(), array=arrays[0])
    found = {at[id(value)]: position for position, value in enumerate(compiled.params)
             if not isinstance(value, list) and id(value) in at}
    if sorted(found) != list(range(bucket)):
        raise RuntimeError(f"values_in: the keys of {base.model.__name__}.{key} are not plain parameters")
    return _Keyed(compiled, positions=tuple(found[n] for n in range(bucket)), array=None)
