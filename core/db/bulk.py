"""Multi-row INSERTs for append-only rows the caller never reads back (history, outbox events), and
counters bumped in one UPSERT.

`QuerySet.bulk_create` builds a model instance per row and converts every field of every row
(`pre_save`, `get_db_prep_save`); for a 500-image batch that cost several times the database work
itself. `insert_rows` does the same INSERT from plain values: what is the same for every row (the
actor, the time, field defaults) is converted once, and only the columns that differ per row are
converted per row. Like `bulk_create` it sends no signals and calls no `save()`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db import connections, models, router
from django.utils import timezone

from core.db.lookups import TEXT_FIELDS, stored_as_given

# psycopg's protocol limit on parameters per statement, for backends that declare none.
_DEFAULT_MAX_PARAMS = 65535


def insert_rows(
    model: type[models.Model],
    *,
    fields: Sequence[str],
    rows: Iterable[Sequence[Any]],
    constants: Mapping[str, Any] | None = None,
) -> int:
    """INSERT one row per item of `rows` (values of `fields`, in order); `constants` go in every row.

    Values of text columns (and of keys to text primary keys) must already be `str` (or None).

    Concrete fields named in neither get their default (callables per row, like `bulk_create`);
    `auto_now`/`auto_now_add` fields one `timezone.now()` for the whole insert. Returns the row count.
    """
    connection = connections[router.db_for_write(model)]
    opts = model._meta
    # Keyed by field name whether the caller used it or the attname (`image` / `image_id`).
    constants = {opts.get_field(name).name: value for name, value in (constants or {}).items()}
    given = {opts.get_field(name).name for name in fields} | constants.keys()
    per_row_defaults: list[models.Field] = []
    for field in opts.concrete_fields:
        # The database computes generated columns itself.
        if field.name in given or isinstance(field, models.AutoField) or field.generated:
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            constants[field.name] = timezone.now()
        elif callable(field.default) and field.has_default():
            per_row_defaults.append(field)
        else:
            constants[field.name] = field.get_default()
    varying = [opts.get_field(name) for name in fields]
    # Text columns take their str values as they are (no per-value conversion); others are prepared.
    converters = [None if stored_as_given(field, kinds=TEXT_FIELDS) else field for field in varying]
    fixed = [opts.get_field(name) for name in constants]
    fixed_values = [field.get_db_prep_save(constants[field.name], connection) for field in fixed]
    columns = [f.column for f in (*per_row_defaults, *varying, *fixed)]

    params: list[Any] = []
    count = 0
    for row in rows:
        params.extend(field.get_db_prep_save(field.get_default(), connection) for field in per_row_defaults)
        params.extend(
            value if field is None else field.get_db_prep_save(value, connection)
            for field, value in zip(converters, row, strict=True)
        )
        params.extend(fixed_values)
        count += 1
    if not count:
        return 0

    width = len(columns)
    max_params = connection.features.max_query_params or _DEFAULT_MAX_PARAMS
    per_statement = max(1, max_params // width)
    quote = connection.ops.quote_name
    head = f"INSERT INTO {quote(opts.db_table)} ({', '.join(quote(c) for c in columns)}) VALUES "
    row_marks = "(" + ", ".join(["%s"] * width) + ")"
    with connection.cursor() as cursor:
        for start in range(0, count, per_statement):
            chunk = min(per_statement, count - start)
            cursor.execute(head + ", ".join([row_marks] * chunk), params[start * width:(start + chunk) * width])
    return count


def counters_add(
    model: type[models.Model], *, key: str, counter: str, amounts: Mapping[str, int], read: bool = True
) -> dict[str, int]:
    """Add `amounts[k]` to the `counter` column of the row whose `key` is k (a missing row starts at 0).

    Returns each key's new value. One `INSERT … ON CONFLICT (key) DO UPDATE … RETURNING` (SQLite ≥ 3.35
    and PostgreSQL) per `max_query_params` keys: the upsert takes each row's lock in the caller's
    transaction, so concurrent adds to one key wait for each other and never read the same value.
    Django's `bulk_create(update_conflicts=True)` can only set a column to the proposed value, not add
    to it, and returns no values on SQLite; hence the hand-written statement. `key` must be a text column.
    With `read=False` the new values are not asked for (nothing is returned): in a pipelined block
    (`core.db.pipeline`) the statement is sent without waiting, and the transaction's later statements
    read the rows themselves.
    """
    if not amounts:
        return {}
    connection = connections[router.db_for_write(model)]
    opts = model._meta
    quote = connection.ops.quote_name
    table, key_column, counter_column = (quote(name) for name in
                                         (opts.db_table, opts.get_field(key).column, opts.get_field(counter).column))
    # Keys in one order so that concurrent batches lock shared rows in the same order (no deadlock).
    keys = sorted(amounts)
    per_statement = max(1, (connection.features.max_query_params or _DEFAULT_MAX_PARAMS) // 2)
    totals: dict[str, int] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(keys), per_statement):
            chunk = keys[start:start + per_statement]
            cursor.execute(
                f"INSERT INTO {table} ({key_column}, {counter_column}) VALUES {', '.join(['(%s, %s)'] * len(chunk))}"
                f" ON CONFLICT ({key_column}) DO UPDATE SET {counter_column} = {table}.{counter_column}"
                f" + excluded.{counter_column}" + (f" RETURNING {key_column}, {counter_column}" if read else ""),
                [value for k in chunk for value in (k, int(amounts[k]))],
            )
            if read:
                totals.update(cursor.fetchall())
    return totals
