"""A page of a whole table as `.values()` is read with SQL compiled once and answers what the ORM answers."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.db.models import F

from core.db import compiled
from images.models import Image
from images.selectors import images_all

pytestmark = pytest.mark.django_db

FIELDS = ("id", "status", "quality", "created_at", "generation_id", "file")


@pytest.fixture
def images(make_image):
    return [make_image(quality={"valid": n % 2 == 0, "errors": [f"e{n}"]}) for n in range(7)]


@pytest.fixture
def compiles(monkeypatch):
    """Each statement compiled for a plain page, in order."""
    made = []
    original = compiled.compile_values
    monkeypatch.setattr(compiled, "_plain", {})
    monkeypatch.setattr(compiled, "compile_values", lambda queryset, alias: made.append(queryset.query.low_mark)
                        or original(queryset, alias))
    return made


def _orm(queryset):
    return list(Image.objects.order_by(*queryset.query.order_by).values(*FIELDS)[
        queryset.query.low_mark:queryset.query.high_mark])


def test_pages_are_the_orms_rows_each_slice_compiled_once(images, compiles):
    ordered = images_all().order_by("-created_at", "-id").values(*FIELDS)
    for _ in range(2):
        for start in (0, 3, 6):
            page = ordered[start:start + 3]
            assert list(page) == _orm(page) and list(page)
    assert compiles == [0, 3, 6]
    (row,) = ordered[:1]
    assert isinstance(row["created_at"], datetime.datetime) and row["created_at"].utcoffset() == datetime.timedelta(0)
    assert row["quality"] == {"valid": True, "errors": ["e6"]} and row["file"] == images[6].file.name


def test_each_ordering_and_column_set_is_its_own_statement(images, compiles):
    oldest = images_all().order_by("created_at", "id").values(*FIELDS)[:2]
    assert [row["id"] for row in oldest] == [image.id for image in images[:2]]
    few = images_all().order_by("created_at", "id").values("id")[:2]
    assert list(few) == [{"id": image.id} for image in images[:2]]
    assert len(compiles) == 2


def test_anything_but_a_plain_page_runs_through_the_orm(images, compiles):
    base = images_all().order_by("-created_at", "-id")
    filtered = base.filter(id__in=[images[0].id, images[1].id]).values(*FIELDS)
    assert [row["id"] for row in filtered] == [images[1].id, images[0].id]
    annotated = base.annotate(twice=F("width") * 2).values("id", "twice")[:1]
    assert list(annotated) == [{"id": images[-1].id, "twice": images[-1].width * 2}]
    joined = base.values("id", "generation__prompt")[:1]
    assert list(joined) == [{"id": images[-1].id, "generation__prompt": None}]
    instances = base[:2]
    assert [image.id for image in instances] == [images[-1].id, images[-2].id]
    assert list(base.values_list("id", flat=True)[:1]) == [images[-1].id]
    assert compiles == []


def test_the_cache_starts_over_when_full(images, compiles, monkeypatch):
    monkeypatch.setattr(compiled, "MAX_SHAPES", 2)
    ordered = images_all().order_by("-created_at", "-id").values("id")
    for start in range(4):
        assert list(ordered[start:start + 1]) == [{"id": images[-1 - start].id}]
    assert len(compiled._plain) <= 2 and compiles == [0, 1, 2, 3]


def test_values_follow_a_changed_time_zone_setting(images, compiles, settings):
    ordered = images_all().order_by("-created_at", "-id").values("id", "created_at")
    (aware,) = ordered[:1]
    assert aware["created_at"].utcoffset() == datetime.timedelta(0)
    settings.USE_TZ, settings.TIME_ZONE = False, "Europe/Berlin"
    (naive,) = ordered[:1]
    assert naive == list(Image.objects.order_by("-created_at", "-id").values("id", "created_at")[:1])[0]
    if connection.vendor == "sqlite":
        assert naive["created_at"].tzinfo is None  # made again for the setting, not the first call's
    assert compiles == [0]


def test_json_columns_read_as_the_field_reads_them_beyond_what_orjson_reads(make_image, monkeypatch):
    import json

    import orjson

    # Values orjson does not read as `json` does (an integer beyond 64 bits, which it reads as a float; on
    # SQLite, which stores the text as written, a lone surrogate it refuses) and ones it reads.
    odd_text = "\ud800" if connection.vendor == "sqlite" else "\u00e9"
    reports = [{"big": 2**70 + 1, "values": [1.5, -(2**63) - 1]}, {"text": odd_text},
               {"valid": True, "info": {"dpi": 300}}]
    made = [make_image(quality=report) for report in reports]
    read_by_orjson = []
    loads = orjson.loads
    monkeypatch.setattr(orjson, "loads", lambda text: read_by_orjson.append(text) or loads(text))
    monkeypatch.setattr(compiled, "_plain", {})
    rows = {row["id"]: row["quality"] for row in images_all().order_by("created_at", "id").values(*FIELDS)[:10]}
    assert rows == {image.id: json.loads(json.dumps(report)) for image, report in zip(made, reports, strict=True)}
    assert rows[made[0].id]["big"] == 2**70 + 1 and rows[made[1].id]["text"] == odd_text
    assert [type(value) for value in rows[made[0].id]["values"]] == [float, int]
    assert len(read_by_orjson) == len(reports) - 1  # orjson read the others
