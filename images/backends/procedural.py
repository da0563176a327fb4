"""`procedural`: a stand-in backend that draws an abstract picture with Pillow. It is not AI.

It exists so the gateway works end to end without a GPU (demos, tests, `make run`): the same prompt,
seed and size always give byte-identical PNGs. The picture is drawn small and scaled up, so even a
4500×5400 print file takes well under a second to draw (most of the time is PNG encoding).
"""

from __future__ import annotations

import hashlib
import io
import random

from PIL import Image, ImageDraw, ImageFilter, ImageOps

from images.backends.base import GenerationRequest, JobResult, JobState

DRAW_SIDE = 384  # longest side of the small canvas that is drawn before scaling
PRINT_DPI = 300


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return rng.randrange(256), rng.randrange(256), rng.randrange(256)


def render(request: GenerationRequest) -> bytes:
    """The PNG for `request`: a gradient with translucent shapes, seeded by prompt, seed and size."""
    material = f"{request.full_prompt}\0{request.negative_prompt}\0{request.seed}\0{request.width}x{request.height}"
    rng = random.Random(hashlib.sha256(material.encode("utf-8", "replace")).digest())
    scale = DRAW_SIDE / max(request.width, request.height)
    small = (max(8, round(request.width * scale)), max(8, round(request.height * scale)))

    gradient = Image.linear_gradient("L").rotate(rng.choice((0, 90, 180, 270))).resize(small)
    canvas = ImageOps.colorize(gradient, _colour(rng), _colour(rng)).convert("RGBA")
    overlay = Image.new("RGBA", small, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for _ in range(rng.randint(6, 14)):
        x0, y0 = rng.randrange(small[0]), rng.randrange(small[1])
        size = rng.randint(small[0] // 10, small[0] // 2)
        fill = (*_colour(rng), rng.randint(90, 200))
        if rng.random() < 0.5:
            draw.ellipse((x0 - size, y0 - size, x0 + size, y0 + size), fill=fill)
        else:
            points = [(x0 + rng.randint(-size, size), y0 + rng.randint(-size, size)) for _ in range(3)]
            draw.polygon(points, fill=fill)
    canvas = Image.alpha_composite(canvas, overlay.filter(ImageFilter.GaussianBlur(2))).convert("RGB")
    full = canvas.resize((request.width, request.height), Image.Resampling.BILINEAR)

    buffer = io.BytesIO()
    # Fast zlib level: these pictures are smooth, so size barely changes and encoding is 3-4x quicker.
    full.save(buffer, "PNG", compress_level=1, dpi=(PRINT_DPI, PRINT_DPI))
    return buffer.getvalue()


class ProceduralBackend:
    """Draws locally; a job is just the seed, so "polling" it renders the picture."""

    name = "procedural"

    def submit(self, request: GenerationRequest) -> str:
        return f"procedural-{request.seed}"

    def poll(self, job_id: str, request: GenerationRequest) -> JobResult:
        return JobResult(JobState.COMPLETED, images=[render(request)])

    def cancel(self, job_id: str, request_id: str | None = None) -> None:
        """Nothing runs remotely, so there is nothing to stop."""
