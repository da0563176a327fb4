"""Image intake: every new image (generated, imported, uploaded) enters the review queue here.

The size is checked before a byte is read and the header before a pixel is decoded; the file is hashed,
and a duplicate refused, before decoding too. The one decode (JPEG: at a reduced scale) that the thumbnail
needs runs within the process' decode budget (IMAGE_DECODE_BUDGET_MB), sized from the header, and holds
a single full-size copy of the pixels. The pending Image and its `image.created` event are created in one
transaction, and the written files are removed again when that transaction fails.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import re
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import Storage
from django.db import transaction
from PIL import ExifTags, ImageMode, ImageOps, UnidentifiedImageError
from PIL import Image as PILImage

from core.actors import Actor
from core.errors import BusyError, DuplicateImageError, InvalidInputError, InvalidStateError, NotFoundError
from core.text import clean_text
from images.models import Generation, Image, ImageSource, ImageStatus
from images.services import image_file_replaced
from webhooks.models import EventType
from webhooks.services import event_record

logger = logging.getLogger(__name__)

ACCEPTED_FORMATS = ("PNG", "JPEG")
# Where intake stores files (see images.models.image_upload_to / thumbnail_upload_to).
STORED_DIRS = ("images", "thumbnails")
EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg"}
CHUNK_SIZE = 1024 * 1024
THUMBNAIL_QUALITY = 85
OPTIMIZED_DPI = 300
# zlib level for optimised print files: Pillow's default; 1 saves time but makes files ~30% larger,
# and a 4500x5400 print file must stay under the 50 MB upload limit of the print providers.
OPTIMIZE_COMPRESS_LEVEL = 6
# EXIF orientations that need turning, and those of them that swap width and height.
TURNED = frozenset(range(2, 9))
SIDEWAYS = frozenset({5, 6, 7, 8})
# Decoding errors Pillow raises for corrupt or truncated data.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError)


@dataclass(frozen=True)
class ImageFacts:
    """What the header says about an image, plus its size on disk."""

    width: int
    height: int
    format: str
    color_mode: str
    dpi: int | None
    has_transparency: bool
    file_size: int


def _refuse(message: str) -> InvalidInputError:
    return InvalidInputError(message, fields={"file": [message]})


def _mb(size: int) -> float:
    return round(size / (1024 * 1024), 2)


# --- Reading without decoding ---------------------------------------------------------------------

@contextmanager
def open_image(fp: IO[bytes], *, formats: tuple[str, ...] | None = ACCEPTED_FORMATS) -> Iterator[PILImage.Image]:
    """Open an image from its header only; refuse non-images and decompression bombs."""
    # Pillow raises DecompressionBombError over twice its MAX_IMAGE_PIXELS (set from IMAGE_MAX_PIXELS in
    # ImagesConfig.ready) and only warns above it; the explicit check below refuses that band too.
    try:
        im = PILImage.open(fp, formats=formats)
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as exc:
        raise _refuse(f"Refused as a possible decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise _refuse(f"The file is not a {' or '.join(formats)} image" if formats else "Not an image") from None
    except DECODE_ERRORS as exc:
        raise _refuse(f"The image header is corrupt: {exc}") from None
    # `with im` (unlike im.close()) leaves a caller's file open.
    with im:
        width, height = im.size
        if width < 1 or height < 1:
            raise _refuse("The image has no pixels")
        if width * height > settings.IMAGE_MAX_PIXELS:
            raise _refuse(
                f"Refused as a possible decompression bomb: {width}x{height} is {width * height} pixels, "
                f"over the limit of {settings.IMAGE_MAX_PIXELS}"
            )
        yield im


def _dpi(im: PILImage.Image) -> int | None:
    raw = im.info.get("dpi")
    try:
        value = round(float(raw[0]))
    except (TypeError, ValueError, IndexError):
        return None
    # PNG stores pixels per metre, so 300 DPI reads back as 299.9994; 0 means "not stated".
    return value if value > 0 else None


def _orientation(im: PILImage.Image) -> int:
    """The EXIF orientation (1 = upright), read from the header's metadata."""
    if "exif" not in im.info:
        # Without EXIF in the header, PNG's getexif() would decode the whole image looking for it.
        return 1
    try:
        return int(im.getexif().get(ExifTags.Base.Orientation, 1))
    except (TypeError, ValueError, OSError, SyntaxError):
        return 1


