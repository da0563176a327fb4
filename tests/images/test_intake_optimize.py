"""Optimisation: resized to fit the target (aspect kept), 300 DPI PNG, file and facts replaced."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PIL import Image as PILImage

from core.actors import Actor
from core.errors import InvalidInputError, InvalidStateError, NotFoundError
from images.intake import fit_inside, image_intake, image_optimize
from images.models import ImageSource, ImageStatus

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def thresholds(settings):
    settings.IMAGE_MIN_WIDTH = settings.IMAGE_MIN_HEIGHT = 100
    settings.IMAGE_RECOMMENDED_WIDTH, settings.IMAGE_RECOMMENDED_HEIGHT = 180, 216
    settings.THUMBNAIL_SIZE = 32


def intake(tmp_path: Path, size=(64, 80), mode="RGB", fmt="PNG", color=(200, 40, 40)):
    path = tmp_path / f"src.{fmt.lower()}"
    PILImage.new(mode, size, color).save(path, fmt, dpi=(72, 72))
    return image_intake(source=path, filename=path.name, source_kind=ImageSource.IMPORTED)


def test_fit_inside_keeps_the_aspect():
    assert fit_inside(1024, 1280, 4500, 5400) == (4320, 5400)
    assert fit_inside(5400, 4500, 4500, 5400) == (4500, 3750)
    assert fit_inside(4500, 5400, 4500, 5400) == (4500, 5400)


def test_optimise_replaces_the_file_with_a_300_dpi_png(tmp_path, django_capture_on_commit_callbacks):
    image = intake(tmp_path, fmt="JPEG")
    old_file, old_thumb, old_sha = Path(image.file.path), Path(image.thumbnail.path), image.sha256
    assert image.quality["valid"] is False

    with django_capture_on_commit_callbacks(execute=True):
        result = image_optimize(image_id=image.id, actor=Actor.system(), width=180, height=216)
    result.refresh_from_db()
    assert (result.width, result.height) == (173, 216)
    assert (result.format, result.dpi, result.color_mode, result.status) == ("PNG", 300, "RGB", ImageStatus.PENDING)
    data = Path(result.file.path).read_bytes()
    assert result.sha256 == hashlib.sha256(data).hexdigest() != old_sha
    assert result.file_size == len(data)
    assert result.file.name.endswith(".png")
    with PILImage.open(result.file.path) as im:
        assert (im.format, im.size, round(im.info["dpi"][0])) == ("PNG", (173, 216), 300)
    with PILImage.open(result.thumbnail.path) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) == 32
    assert result.quality["valid"] is True
    assert result.quality["warnings"] == ["Resolution 173x216 is below the recommended 180x216"]
    assert result.quality_warnings == 1
    # The replaced files are gone once the change committed.
    assert not old_file.exists() and not old_thumb.exists()


def test_optimise_keeps_transparency_and_can_shrink(tmp_path):
    image = intake(tmp_path, size=(400, 200), mode="RGBA", color=(0, 0, 0, 0))
    result = image_optimize(image_id=image.id, actor=Actor.system(), width=180, height=216)
    assert (result.width, result.height, result.color_mode) == (180, 90, "RGBA")
    assert result.quality["info"]["has_transparency"] is True


def test_optimise_refuses_published_unknown_and_bad_targets(tmp_path):
    image = intake(tmp_path)
    with pytest.raises(InvalidInputError) as caught:
        image_optimize(image_id=image.id, actor=Actor.system(), width=0, height=216)
    assert "width" in caught.value.fields
    with pytest.raises(NotFoundError):
        image_optimize(image_id="img_missing", actor=Actor.system())
    type(image).objects.filter(id=image.id).update(status=ImageStatus.PUBLISHED)
    with pytest.raises(InvalidStateError, match="published"):
        image_optimize(image_id=image.id, actor=Actor.system(), width=180, height=216)
    image.refresh_from_db()
    assert (image.width, image.format) == (64, "PNG")
