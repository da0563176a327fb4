"""Admin fixtures: staff users in each role, and queue images with a thumbnail and a quality report."""

from __future__ import annotations

import io

import pytest
from django.core.files.base import ContentFile
from PIL import Image as PILImage

from images.models import Generation, Image, ImageStatus
from tests.conftest import make_user


def jpeg_bytes(color=(30, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (80, 96), color).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def staff_reviewer(db):
    return make_user("rev", "reviewers", is_staff=True)


@pytest.fixture
def staff_publisher(db):
    return make_user("pub", "publishers", is_staff=True)


@pytest.fixture
def staff_client_role(db):
    """Staff but only in `clients`: may look at the queue, may not decide anything."""
    return make_user("looker", "clients", is_staff=True)


@pytest.fixture
def make_generation(db):
    counter = iter(range(1, 1_000_000))

    def make(prompt: str = "retro sunset cat", prompt_hash: str | None = None, **fields) -> Generation:
        n = next(counter)
        return Generation.objects.create(
            prompt=prompt, backend="procedural", prompt_hash=prompt_hash or f"{n:064x}",
            params={"width": 64, "height": 64, "batch_size": 1}, **fields,
        )

    return make


@pytest.fixture
def queue_image(make_image):
    """An image as intake leaves it: with a thumbnail and a quality report."""

    def make(status: str = ImageStatus.PENDING, *, errors=(), warnings=(), **fields) -> Image:
        image = make_image(status=status, **fields)
        image.thumbnail.save(f"{image.pk}.jpg", ContentFile(jpeg_bytes()), save=False)
        image.quality = {
            "valid": not errors, "errors": list(errors), "warnings": list(warnings),
            "info": {"resolution": {"width": 64, "height": 64}, "format": "PNG", "dpi": None},
        }
        image.quality_valid = not errors
        image.quality_warnings = len(warnings)
        image.save()
        return image

    return make
