"""The quality report (CONTRACT §6): values at the thresholds, read from the header only."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image as PILImage

from images.intake import quality_report


@pytest.fixture(autouse=True)
def thresholds(settings):
    settings.IMAGE_MIN_WIDTH, settings.IMAGE_MIN_HEIGHT = 40, 50
    settings.IMAGE_RECOMMENDED_WIDTH, settings.IMAGE_RECOMMENDED_HEIGHT = 90, 108
    settings.IMAGE_MIN_DPI = 300


def png(tmp_path: Path, size, *, dpi=300, mode="RGB", name="q.png") -> Path:
    path = tmp_path / name
    kwargs = {"dpi": (dpi, dpi)} if dpi else {}
    PILImage.new(mode, size, (10, 20, 30, 40)[: len(mode)] if mode != "P" else 0).save(path, **kwargs)
    return path


@pytest.mark.parametrize(
    "size, errors, warnings",
    [
        ((40, 50), [], ["Resolution 40x50 is below the recommended 90x108"]),
        ((39, 50), ["Resolution 39x50 is below the minimum 40x50"], []),
        ((40, 49), ["Resolution 40x49 is below the minimum 40x50"], []),
        ((90, 108), [], []),
        ((89, 108), [], ["Resolution 89x108 is below the recommended 90x108"]),
        ((90, 107), [], ["Resolution 90x107 is below the recommended 90x108"]),
    ],
)
def test_resolution_thresholds(tmp_path, size, errors, warnings):
    report = quality_report(png(tmp_path, size))
    assert (report["valid"], report["errors"], report["warnings"]) == (not errors, errors, warnings)
    assert report["info"]["resolution"] == {"width": size[0], "height": size[1]}


@pytest.mark.parametrize(
    "dpi, warning",
    [
        (300, None),
        (600, None),
        (299, "DPI (299) below recommended (300)"),
        (72, "DPI (72) below recommended (300)"),
        (None, "DPI is not set (recommended 300)"),
    ],
)
def test_dpi_threshold(tmp_path, dpi, warning):
    report = quality_report(png(tmp_path, (90, 108), dpi=dpi))
    assert report["warnings"] == ([warning] if warning else [])
    assert report["info"]["dpi"] == dpi
    assert report["valid"] is True


def test_file_size_over_the_limit_is_an_error(tmp_path, settings):
    path = png(tmp_path, (90, 108))
    settings.IMAGE_MAX_BYTES = path.stat().st_size
    assert quality_report(path)["valid"] is True
    settings.IMAGE_MAX_BYTES = path.stat().st_size - 1
    report = quality_report(path)
    assert report["valid"] is False
    assert report["errors"][0].startswith("File size 0.0 MB is over the limit")


def test_info_reports_size_mode_dpi_print_size_and_transparency(tmp_path):
    report = quality_report(png(tmp_path, (4500, 5400), mode="RGBA"))
    assert report["info"] == {
        "resolution": {"width": 4500, "height": 5400},
        "format": "PNG",
        "color_mode": "RGBA",
        "dpi": 300,
        "file_size_mb": round((tmp_path / "q.png").stat().st_size / 2**20, 2),
        # The size it prints at 300 DPI.
        "print_size_inches": {"width": 15.0, "height": 18.0},
        "has_transparency": True,
    }


def test_other_formats_are_an_error(tmp_path):
    path = tmp_path / "q.gif"
    PILImage.new("P", (90, 108)).save(path, "GIF")
    report = quality_report(path)
    assert report["errors"] == ["Format GIF is not supported (PNG or JPEG required)"]
    assert report["info"]["format"] == "GIF"


def test_a_non_image_gives_an_invalid_report(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    report = quality_report(path)
    assert report["valid"] is False
    assert report["errors"] == ["Not an image"]


def test_the_report_reads_only_the_header(tmp_path):
    """A PNG whose pixel data is cut off still reports: nothing was decoded."""
    path = tmp_path / "noise.png"
    PILImage.effect_noise((200, 200), 60).save(path, dpi=(300, 300))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    report = quality_report(path)
    assert report["info"]["resolution"] == {"width": 200, "height": 200}
    assert report["info"]["color_mode"] == "L"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_reading_the_facts_decodes_no_pixels(tmp_path, fmt):
    from images.intake import image_facts

    exif = PILImage.Exif()
    exif[0x0112] = 6
    path = tmp_path / f"q.{fmt.lower()}"
    PILImage.new("RGB", (300, 200), "red").save(path, fmt, dpi=(300, 300), exif=exif)
    plain = tmp_path / f"plain.{fmt.lower()}"
    PILImage.new("RGB", (300, 200), "red").save(plain, fmt)
    for file, size in ((path, (200, 300)), (plain, (300, 200))):
        with PILImage.open(file) as im:
            facts = image_facts(im, file_size=1)
            # Pillow empties `tile` once it has decoded the pixels.
            assert im.tile, "the image was decoded"
        assert (facts.width, facts.height) == size
