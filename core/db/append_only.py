"""History tables the database itself keeps append-only: triggers refuse UPDATE and DELETE.

`AppendOnly` is a migration operation that installs the triggers on SQLite and PostgreSQL. A refused
statement raises `IntegrityError` on both, whatever wrote it (the ORM, a queryset `update()` or
`delete()`, raw SQL). One change is let through: emptying the actor column alone (`forget`), which is
what deleting a user does (`on_delete=SET_NULL`); the row keeps the username in `actor_label`.

Emptying the whole database stays possible, as `manage.py flush` and the test suite's transactional
tests do: PostgreSQL flushes with TRUNCATE, which fires no row triggers; on SQLite Django flushes with
DELETE, so the gateway's SQLite backend (`core.db.sqlite3`) drops the delete triggers for the flush
and re-creates them in the same transaction. Nothing else deletes history rows.

Django rebuilds a SQLite table (new table, copy, drop, rename) for most column changes, which drops its
triggers: a migration that alters a history table runs `AppendOnly` again after the change
(`tests/images/test_lifecycle_history.py` checks that the triggers are in place).
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

TRIGGER_MARK = "_append_only_"
DELETE_TRIGGER_SUFFIX = TRIGGER_MARK + "delete"
_PG_FUNCTION = "pod_append_only"


def _sqlite(table: str, columns: list[str], forget: str, quote: Any) -> list[str]:
    kept = " AND ".join(f"NEW.{quote(c)} IS OLD.{quote(c)}" for c in columns if c != forget)
    emptied = f"NEW.{quote(forget)} IS NULL AND OLD.{quote(forget)} IS NOT NULL"
    message = f"'{table} is append-only'"
    return [
        f"CREATE TRIGGER {quote(table + TRIGGER_MARK + 'update')} BEFORE UPDATE ON {quote(table)} "
        f"WHEN NOT ({emptied} AND {kept}) BEGIN SELECT RAISE(ABORT, {message}); END",
        f"CREATE TRIGGER {quote(table + DELETE_TRIGGER_SUFFIX)} BEFORE DELETE ON {quote(table)} "
        f"BEGIN SELECT RAISE(ABORT, {message}); END",
    ]


def _postgresql(table: str, forget: str, quote: Any) -> list[str]:
    # One function for every history table; the column that may be emptied is the trigger's argument.
    function = f"""
        CREATE OR REPLACE FUNCTION {_PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE'
               AND (to_jsonb(NEW) ->> TG_ARGV[0]) IS NULL AND (to_jsonb(OLD) ->> TG_ARGV[0]) IS NOT NULL
               AND (to_jsonb(NEW) - TG_ARGV[0]) = (to_jsonb(OLD) - TG_ARGV[0]) THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
        END
        $$"""
    return [
        function,
        f"CREATE TRIGGER {quote(table + TRIGGER_MARK + 'change')} BEFORE UPDATE OR DELETE ON {quote(table)} "
        f"FOR EACH ROW EXECUTE FUNCTION {_PG_FUNCTION}('{forget}')",
    ]


class AppendOnly(migrations.operations.base.Operation):
    """Install (or, backwards, remove) the append-only triggers on a model's table."""

    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name: str, forget: str = "actor_id") -> None:
        self.model_name = model_name
        self.forget = forget

    def deconstruct(self) -> tuple[str, list, dict]:
        return self.__class__.__name__, [self.model_name], {"forget": self.forget}

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        table = model._meta.db_table
        quote = schema_editor.quote_name
        vendor = schema_editor.connection.vendor
        if vendor == "sqlite":
            columns = [field.column for field in model._meta.concrete_fields]
            statements = _sqlite(table, columns, self.forget, quote)
        elif vendor == "postgresql":
            statements = _postgresql(table, self.forget, quote)
        else:
            raise NotImplementedError(f"Append-only triggers are not written for {vendor}")
        self._drop(schema_editor, table)
        for sql in statements:
            schema_editor.execute(sql, None)  # no parameters: the function body holds a literal %

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        model = from_state.apps.get_model(app_label, self.model_name)
        self._drop(schema_editor, model._meta.db_table)

    def _drop(self, schema_editor: Any, table: str) -> None:
        quote = schema_editor.quote_name
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {quote(table + TRIGGER_MARK + 'change')} ON {quote(table)}")
        else:
            for kind in ("update", "delete"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {quote(table + TRIGGER_MARK + kind)}")

    def describe(self) -> str:
        return f"Make {self.model_name} append-only (database triggers)"