def upright(im: PILImage.Image) -> PILImage.Image:
    """`im` turned as its EXIF orientation says (phone photos), or `im` itself when already upright."""
    return ImageOps.exif_transpose(im) if _orientation(im) in TURNED else im


def image_facts(im: PILImage.Image, *, file_size: int) -> ImageFacts:
    """The facts of an opened (not decoded) image; width and height as displayed (EXIF orientation applied)."""
    width, height = im.size
    if _orientation(im) in SIDEWAYS:
        width, height = height, width
    return ImageFacts(
        width=width,
        height=height,
        format=im.format or "",
        color_mode=im.mode,
        dpi=_dpi(im),
        has_transparency=bool(im.has_transparency_data),
        file_size=file_size,
    )


def report_from_facts(facts: ImageFacts) -> dict[str, Any]:
    """The quality report of CONTRACT §6 for these facts, against the thresholds in settings."""
    errors: list[str] = []
    warnings_: list[str] = []
    min_w, min_h = settings.IMAGE_MIN_WIDTH, settings.IMAGE_MIN_HEIGHT
    rec_w, rec_h = settings.IMAGE_RECOMMENDED_WIDTH, settings.IMAGE_RECOMMENDED_HEIGHT
    size = f"{facts.width}x{facts.height}"
    if facts.width < min_w or facts.height < min_h:
        errors.append(f"Resolution {size} is below the minimum {min_w}x{min_h}")
    elif facts.width < rec_w or facts.height < rec_h:
        warnings_.append(f"Resolution {size} is below the recommended {rec_w}x{rec_h}")
    if facts.file_size > settings.IMAGE_MAX_BYTES:
        errors.append(
            f"File size {_mb(facts.file_size)} MB is over the limit of {_mb(settings.IMAGE_MAX_BYTES)} MB"
        )
    if facts.format not in ACCEPTED_FORMATS:
        errors.append(f"Format {facts.format or 'unknown'} is not supported (PNG or JPEG required)")
    if facts.dpi is None:
        warnings_.append(f"DPI is not set (recommended {settings.IMAGE_MIN_DPI})")
    elif facts.dpi < settings.IMAGE_MIN_DPI:
        warnings_.append(f"DPI ({facts.dpi}) below recommended ({settings.IMAGE_MIN_DPI})")
    # The physical size it prints at the print resolution (as the seed's report: 4500 px = 15 in).
    print_dpi = settings.IMAGE_MIN_DPI or 300
    return {
        "valid": not errors,
        "errors": errors,
        "warnings": warnings_,
        "info": {
            "resolution": {"width": facts.width, "height": facts.height},
            "format": facts.format,
            "color_mode": facts.color_mode,
            "dpi": facts.dpi,
            "file_size_mb": _mb(facts.file_size),
            "print_size_inches": {
                "width": round(facts.width / print_dpi, 2),
                "height": round(facts.height / print_dpi, 2),
            },
            "has_transparency": facts.has_transparency,
        },
    }


def quality_report(path: str | os.PathLike) -> dict[str, Any]:
    """The quality report of the image file at `path`, read from its header (nothing is decoded).

    A file that is not a readable image gives an invalid report naming why; a missing file raises OSError.
    """
    file_size = os.stat(path).st_size
    with open(path, "rb") as fh:
        try:
            with open_image(fh, formats=None) as im:
                return report_from_facts(image_facts(im, file_size=file_size))
        except InvalidInputError as exc:
            return {
                "valid": False,
                "errors": [exc.message],
                "warnings": [],
                "info": {"file_size_mb": _mb(file_size)},
            }


# --- Intake ---------------------------------------------------------------------------------------

