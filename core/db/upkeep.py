"""What the database keeps for us — status counters and text indexes — declared once, ensured after migrating.

Apps declare their counted status columns and searched text columns in `AppConfig.ready`; the
migrations that introduce them and every `post_migrate` call `upkeep_ensure`, which (re)creates
whatever a schema change dropped (see core.db.counters and core.db.textsearch).
"""

from __future__ import annotations

from django.db import connections, models

from core.db.counters import counters_ensure
from core.db.textsearch import text_index_ensure

_counted: list[tuple[type[models.Model], str]] = []
_searched: list[tuple[type[models.Model], str]] = []


def counted_register(model: type[models.Model], field: str) -> None:
    """Keep rows of `model` counted per value of `field` by the database."""
    if (model, field) not in _counted:
        _counted.append((model, field))


def searched_register(model: type[models.Model], field: str) -> None:
    """Keep a substring index of `model.field` in the database."""
    if (model, field) not in _searched:
        _searched.append((model, field))


def counted_tables(models_: list[type[models.Model]] | None = None) -> list[tuple[str, str]]:
    return [
        (model._meta.db_table, model._meta.get_field(field).column)
        for model, field in _counted
        if models_ is None or model in models_
    ]


def upkeep_ensure(using: str = "default") -> None:
    """Put back the triggers of every registered counter and text index a schema change dropped.

    Only what a migration created is repaired: after migrating back past it, nothing is remade.
    """
    connection = connections[using]
    counters_ensure(connection, counted_tables(), create=False)
    for model, field in _searched:
        text_index_ensure(connection, model._meta.db_table, model._meta.get_field(field).column,
                          model._meta.pk.column, create=False)
