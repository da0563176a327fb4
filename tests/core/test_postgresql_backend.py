"""The PostgreSQL backend reads timestamps with psycopg's compiled loader, the values Django's gives, and hands
out pooled connections without a round trip, replacing those the server ended."""

from __future__ import annotations

import datetime
import select

import psycopg
import pytest
from django.db import connection, connections
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from django.test.utils import override_settings
from psycopg.pq import Format

from core.db.postgresql.base import TIMESTAMPTZ_OID, UtcTimestamptzLoader

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the PostgreSQL backend"),
]

MOMENT = datetime.datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=datetime.UTC)


def _read_back(moment: datetime.datetime):
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::timestamptz", [moment])
        (value,), = cursor.fetchall()
        return value, cursor.cursor.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)


def test_timestamps_are_read_by_psycopgs_own_loader_in_utc():
    value, loader = _read_back(MOMENT)
    assert loader is UtcTimestamptzLoader
    compiled = psycopg.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
    assert type(loader(TIMESTAMPTZ_OID).load) is type(compiled(TIMESTAMPTZ_OID).load)  # not a Python function
    assert value == MOMENT and value.tzinfo is datetime.UTC


def test_images_read_back_their_timestamps_in_utc(make_image):
    from images.models import Image

    image = make_image()
    stored = Image.objects.values_list("created_at", flat=True).get(pk=image.pk)
    assert stored == image.created_at and stored.tzinfo is datetime.UTC


@override_settings(USE_TZ=False, TIME_ZONE="Europe/Paris")
def test_without_time_zone_support_timestamps_are_naive_local_times_as_django_reads_them():
    value, loader = _read_back(MOMENT)
    assert issubclass(loader, BaseTzLoader) and loader is not UtcTimestamptzLoader
    assert value == datetime.datetime(2026, 3, 29, 3, 30, 15, 123456)  # Paris had just moved to summer time


@pytest.fixture
def pooled(relay):
    """A backend with a pool of one connection, through the relay, health checks on (as served)."""
    relayed = connections["default"]  # the relay fixture's
    wrapper = type(relayed)({
        **relayed.settings_dict, "CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {**relayed.settings_dict["OPTIONS"], "pool": {"min_size": 1, "max_size": 1}},
    }, alias="pooled")
    try:
        yield wrapper
    finally:
        wrapper.close()
        wrapper.close_pool()


def _backend_pid(wrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,), = cursor.fetchall()
    return pid


@pytest.mark.django_db(transaction=True)
def test_a_pooled_connection_is_handed_out_without_a_round_trip(pooled, relay):
    pid = _backend_pid(pooled)
    pooled.close()  # back to the pool
    relay.round_trips = 0
    pooled.ensure_connection()
    assert relay.round_trips == 0
    assert _backend_pid(pooled) == pid and relay.round_trips == 1


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_ended_is_replaced_before_it_is_handed_out(pooled):
    pid = _backend_pid(pooled)
    pooled.close()
    raw = pooled.pool._pool[0]  # the idle connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    poll = select.poll()
    poll.register(raw.fileno(), select.POLLIN)
    assert poll.poll(10_000)  # the server's FATAL error has arrived
    new_pid = _backend_pid(pooled)  # no OperationalError: the pool opened another connection
    assert new_pid != pid