@contextmanager
def _sized_source(source: str | os.PathLike | IO[bytes]) -> Iterator[tuple[IO[bytes], int]]:
    """A seekable binary file for `source` and its size, refused before reading when over the cap."""
    limit = settings.IMAGE_MAX_BYTES

    def check(size: int) -> None:
        if size > limit:
            raise _refuse(f"The file is {_mb(size)} MB, over the limit of {_mb(limit)} MB")

    if isinstance(source, (str, os.PathLike)):
        try:
            stat = os.stat(source)
            check(stat.st_size)
            fh = open(source, "rb")
        except OSError as exc:
            raise _refuse(f"Cannot read {os.fspath(source)}: {exc.strerror}") from None
        with fh:
            yield fh, stat.st_size
        return
    size = getattr(source, "size", None)
    seekable = getattr(source, "seekable", lambda: True)()
    if isinstance(size, int) and seekable:
        check(size)
        source.seek(0)
        yield source, size
        return
    if seekable:
        source.seek(0, os.SEEK_END)
        size = source.tell()
        check(size)
        source.seek(0)
        yield source, size
        return
    # A stream of unknown length: keep at most limit + 1 bytes, so an endless stream is refused too.
    with tempfile.SpooledTemporaryFile(max_size=8 * CHUNK_SIZE) as spool:
        copied = 0
        while chunk := source.read(min(CHUNK_SIZE, limit + 1 - copied)):
            spool.write(chunk)
            copied += len(chunk)
            if copied > limit:
                raise _refuse(f"The file is over the limit of {_mb(limit)} MB")
        spool.seek(0)
        yield spool, copied


class _HashingFile(File):
    """Hashes every chunk that storage copies, so the file is read once for both."""

    DEFAULT_CHUNK_SIZE = CHUNK_SIZE

    def __init__(self, file: IO[bytes], name: str) -> None:
        super().__init__(file, name)
        self.sha256 = hashlib.sha256()
        self.copied = 0

    def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        self.sha256 = hashlib.sha256()
        self.copied = 0
        for chunk in super().chunks(chunk_size):
            self.sha256.update(chunk)
            self.copied += len(chunk)
            yield chunk


def _to_rgb(im: PILImage.Image) -> PILImage.Image:
    """RGB for JPEG: transparent areas become white, other modes (P, CMYK, 16-bit) converted."""
    if im.mode == "RGB":
        return im
    if im.has_transparency_data:
        rgba = im.convert("RGBA")
        flat = PILImage.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits rather than clip everything above 255 to white.
        return im.point(lambda value: value / 256).convert("L").convert("RGB")
    return im.convert("RGB")


# Pillow's own default: reduce() by whole factors down to twice the target, then resample.
REDUCING_GAP = 2.0
# Modes whose resampling Pillow does on a premultiplied copy, and that copy's mode.
PREMULTIPLIED = {"RGBA": "RGBa", "LA": "La"}
# Rows converted to premultiplied form at a time when reducing such an image.
STRIP_BYTES = 4 * 1024 * 1024


