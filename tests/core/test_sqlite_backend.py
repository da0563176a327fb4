"""The project's SQLite backend reads datetime columns as Django's own backend does."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.db.backends.sqlite3.base import DatabaseWrapper as DjangoSQLite
from django.db.models import DateTimeField
from django.db.models.expressions import Value

from images.models import Image

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite backend's own converters")
DjangoOperations = DjangoSQLite.ops_class

STORED = [
    "2026-01-02 03:04:05.123456", "2026-01-02 03:04:05", "2026-01-02T03:04:05", "2026-01-02 03:04:05+02:00",
    "2026-01-02 03:04:05.123456+00:00", "2026-01-02 03:04", "2026-01-02 03:04:05,5", "2026-01-02",
    datetime.datetime(2026, 1, 2, 3, 4, 5), datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC), None,
]


def _convert(operations, value):
    expression = Value(None, output_field=DateTimeField())
    for converter in operations.get_db_converters(expression):
        value = converter(value, expression, connection)
    return value


@pytest.mark.parametrize("use_tz", [True, False])
@pytest.mark.parametrize("value", STORED)
def test_datetimes_read_as_djangos_backend_reads_them(settings, use_tz, value):
    settings.USE_TZ = use_tz
    ours = _convert(connection.ops, value)
    theirs = _convert(DjangoOperations(connection), value)
    assert ours == theirs
    assert (ours.tzinfo if ours is not None else None) == (theirs.tzinfo if theirs is not None else None)


def test_a_value_that_is_not_iso_8601_fails_as_in_django():
    with pytest.raises(TypeError):
        _convert(DjangoOperations(connection), 12)
    with pytest.raises(TypeError):
        _convert(connection.ops, 12)


def test_the_per_value_setting_look_up_is_replaced(settings):
    expression = Value(None, output_field=DateTimeField())
    assert connection.ops.convert_datetimefield_value not in connection.ops.get_db_converters(expression)
    settings.USE_TZ = False  # read when the converters are made: a changed setting applies to the next query
    assert _convert(connection.ops, "2026-01-02 03:04:05").tzinfo is None


@pytest.mark.django_db
def test_a_datetime_column_read_back_is_converted_without_djangos_per_value_converter(monkeypatch, make_image):
    # The sqlite3 module hands a `datetime` column over already parsed; that case takes the fast path too.
    image = make_image()
    calls = []
    slow = DjangoOperations.convert_datetimefield_value
    monkeypatch.setattr(DjangoOperations, "convert_datetimefield_value",
                        lambda self, *args: calls.append(args) or slow(self, *args))
    read = Image.objects.filter(id=image.id).values_list("created_at", flat=True).get()
    assert read == Image.objects.get(id=image.id).created_at and read.tzinfo is not None
    assert calls == []
