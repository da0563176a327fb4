"""Image intake through real files, real storage and the real database."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.db import IntegrityError
from PIL import Image as PILImage

from core.actors import Actor, Via
from core.errors import InvalidInputError
from images.intake import image_find_duplicate, image_intake
from images.models import Generation, Image, ImageSource, ImageStatus, ImageTransition
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_thresholds(settings):
    """Thresholds scaled down so the test pictures stay tiny."""
    settings.IMAGE_MIN_WIDTH = settings.IMAGE_MIN_HEIGHT = 40
    settings.IMAGE_RECOMMENDED_WIDTH, settings.IMAGE_RECOMMENDED_HEIGHT = 90, 108
    settings.THUMBNAIL_SIZE = 32
    return settings


def save(path: Path, size=(100, 120), mode="RGB", color=(200, 40, 40), fmt="PNG", **kwargs) -> Path:
    PILImage.new(mode, size, color).save(path, fmt, **kwargs)
    return path


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming a huge picture, with almost no data behind it."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + png_chunk(b"IEND", b"")
    )


def media_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def test_intake_from_path_stores_file_facts_thumbnail_quality_and_event(tmp_path, settings, reviewer):
    path = save(tmp_path / "design.png", size=(100, 120), dpi=(300, 300))
    image = image_intake(
        source=path, filename="design.png", source_kind=ImageSource.IMPORTED, prompt="retro cat",
        actor=Actor(reviewer, Via.COMMAND),
    )
    image.refresh_from_db()
    data = path.read_bytes()
    assert image.status == ImageStatus.PENDING
    assert (image.source, image.prompt, image.created_by) == ("imported", "retro cat", reviewer)
    assert (image.width, image.height, image.dpi, image.format, image.color_mode) == (100, 120, 300, "PNG", "RGB")
    assert image.file_size == len(data)
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert image.file.name.endswith(f"{image.id}.png")
    assert Path(image.file.path).read_bytes() == data
    with PILImage.open(image.thumbnail.path) as thumb:
        assert thumb.format == "JPEG"
        assert max(thumb.size) == 32 and thumb.size == (27, 32)
    assert image.quality == {
        "valid": True,
        "errors": [],
        "warnings": [],
        "info": {
            "resolution": {"width": 100, "height": 120},
            "format": "PNG",
            "color_mode": "RGB",
            "dpi": 300,
            "file_size_mb": round(len(data) / 2**20, 2),
            "print_size_inches": {"width": 0.33, "height": 0.4},
            "has_transparency": False,
        },
    }
    assert (image.quality_valid, image.quality_warnings) == (True, 0)
    event = WebhookEvent.objects.get()
    assert event.event_type == "image.created"
    assert event.data["image_id"] == image.id
    assert event.data["sha256"] == image.sha256
    # Creation is not a lifecycle transition; the history starts with the first decision.
    assert not ImageTransition.objects.exists()


def test_intake_records_quality_problems_without_refusing(tmp_path):
    path = save(tmp_path / "small.png", size=(39, 60))
    image = image_intake(source=path, filename="small.png", source_kind=ImageSource.UPLOADED)
    assert image.quality_valid is False
    assert image.quality["errors"] == ["Resolution 39x60 is below the minimum 40x40"]
    assert image.quality_warnings == 1  # no DPI stored
    assert image.dpi is None


def test_intake_of_uploads_in_memory_and_on_disk(tmp_path, settings):
    buffer = io.BytesIO()
    PILImage.new("RGB", (50, 50), "blue").save(buffer, "JPEG", dpi=(72, 72))
    upload = SimpleUploadedFile("photo.JPEG", buffer.getvalue(), content_type="image/jpeg")
    image = image_intake(source=upload, filename=upload.name, source_kind=ImageSource.UPLOADED)
    assert (image.format, image.dpi, image.file.name[-4:]) == ("JPEG", 72, ".jpg")
    assert image.quality["warnings"] == [
        "Resolution 50x50 is below the recommended 90x108",
        "DPI (72) below recommended (300)",
    ]

    temp = TemporaryUploadedFile("upload.png", "image/png", 0, None)
    PILImage.new("RGB", (60, 40), "green").save(temp, "PNG")
    temp.size = temp.tell()
    second = image_intake(source=temp, filename="upload.png", source_kind=ImageSource.UPLOADED)
    temp.seek(0)
    assert second.sha256 == hashlib.sha256(temp.read()).hexdigest()
    assert (second.width, second.height) == (60, 40)


class Stream(io.RawIOBase):
    """A non-seekable stream (like a socket) that counts what was read from it."""

    def __init__(self, data: bytes, endless: bool = False) -> None:
        self.data, self.endless, self.read_bytes = data, endless, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer) -> int:
        if self.endless:
            chunk = b"x" * len(buffer)
        else:
            chunk = self.data[self.read_bytes:self.read_bytes + len(buffer)]
        buffer[:len(chunk)] = chunk
        self.read_bytes += len(chunk)
        return len(chunk)


def test_intake_of_a_non_seekable_stream(tmp_path):
    data = save(tmp_path / "s.png").read_bytes()
    image = image_intake(source=Stream(data), filename="s.png", source_kind=ImageSource.GENERATED)
    assert image.sha256 == hashlib.sha256(data).hexdigest()


def test_endless_stream_is_refused_after_the_size_cap(settings):
    settings.IMAGE_MAX_BYTES = 5000
    stream = Stream(b"", endless=True)
    with pytest.raises(InvalidInputError, match="over the limit"):
        image_intake(source=stream, filename="s.png", source_kind=ImageSource.GENERATED)
    assert stream.read_bytes <= 5001
    assert not Image.objects.exists()


def test_oversized_file_is_refused_on_its_size_before_it_is_read(tmp_path, settings):
    settings.IMAGE_MAX_BYTES = 1000
    # Garbage: if it were read, it would be refused as "not an image" instead.
    path = tmp_path / "big.png"
    path.write_bytes(b"\0" * 1001)
    with pytest.raises(InvalidInputError, match="over the limit of") as caught:
        image_intake(source=path, filename="big.png", source_kind=ImageSource.IMPORTED)
    assert caught.value.fields["file"]
    upload = SimpleUploadedFile("big.png", b"\0" * 1001)
    with pytest.raises(InvalidInputError, match="over the limit of"):
        image_intake(source=upload, filename="big.png", source_kind=ImageSource.UPLOADED)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"just some text, no picture", "not a PNG or JPEG image"),
        (b"", "not a PNG or JPEG image"),
        (bomb_png(100_000, 100_000), "decompression bomb"),
    ],
    ids=["text", "empty", "bomb-header"],
)
def test_bad_files_are_refused_and_leave_nothing_behind(tmp_path, settings, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(InvalidInputError, match=message):
        image_intake(source=path, filename="bad.png", source_kind=ImageSource.IMPORTED)
    assert not Image.objects.exists()
    assert not WebhookEvent.objects.exists()
    assert media_files(settings) == []


def test_truncated_png_is_refused_as_corrupt(tmp_path, settings):
    noisy = PILImage.effect_noise((80, 80), 50).convert("RGB")
    noisy.save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInputError, match="corrupt or truncated"):
        image_intake(source=path, filename="cut.png", source_kind=ImageSource.IMPORTED)
    assert media_files(settings) == []


def test_other_image_formats_are_refused(tmp_path):
    path = save(tmp_path / "anim.gif", fmt="GIF", mode="P", color=1)
    with pytest.raises(InvalidInputError, match="not a PNG or JPEG image"):
        image_intake(source=path, filename="anim.gif", source_kind=ImageSource.IMPORTED)


def test_pixel_count_over_the_setting_is_refused(tmp_path, settings):
    settings.IMAGE_MAX_PIXELS = 100 * 100
    path = save(tmp_path / "big.png", size=(101, 100))
    with pytest.raises(InvalidInputError, match="decompression bomb: 101x100"):
        image_intake(source=path, filename="big.png", source_kind=ImageSource.IMPORTED)
    assert save(tmp_path / "ok.png", size=(100, 100)) and image_intake(
        source=tmp_path / "ok.png", filename="ok.png", source_kind=ImageSource.IMPORTED
    )


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_images_where_pillow_only_warns_are_refused(tmp_path, settings, monkeypatch):
    # As ImagesConfig.ready() sets it: Pillow's limit is ours. Up to twice it Pillow only warns.
    settings.IMAGE_MAX_PIXELS = 150 * 150
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 150 * 150)
    path = save(tmp_path / "warn.png", size=(200, 200))
    with pytest.raises(InvalidInputError, match="decompression bomb"):
        image_intake(source=path, filename="warn.png", source_kind=ImageSource.IMPORTED)


def test_pillow_limit_follows_the_setting():
    from django.conf import settings as django_settings

    assert PILImage.MAX_IMAGE_PIXELS == django_settings.IMAGE_MAX_PIXELS


def test_transparent_and_unusual_modes_get_rgb_thumbnails(tmp_path):
    rgba = tmp_path / "rgba.png"
    im = PILImage.new("RGBA", (60, 60), (0, 0, 0, 0))
    im.paste((255, 0, 0, 255), (0, 0, 30, 60))
    im.save(rgba)
    image = image_intake(source=rgba, filename="rgba.png", source_kind=ImageSource.IMPORTED)
    assert image.quality["info"]["has_transparency"] is True
    assert image.color_mode == "RGBA"
    with PILImage.open(image.thumbnail.path) as thumb:
        assert thumb.mode == "RGB"
        # Transparent areas become white, not black.
        assert all(value > 240 for value in thumb.getpixel((28, 16)))
        assert thumb.getpixel((2, 16))[0] > 200

    grey16 = tmp_path / "grey16.png"
    PILImage.new("I;16", (60, 60), 65535).save(grey16)
    image = image_intake(source=grey16, filename="grey16.png", source_kind=ImageSource.IMPORTED)
    with PILImage.open(image.thumbnail.path) as thumb:
        assert thumb.getpixel((5, 5))[0] > 240

    cmyk = save(tmp_path / "cmyk.jpg", mode="CMYK", color=(0, 255, 255, 0), fmt="JPEG")
    image = image_intake(source=cmyk, filename="cmyk.jpg", source_kind=ImageSource.IMPORTED)
    assert image.color_mode == "CMYK"
    with PILImage.open(image.thumbnail.path) as thumb:
        assert thumb.mode == "RGB"


def test_large_jpeg_thumbnail_is_bounded(tmp_path, settings):
    settings.THUMBNAIL_SIZE = 512
    path = save(tmp_path / "big.jpg", size=(3000, 2000), fmt="JPEG", quality=80)
    image = image_intake(source=path, filename="big.jpg", source_kind=ImageSource.IMPORTED)
    with PILImage.open(image.thumbnail.path) as thumb:
        assert thumb.size == (512, 341)


def test_failed_transaction_removes_the_written_files(tmp_path, settings):
    generation = Generation.objects.create(prompt="retro cat", backend="procedural", prompt_hash="0" * 64)
    first = image_intake(
        source=save(tmp_path / "a.png"), filename="a.png", source_kind=ImageSource.GENERATED,
        generation=generation, batch_index=0,
    )
    before = media_files(settings)
    assert len(before) == 2
    with pytest.raises(IntegrityError):
        image_intake(
            source=save(tmp_path / "b.png", color=(1, 2, 3)), filename="b.png",
            source_kind=ImageSource.GENERATED, generation=generation, batch_index=0,
        )
    assert media_files(settings) == before
    assert list(Image.objects.values_list("id", flat=True)) == [first.id]
    assert WebhookEvent.objects.count() == 1


def test_find_duplicate_by_sha256(tmp_path):
    path = save(tmp_path / "a.png")
    first = image_intake(source=path, filename="a.png", source_kind=ImageSource.IMPORTED)
    image_intake(source=path, filename="a.png", source_kind=ImageSource.IMPORTED)
    assert image_find_duplicate(sha256=first.sha256) == first
    assert image_find_duplicate(sha256="f" * 64) is None


def test_exif_orientation_is_applied_to_facts_thumbnail_and_optimised_file(tmp_path, settings):
    """A phone photo stored sideways (EXIF orientation 6) is treated as the portrait it shows."""
    from images.intake import image_optimize

    exif = PILImage.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    path = tmp_path / "phone.jpg"
    PILImage.new("RGB", (120, 80), "red").save(path, "JPEG", exif=exif)
    image = image_intake(source=path, filename="phone.jpg", source_kind=ImageSource.UPLOADED)
    assert (image.width, image.height) == (80, 120)
    with PILImage.open(image.thumbnail.path) as thumb:
        assert thumb.size == (21, 32)
    result = image_optimize(image_id=image.id, actor=Actor.system(), width=90, height=108)
    with PILImage.open(result.file.path) as im:
        assert im.size == (72, 108)


def test_unreadable_paths_are_refused_with_a_clear_error(tmp_path):
    with pytest.raises(InvalidInputError, match="Cannot read .*missing.png"):
        image_intake(source=tmp_path / "missing.png", filename="missing.png", source_kind=ImageSource.IMPORTED)
    with pytest.raises(InvalidInputError, match="Cannot read"):
        image_intake(source=tmp_path, filename="dir.png", source_kind=ImageSource.IMPORTED)