def _reduce_premultiplied(im: PILImage.Image, factor: int) -> PILImage.Image:
    """`im` (RGBA or LA) reduced by `factor` with premultiplied alpha, one strip of rows at a time.

    The result is what Pillow's reduce() gives, but reduce() first converts the whole image to its
    premultiplied mode: a second full-size copy (another 256 MB for 8192x8192 RGBA). Strips keep it at a few MB.
    """
    width, height = im.size
    mode = PREMULTIPLIED[im.mode]
    out = PILImage.new(mode, (math.ceil(width / factor), math.ceil(height / factor)))
    rows = max(1, STRIP_BYTES // (width * 4 * factor)) * factor
    for top in range(0, height, rows):
        strip = im.crop((0, top, width, min(height, top + rows))).convert(mode)
        out.paste(strip.reduce(factor), (0, top // factor))
    small = out.convert(im.mode)
    small.info = dict(im.info)  # EXIF orientation, transparency
    return small


def thumbnail_jpeg(im: PILImage.Image) -> bytes:
    """A JPEG of at most THUMBNAIL_SIZE px a side from `im`, decoding it once (JPEG: at a reduced scale).

    Beside `im`'s own pixels only small images are made: `im` itself is reduced in place or by strips.
    """
    size = settings.THUMBNAIL_SIZE
    factor = int(max(im.size) / (size * REDUCING_GAP))
    if im.mode in PREMULTIPLIED and factor > 1:
        im.load()
        im = _reduce_premultiplied(im, factor)
    # thumbnail() asks JPEG for a draft at >= 2x the target (decoding at 1/2..1/8 scale), then
    # reduce()s by whole factors (a copy that size) before the final resample, replacing `im`'s pixels.
    im.thumbnail((size, size), PILImage.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
    out = io.BytesIO()
    _to_rgb(upright(im)).save(out, "JPEG", quality=THUMBNAIL_QUALITY)
    return out.getvalue()


# --- The decode budget ----------------------------------------------------------------------------

class DecodeBudget:
    """Bytes of decoded pixels this process may hold at once, shared by its threads, first come first served.

    Hand-written: the standard library's semaphores count one unit per acquire, and taking a large
    decode's megabytes one by one would let two decodes each hold part of the budget and wait for each
    other until both time out; no maintained library offers a weighted, thread-safe one with a timeout.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._in_use = 0
        self._queue: deque[object] = deque()

    @property
    def in_use(self) -> int:
        return self._in_use

    @contextmanager
    def reserve(self, nbytes: int, *, capacity: int, timeout: float) -> Iterator[None]:
        """Hold `nbytes` of `capacity` for the block; waits up to `timeout` s, then raises BusyError."""
        retry_after = max(1, math.ceil(timeout))
        details = {"needed_mb": _mb(nbytes), "budget_mb": _mb(capacity)}
        if nbytes > capacity:
            raise BusyError(
                f"Decoding this image needs {_mb(nbytes)} MB, more than the {_mb(capacity)} MB this server "
                "decodes at a time",
                retry_after=retry_after, temporary=False, details=details,
            )
        ticket = object()
        deadline = time.monotonic() + timeout
        with self._changed:
            self._queue.append(ticket)
            try:
                # In arrival order, so a large image is not starved by a stream of small ones.
                while self._queue[0] is not ticket or self._in_use + nbytes > capacity:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise BusyError(
                            f"The server is decoding other images; decoding this one needs {_mb(nbytes)} MB",
                            retry_after=retry_after, details=details,
                        )
                    self._changed.wait(remaining)
                self._in_use += nbytes
            finally:
                self._queue.remove(ticket)
                self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self._in_use -= nbytes
                self._changed.notify_all()


decode_budget = DecodeBudget()


def _pixel_bytes(mode: str) -> int:
    """Bytes a pixel of `mode` takes in Pillow's memory: 1, 2 or 4 for one band, 4 for every multi-band mode."""
    info = ImageMode.getmode(mode)
    if len(info.bands) > 1:
        return 4  # RGB is stored as RGBX, LA as LXXA, and so on
    return int(info.typestr[-1])


def decode_cost(im: PILImage.Image, *, full_size: tuple[int, int] | None = None) -> int:
    """Bytes the thumbnail of opened (not decoded) `im` needs at its current (JPEG: draft) size.

    The decoded pixels and the reduced copy (with the strips of a premultiplied reduction); an image too
    small to reduce is resampled whole, with alpha on a premultiplied copy. A progressive JPEG also keeps
    every DCT coefficient of the full-size image (2 bytes each) while it decodes.
    """
    width, height = im.size
    pixels = width * height * _pixel_bytes(im.mode)
    factor = int(max(width, height) / (settings.THUMBNAIL_SIZE * REDUCING_GAP))
    cost = pixels
    if factor > 1:
        cost += math.ceil(width / factor) * math.ceil(height / factor) * 4
        if im.mode in PREMULTIPLIED:
            cost += 3 * STRIP_BYTES
    elif im.mode in PREMULTIPLIED:
        cost += pixels
    if im.format == "JPEG" and (im.info.get("progressive") or im.info.get("progression")):
        full_width, full_height = full_size or im.size
        cost += full_width * full_height * 2 * _coefficient_planes(im)
    return cost


def _coefficient_planes(im: PILImage.Image) -> float:
    """Full-size planes of DCT coefficients a JPEG holds: each component at its own sampling (4:2:0 is 1.5)."""
    layers = getattr(im, "layer", None) or []
    if not layers:
        return float(len(im.getbands()))
    h_max = max(h for _, h, _, _ in layers)
    v_max = max(v for _, _, v, _ in layers)
    return sum((h / h_max) * (v / v_max) for _, h, v, _ in layers)


def _decode_thumbnail(fh: IO[bytes]) -> bytes:
    """The thumbnail of the image in `fh`, decoded within the process' decode budget."""
    fh.seek(0)
    with open_image(fh) as im:
        full_size = im.size
        # JPEG: decode at 1/2..1/8 scale, as thumbnail() would ask; the cost is that of the reduced size.
        im.draft(None, (int(settings.THUMBNAIL_SIZE * REDUCING_GAP),) * 2)
        budget = decode_budget.reserve(
            decode_cost(im, full_size=full_size),
            capacity=settings.IMAGE_DECODE_BUDGET_BYTES, timeout=settings.IMAGE_DECODE_WAIT_SECONDS,
        )
        with budget:
            try:
                return thumbnail_jpeg(im)
            except PILImage.DecompressionBombError as exc:
                raise _refuse(f"Refused as a possible decompression bomb: {exc}") from None
            except DECODE_ERRORS as exc:
                raise _refuse(f"The image data is corrupt or truncated: {exc}") from None
            finally:
                # The pixels go before the budget they were counted in is given back. Image.close frees
                # them; ImageFile.close would also close the caller's file.
                PILImage.Image.close(im)


def remove_files(names: Iterable[str]) -> None:
    """Delete stored files, logging (not raising) what cannot be deleted."""
    storage = Image._meta.get_field("file").storage
    for name in names:
        if name:
            try:
                storage.delete(name)
            except OSError:
                logger.warning("Could not remove %s", name, exc_info=True)


def image_intake(
    *,
    source: str | os.PathLike | IO[bytes],
    filename: str,
    source_kind: str,
    prompt: str = "",
    generation: Generation | None = None,
    batch_index: int | None = None,
    actor: Actor | None = None,
    refuse_duplicate: bool = False,
) -> Image:
    """Register a new pending image from a path or binary file: checks, hash, thumbnail, quality report.

    Raises InvalidInputError for oversized files, non-PNG/JPEG data, decompression bombs and corrupt data,
    with `refuse_duplicate` DuplicateImageError when the same bytes are already registered (found before
    decoding), and BusyError when the decode does not fit the process' decode budget in time.
    """
    if source_kind not in ImageSource.values:
        raise ValueError(f"Unknown image source {source_kind!r}")
    with _sized_source(source) as (fh, file_size):
        with open_image(fh) as im:
            facts = image_facts(im, file_size=file_size)
        sha256 = _stream_sha256(fh)
        if refuse_duplicate:
            # Before decoding: re-sending a registered file costs a read of its bytes, not a decode.
            _refuse_duplicate(sha256)
        thumbnail = _decode_thumbnail(fh)
        image = Image(
            status=ImageStatus.PENDING,
            source=source_kind,
            generation=generation,
            batch_index=batch_index,
            prompt=prompt,
            created_by=actor.user if actor else None,
        )
        stem = Path(filename).stem or "image"
        hashing = _HashingFile(fh, f"{stem}{EXTENSIONS[facts.format]}")
        image.file.save(hashing.name, hashing, save=False)
    try:
        if hashing.copied != file_size or hashing.sha256.hexdigest() != sha256:
            raise _refuse("The file changed while it was being read")
        image.thumbnail.save("thumbnail.jpg", ContentFile(thumbnail), save=False)
        _apply_facts(image, facts, sha256=sha256)
        with transaction.atomic():
            if refuse_duplicate:
                _refuse_duplicate(sha256)  # again: the same bytes may have been registered meanwhile
            image.save(force_insert=True)
            event_record(event_type=EventType.IMAGE_CREATED, data=_created_payload(image))
    except BaseException:
        remove_files([image.file.name, image.thumbnail.name])
        raise
    return image


def _stream_sha256(fh: IO[bytes]) -> str:
    fh.seek(0)
    digest = hashlib.sha256()
    while chunk := fh.read(CHUNK_SIZE):
        digest.update(chunk)
    return digest.hexdigest()


def _refuse_duplicate(sha256: str) -> None:
    if existing := image_find_duplicate(sha256=sha256):
        raise DuplicateImageError(
            f"This file is already registered as image {existing.id}",
            details={"existing_image_id": existing.id},
        )


def _apply_facts(image: Image, facts: ImageFacts, *, sha256: str) -> None:
    report = report_from_facts(facts)
    image.width, image.height = facts.width, facts.height
    image.dpi = facts.dpi
    image.format = facts.format
    image.color_mode = facts.color_mode
    image.file_size = facts.file_size
    image.sha256 = sha256
    image.quality = report
    image.quality_valid = report["valid"]
    image.quality_warnings = len(report["warnings"])


def _created_payload(image: Image) -> dict[str, Any]:
    return {
        "image_id": image.id,
        "status": image.status,
        "source": image.source,
        "generation_id": image.generation_id,
        "batch_index": image.batch_index,
        "prompt": image.prompt,
        "width": image.width,
        "height": image.height,
        "format": image.format,
        "sha256": image.sha256,
        "quality_valid": image.quality_valid,
    }


def stored_orphans(*, modified_before: datetime) -> list[str]:
    """Stored image and thumbnail files that no Image refers to, last written before `modified_before`.

    They are left by processes killed between writing the files and committing the row, or by a caller's
    transaction rolled back after intake; the age limit spares intakes still in flight.
    """
    storage = Image._meta.get_field("file").storage
    referenced = {name for pair in Image.objects.values_list("file", "thumbnail") for name in pair if name}
    return [
        name
        for top in STORED_DIRS
        for name in _walk(storage, top)
        if name not in referenced and storage.get_modified_time(name) < modified_before
    ]


def _walk(storage: Storage, top: str) -> Iterator[str]:
    try:
        dirs, files = storage.listdir(top)
    except FileNotFoundError:
        return
    for name in sorted(files):
        yield f"{top}/{name}"
    for name in sorted(dirs):
        yield from _walk(storage, f"{top}/{name}")


def image_find_duplicate(*, sha256: str) -> Image | None:
    """The earliest image with these exact bytes, if any."""
    return Image.objects.filter(sha256=sha256).order_by("created_at", "id").first()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, streamed."""
    with open(path, "rb") as fh:
        return _stream_sha256(fh)


# --- Optimisation ---------------------------------------------------------------------------------

NOT_OPTIMIZABLE = frozenset({ImageStatus.PUBLISHING, ImageStatus.PUBLISHED})


def fit_inside(width: int, height: int, box_width: int, box_height: int) -> tuple[int, int]:
    """The largest size with the aspect of width x height that fits in the box."""
    scale = min(box_width / width, box_height / height)
    return max(1, min(box_width, round(width * scale))), max(1, min(box_height, round(height * scale)))


def optimized_png(im: PILImage.Image, *, width: int, height: int) -> PILImage.Image:
    """`im` resized (aspect kept) to fit width x height, in a mode PNG stores (RGB, or RGBA if transparent)."""
    mode = "RGBA" if im.has_transparency_data else "RGB"
    im = upright(im)
    if im.mode != mode:
        im = _to_rgb(im) if mode == "RGB" else im.convert(mode)
    size = fit_inside(im.width, im.height, width, height)
    return im if im.size == size else im.resize(size, PILImage.Resampling.LANCZOS)


def _check_target(width: int, height: int) -> None:
    fields: dict[str, list[str]] = {}
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or value < 1:
            fields[name] = ["Must be a positive whole number of pixels"]
    if not fields and width * height > settings.IMAGE_MAX_PIXELS:
        fields["width"] = [f"{width}x{height} is over the limit of {settings.IMAGE_MAX_PIXELS} pixels"]
    if fields:
        raise InvalidInputError("Invalid optimisation target", fields=fields)


def image_optimize(*, image_id: str, actor: Actor, width: int = 4500, height: int = 5400) -> Image:
    """Resize the print file to fit width x height (aspect kept) as a 300 DPI PNG, replacing it.

    The sha256, facts, quality report and thumbnail are recomputed; refused once publishing started.
    """
    _check_target(width, height)
    image = Image.objects.filter(id=image_id).first()
    if image is None:
        raise NotFoundError(f"Image {image_id} not found", details={"image_id": image_id})
    if image.status in NOT_OPTIMIZABLE:
        raise InvalidStateError(f"Image {image_id}: cannot optimise an image that is {image.status}")
    try:
        with image.file.open("rb") as fh, open_image(fh, formats=None) as im:
            result = optimized_png(im, width=width, height=height)
    except FileNotFoundError:
        raise NotFoundError(f"Image {image_id} has no file on disk", details={"image_id": image_id}) from None
    except DECODE_ERRORS as exc:
        raise _refuse(f"The image data is corrupt or truncated: {exc}") from None
    buffer = io.BytesIO()
    result.save(buffer, "PNG", dpi=(OPTIMIZED_DPI, OPTIMIZED_DPI), compress_level=OPTIMIZE_COMPRESS_LEVEL)
    facts = ImageFacts(
        width=result.width,
        height=result.height,
        format="PNG",
        color_mode=result.mode,
        dpi=OPTIMIZED_DPI,
        has_transparency=result.mode == "RGBA",
        file_size=buffer.tell(),
    )
    sha256 = hashlib.sha256(buffer.getbuffer()).hexdigest()
    thumbnail = thumbnail_jpeg(result)
    old_names = [image.file.name, image.thumbnail.name]
    buffer.seek(0)
    image.file.save(f"{image.id}.png", File(buffer), save=False)
    try:
        image.thumbnail.save("thumbnail.jpg", ContentFile(thumbnail), save=False)
        with transaction.atomic():
            current = Image.objects.select_for_update().filter(id=image_id).values_list("status", flat=True).first()
            if current is None:
                raise NotFoundError(f"Image {image_id} not found", details={"image_id": image_id})
            if current in NOT_OPTIMIZABLE:
                raise InvalidStateError(f"Image {image_id}: cannot optimise an image that is {current}")
            replaced = {"file_size": image.file_size, "sha256": image.sha256, "width": image.width,
                        "height": image.height}
            _apply_facts(image, facts, sha256=sha256)
            image_file_replaced(
                image_id=image_id, actor=actor, old=replaced, note=f"optimised to {facts.width}x{facts.height}",
                new={"file_size": image.file_size, "sha256": sha256, "width": facts.width, "height": facts.height},
            )
            image.save(update_fields=[
                "file", "thumbnail", "width", "height", "dpi", "format", "color_mode", "file_size",
                "sha256", "quality", "quality_valid", "quality_warnings", "updated_at",
            ])
            transaction.on_commit(lambda: remove_files(old_names))
    except BaseException:
        remove_files([image.file.name, image.thumbnail.name])
        raise
    logger.info("Optimised %s to %sx%s for %s", image_id, facts.width, facts.height, actor.label)
    return image



# --- Prompts embedded by other tools --------------------------------------------------------------

PROMPT_MAX_CHARS = 2000
# Inputs that hold prompt text, and inputs that lead from a sampler/guider back to the text encoder.
TEXT_INPUTS = ("text", "t5xxl", "clip_l", "prompt")
LINK_INPUTS = ("positive", "conditioning", "guider")


def embedded_prompt(path: str | os.PathLike) -> str:
    """The prompt a generator stored in a PNG's text chunks (ComfyUI's graph, A1111's parameters), or ""."""
    try:
        with open(path, "rb") as fh, open_image(fh, formats=("PNG",)) as im:
            info = dict(im.info)
    except (InvalidInputError, OSError):
        return ""
    text = ""
    if isinstance(info.get("prompt"), str):
        try:
            graph = json.loads(info["prompt"])
        except ValueError:
            graph = None
        if isinstance(graph, dict):
            text = _comfyui_prompt(graph)
    if not text and isinstance(info.get("parameters"), str):
        # A1111: "<prompt>\nNegative prompt: …\nSteps: …"
        text = re.split(r"\n(?:Negative prompt:|Steps:)", info["parameters"], maxsplit=1)[0]
    return clean_text(text, fold_newlines=True)[:PROMPT_MAX_CHARS]


def _comfyui_prompt(graph: dict[str, Any]) -> str:
    """The positive prompt of a ComfyUI API-format graph: follow the sampler's conditioning to its text."""

    def inputs_of(node_id: object) -> dict[str, Any]:
        node = graph.get(str(node_id))
        inputs = node.get("inputs") if isinstance(node, dict) else None
        return inputs if isinstance(inputs, dict) else {}

    def text_of(node_id: object, depth: int = 0) -> str:
        inputs = inputs_of(node_id)
        for key in TEXT_INPUTS:
            if isinstance(inputs.get(key), str) and inputs[key].strip():
                return inputs[key]
        for key in LINK_INPUTS:
            link = inputs.get(key)
            if depth < 12 and isinstance(link, list) and link and (found := text_of(link[0], depth + 1)):
                return found
        return ""

    for node_id in graph:
        inputs = inputs_of(node_id)
        if isinstance(inputs.get("positive"), list) or isinstance(inputs.get("guider"), list):
            if found := text_of(node_id):
                return found
    return ""
