"""`InValues` selects what `__in` selects, preparing values only for columns that need it."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db.models import F

from core.actors import Actor, Via
from core.db.lookups import InValues
from images.models import Image, ImageTransition
from images.services import images_approve

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(make_image, reviewer):
    images = [make_image() for _ in range(4)]
    images_approve(image_ids=[image.id for image in images], actor=Actor(reviewer, Via.API))
    return images


def _ids(queryset) -> list[int]:
    return sorted(queryset.values_list("id", flat=True))


def test_text_foreign_keys_select_the_same_rows_as_in(history):
    wanted = [history[0].id, history[2].id, history[2].id, "img_missing"]
    chosen = ImageTransition.objects.filter(InValues(F("image_id"), wanted))
    assert _ids(chosen) == _ids(ImageTransition.objects.filter(image_id__in=wanted))
    assert sorted(chosen.values_list("image_id", flat=True)) == sorted([history[0].id, history[2].id])


def test_integer_keys_select_the_same_rows_as_in(history):
    rows = _ids(ImageTransition.objects.all())
    assert _ids(ImageTransition.objects.filter(InValues(F("id"), {rows[1], rows[3]}))) == [rows[1], rows[3]]


def test_other_column_types_are_prepared_as_in_prepares_them(history):
    # Datetimes are not stored as given (SQLite keeps text): the values are converted, so rows still match.
    stamps = list(ImageTransition.objects.values_list("created_at", flat=True)[:2])
    assert _ids(ImageTransition.objects.filter(InValues(F("created_at"), stamps))) == \
        _ids(ImageTransition.objects.filter(created_at__in=stamps))
    later = [stamp + timedelta(days=1) for stamp in stamps]
    assert not ImageTransition.objects.filter(InValues(F("created_at"), later)).exists()


def test_no_values_select_nothing(history):
    assert not ImageTransition.objects.filter(InValues(F("image_id"), [])).exists()


def test_values_of_another_type_are_prepared_for_prepared_columns(history):
    # As `__in` prepares them: a date for a datetime column, "t" for a boolean.
    with pytest.warns(RuntimeWarning, match="naive datetime"):  # as `created_at__in=[a date]` warns
        assert not ImageTransition.objects.filter(InValues(F("created_at"), [date(2000, 1, 1)])).exists()
    assert Image.objects.filter(InValues(F("quality_valid"), ["t"])).count() == \
        Image.objects.filter(quality_valid__in=["t"]).count() == len(history)
