"""Intake and optimisation against the bare hashlib/Pillow calls doing the same work, and intake's peak memory."""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from PIL import Image as PILImage
from PIL import ImageDraw

from benchmarks import compare, figure

INTAKE_RATIO_LIMIT = 1.3
OPTIMIZE_RATIO_LIMIT = 1.2
MEMORY_RATIO_LIMIT = 2.5
# Best of this many alternating runs each: enough to see through other load on a shared machine.
REPEAT = 5
PRINT_SIZE = (4500, 5400)
SMALL_SIZE = (1024, 1280)


def design_png(path: Path, size: tuple[int, int]) -> Path:
    """A print-like picture: smooth gradients, shapes and fine grain (so PNG cannot squeeze it to nothing)."""
    width, height = size
    red = PILImage.linear_gradient("L").resize(size)
    green = PILImage.radial_gradient("L").resize(size)
    grain = PILImage.effect_noise(size, 24)
    blue = PILImage.blend(red.transpose(PILImage.Transpose.ROTATE_180), grain, 0.35)
    im = PILImage.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(im)
    for i in range(12):
        box = (i * width // 14, i * height // 16, i * width // 14 + width // 5, i * height // 16 + height // 6)
        draw.ellipse(box, fill=(40 + i * 17, 200 - i * 11, 90 + i * 9), outline=(0, 0, 0), width=9)
    im.save(path, "PNG", dpi=(300, 300))
    return path


def bare_intake(path: Path) -> str:
    """What intake computes, with nothing around it: streamed sha256, header facts, thumbnail JPEG."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    with PILImage.open(path) as im:
        _facts = (im.size, im.format, im.mode, im.info.get("dpi"), os.path.getsize(path), im.has_transparency_data)
        im.thumbnail((settings.THUMBNAIL_SIZE,) * 2, PILImage.Resampling.LANCZOS, reducing_gap=2.0)
        im.convert("RGB").save(io.BytesIO(), "JPEG", quality=85)
    return digest.hexdigest()


def bare_optimize(src: Path, dst: Path) -> None:
    """Pillow alone: open, resize to fit the print size, save a 300 DPI PNG at the same zlib level."""
    from images.intake import OPTIMIZE_COMPRESS_LEVEL, fit_inside

    with PILImage.open(src) as im:
        size = fit_inside(im.width, im.height, *PRINT_SIZE)
        im.convert("RGB").resize(size, PILImage.Resampling.LANCZOS).save(
            dst, "PNG", dpi=(300, 300), compress_level=OPTIMIZE_COMPRESS_LEVEL
        )


# Ids of the images this process made, removed again at the end (DATABASE_URL may be a shared scratch DB).
CREATED: list[str] = []


def _intake(path: Path):
    from images.intake import image_intake

    image = image_intake(source=path, filename=path.name, source_kind="imported", prompt="benchmark")
    CREATED.append(image.id)
    return image


def _forget_created() -> None:
    from images.models import Image
    from webhooks.models import WebhookEvent

    Image.objects.filter(id__in=CREATED).delete()
    WebhookEvent.objects.filter(event_type="image.created", data__image_id__in=CREATED).delete()
    CREATED.clear()


def run() -> list[str]:
    try:
        return _run()
    finally:
        _forget_created()


def _run() -> list[str]:
    from core.actors import Actor
    from images.intake import image_optimize

    work = Path(settings.DATA_DIR) / "bench"
    work.mkdir(exist_ok=True)
    big = design_png(work / "print.png", PRINT_SIZE)
    small = design_png(work / "small.png", SMALL_SIZE)
    lines = []

    _intake(big)  # warm-up: imports, connection, page cache
    ours, bare = compare(lambda: _intake(big), lambda: bare_intake(big), repeat=REPEAT)
    lines.append(figure(
        f"intake {PRINT_SIZE[0]}x{PRINT_SIZE[1]} PNG ({big.stat().st_size / 2**20:.1f} MB)",
        ours / bare, INTAKE_RATIO_LIMIT,
        detail=f"bare hashlib+Pillow ({ours * 1000:.0f} ms vs {bare * 1000:.0f} ms)",
    ))

    pending: list[str] = []
    ours, bare = compare(
        lambda: image_optimize(image_id=pending.pop(), actor=Actor.system(), width=PRINT_SIZE[0], height=PRINT_SIZE[1]),
        lambda: bare_optimize(small, work / "bare-optimized.png"),
        setup=lambda: pending.append(_intake(small).id),
        repeat=REPEAT,
    )
    lines.append(figure(
        f"optimise {SMALL_SIZE[0]}x{SMALL_SIZE[1]} -> {PRINT_SIZE[0]}x{PRINT_SIZE[1]} PNG",
        ours / bare, OPTIMIZE_RATIO_LIMIT,
        detail=f"bare Pillow resize+save ({ours * 1000:.0f} ms vs {bare * 1000:.0f} ms)",
    ))

    decoded = PRINT_SIZE[0] * PRINT_SIZE[1] * 3
    peak = _peak_memory_in_child(big)
    lines.append(figure(
        f"intake peak memory {PRINT_SIZE[0]}x{PRINT_SIZE[1]} PNG",
        peak / decoded, MEMORY_RATIO_LIMIT,
        detail=f"the decoded RGB size ({peak / 2**20:.0f} MB over {decoded / 2**20:.0f} MB)",
    ))
    return lines


def _peak_memory_in_child(path: Path) -> int:
    """Peak RSS growth of one intake, measured in a fresh process so nothing earlier counts."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_intake", str(path)],
        check=True, capture_output=True, text=True, env={**os.environ},
        cwd=Path(__file__).resolve().parent.parent,
    )
    return int(json.loads(out.stdout.strip().splitlines()[-1])["peak_growth"])


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def _memory_child(path: Path) -> None:
    import django

    django.setup()
    small = design_png(path.with_name("warm.png"), (64, 64))
    _intake(small)  # imports, DB connection and Pillow plugins are loaded before measuring
    try:
        # Linux: "5" resets the peak RSS (VmHWM) to the current RSS.
        Path("/proc/self/clear_refs").write_text("5")
        before = _status_kb("VmRSS") * 1024
        _intake(path)
        peak = _status_kb("VmHWM") * 1024
    except OSError:
        before = _status_kb("VmRSS") * 1024 if Path("/proc/self/status").exists() else 0
        _intake(path)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    _forget_created()
    print(json.dumps({"peak_growth": max(0, peak - before)}))


if __name__ == "__main__":
    _memory_child(Path(sys.argv[1]))
