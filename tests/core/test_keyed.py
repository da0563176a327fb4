"""`values_in` answers what `filter(key__in=…).values(…)` answers, compiling each shape once."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from core.actors import Actor, Via
from core.db import keyed
from core.db.keyed import values_in
from core.db.lookups import InValues
from images.models import Image, ImageTransition
from images.services import images_approve, images_reset

pytestmark = pytest.mark.django_db

FIELDS = ["image_id", "id", "from_status", "to_status", "created_at", "details"]


@pytest.fixture
def images(make_image, reviewer):
    made = [make_image(quality={"valid": False, "errors": [f"e{n}"]}) for n in range(6)]
    actor = Actor(reviewer, Via.API)
    images_approve(image_ids=[image.id for image in made], actor=actor)
    images_reset(image_ids=[image.id for image in made[:3]], actor=actor)
    return made


def _orm(ids, order_by=None):
    queryset = ImageTransition.objects.filter(image_id__in=ids)
    if order_by is not None:
        queryset = queryset.order_by(*order_by)
    return list(queryset.values(*FIELDS))


@pytest.mark.parametrize("count", [1, 2, 3, 5, 6])
def test_the_rows_and_their_order_are_the_orms(images, count):
    ids = [image.id for image in images[:count]]
    assert values_in(ImageTransition, key="image_id", keys=ids, fields=FIELDS) == _orm(ids)
    newest_first = ("-created_at", "-id")
    assert values_in(ImageTransition, key="image_id", keys=ids, fields=FIELDS, order_by=newest_first) == \
        _orm(ids, newest_first)


def test_values_are_converted_as_values_converts_them(images):
    (row,) = values_in(Image, key="id", keys=[images[0].id], fields=["id", "quality", "created_at"])
    assert row["quality"] == {"valid": False, "errors": ["e0"]}
    assert isinstance(row["created_at"], datetime.datetime) and row["created_at"].utcoffset() == datetime.timedelta(0)


def test_repeated_and_unknown_keys_select_each_row_once(images):
    ids = [images[0].id, images[0].id, "img_missing", images[1].id]
    assert values_in(ImageTransition, key="image_id", keys=ids, fields=FIELDS) == _orm(ids)
    assert values_in(ImageTransition, key="image_id", keys=[], fields=FIELDS) == []


def test_a_shape_is_compiled_once_and_each_call_reads_its_own_keys(images, monkeypatch):
    compiled = []
    original = keyed._compile
    monkeypatch.setattr(keyed, "_compiled", {})
    monkeypatch.setattr(keyed, "_compile", lambda *args: compiled.append(args) or original(*args))
    for image in images:
        rows = values_in(ImageTransition, key="image_id", keys=[image.id], fields=FIELDS)
        assert rows == _orm([image.id]) and {row["image_id"] for row in rows} == {image.id}
    assert len(compiled) == 1
    ids = [images[0].id, images[1].id]
    assert values_in(ImageTransition, key="image_id", keys=ids, fields=FIELDS) == _orm(ids)
    # SQLite: another size bucket; PostgreSQL: the keys are one array parameter, one statement for any number.
    assert len(compiled) == (1 if connection.vendor == "postgresql" else 2)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="array parameters are PostgreSQL's")
def test_postgresql_sends_the_keys_as_one_array_parameter(images, monkeypatch):
    monkeypatch.setattr(keyed, "_compiled", {})
    ids = [image.id for image in images]
    for count in (1, 3, len(ids)):
        with CaptureQueriesContext(connection) as queries:
            rows = values_in(ImageTransition, key="image_id", keys=ids[:count] + ["img_missing"] * 60, fields=FIELDS)
        assert rows == _orm(ids[:count])
        (query,) = queries.captured_queries
        assert "= ANY(" in query["sql"] and " IN (" not in query["sql"]
    assert len(keyed._compiled) == 1


def test_no_keys_but_null_select_no_rows_as_in_does(images):
    assert list(ImageTransition.objects.filter(InValues(F("image_id"), [None])).values("id")) == []
    assert list(ImageTransition.objects.filter(InValues(F("image_id"), [None, images[0].id])).values("image_id")) \
        == list(ImageTransition.objects.filter(image_id=images[0].id).values("image_id"))


def test_a_key_column_that_needs_preparing_runs_through_the_orm(images, monkeypatch):
    monkeypatch.setattr(keyed, "_compile", lambda *args: pytest.fail("compiled a non-plain key"))
    stamps = list(ImageTransition.objects.values_list("created_at", flat=True).distinct()[:2])
    rows = values_in(ImageTransition, key="created_at", keys=stamps, fields=FIELDS)
    assert rows == list(ImageTransition.objects.filter(created_at__in=stamps).values(*FIELDS)) and rows


def test_rows_read_for_update_are_locked_inside_a_transaction_only(images):
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    ids = [images[0].id, images[1].id]
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        rows = values_in(Image, key="id", keys=ids, fields=["id", "status"], for_update=True)
    assert sorted(row["id"] for row in rows) == sorted(ids)
    if connection.features.has_select_for_update:
        assert captured.captured_queries[-1]["sql"].endswith("FOR UPDATE")


@pytest.mark.django_db(transaction=True)
def test_reading_for_update_outside_a_transaction_is_refused_where_it_would_lock(make_image):
    from django.db import connection
    from django.db.transaction import TransactionManagementError

    image = make_image()
    if not connection.features.has_select_for_update:
        assert values_in(Image, key="id", keys=[image.id], fields=["id"], for_update=True) == [{"id": image.id}]
        return
    with pytest.raises(TransactionManagementError):
        values_in(Image, key="id", keys=[image.id], fields=["id"], for_update=True)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="keys from a statement are PostgreSQL's")
def test_keys_from_a_statement_select_what_its_keys_would_in_one_statement(images, monkeypatch):
    from images.selectors import images_all

    monkeypatch.setattr(keyed, "_compiled", {})
    monkeypatch.setattr(keyed, "_by_statement", {})
    for page in (images_all().order_by("-created_at", "-id")[1:4], images_all().filter(status="approved")[:2]):
        page = page.values("id", "status")
        keys, ids = page.keys_from("id"), [row["id"] for row in page.all()]
        with CaptureQueriesContext(connection) as queries:
            rows = values_in(ImageTransition, key="image_id", keys=keys, fields=FIELDS)
        assert rows == _orm(ids) and {row["image_id"] for row in rows} == set(ids)
        (query,) = queries.captured_queries
        assert "= ANY(ARRAY(SELECT" in query["sql"]
    assert len(keyed._compiled) == 1  # the shape of the keys given as values, compiled once
    assert images_all().values("status").keys_from("id") is None  # a statement not selecting the column
    read = images_all().values("id")
    assert list(read) and read.keys_from("id") is None  # rows already read


@pytest.mark.skipif(connection.vendor != "postgresql", reason="keys from a statement are PostgreSQL's")
def test_keys_from_a_statement_for_a_shape_the_orm_runs_are_a_subquery(images, monkeypatch):
    from images.selectors import images_all

    monkeypatch.setattr(keyed, "_compiled", {})
    monkeypatch.setattr(keyed, "_compile", lambda *args: pytest.fail("compiled a key the ORM reads"))
    monkeypatch.setattr(keyed, "stored_as_given", lambda field: False)
    page = images_all().order_by("id").values("id", "created_at")[:3]
    keys, ids = page.keys_from("id"), [row["id"] for row in page.all()]
    rows = values_in(ImageTransition, key="image_id", keys=keys, fields=FIELDS)
    assert rows == _orm(ids) and {row["image_id"] for row in rows} == set(ids)


@pytest.mark.skipif(connection.vendor == "postgresql", reason="keys from a statement are PostgreSQL's")
def test_keys_from_a_statement_are_refused_elsewhere(images):
    from core.db.compiled import KeysFrom

    with pytest.raises(ValueError, match="PostgreSQL"):
        values_in(ImageTransition, key="image_id", keys=KeysFrom("SELECT 1", (), "id"), fields=FIELDS)
