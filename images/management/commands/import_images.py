"""`manage.py import_images DIR`: register PNG/JPEG files (e.g. a ComfyUI output folder) as pending images.

Idempotent by sha256: a file whose bytes are already in the review queue is skipped, so running it twice
imports nothing new, and a duplicate is found by its hash before it is decoded. Oversized files, non-images,
decompression bombs, corrupt files and images too large to decode within IMAGE_DECODE_BUDGET_MB are skipped
with the reason; the rest are imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.commands import Progress, command_actor
from core.errors import BusyError, DuplicateImageError, InvalidInputError
from core.text import clean_text
from images.intake import embedded_prompt, file_sha256, image_intake
from images.models import Image, ImageSource


class Command(BaseCommand):
    help = "Register the PNG/JPEG files in DIR as pending images (skipping duplicates and bad files)"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", metavar="DIR")
        parser.add_argument("--recursive", action="store_true", help="Also import from subdirectories")
        parser.add_argument(
            "--prompt", default="",
            help="Prompt recorded on every imported image (default: the prompt ComfyUI/A1111 embedded in the PNG)",
        )
        parser.add_argument("--as", dest="as_user", metavar="USERNAME", help="Record this user as the importer")

    def handle(self, *args: Any, **options: Any) -> None:
        directory = Path(options["directory"]).expanduser()
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a directory")
        actor = command_actor(options["as_user"])
        prompt = clean_text(options["prompt"], fold_newlines=True)
        pattern = "**/*" if options["recursive"] else "*"
        paths = sorted(path for path in directory.glob(pattern) if path.is_file())

        limit = settings.IMAGE_MAX_BYTES
        hashes: dict[Path, str] = {}
        skipped = invalid = 0
        self.bar = Progress(self, label="Reading", total=len(paths), unit="file")
        for path in paths:
            self.bar.advance()
            try:
                size = path.stat().st_size
                if size <= limit:
                    hashes[path] = file_sha256(path)
            except OSError as exc:
                self._skip(directory, path, f"cannot read it ({exc.strerror})")
                skipped += 1
                invalid += 1
                continue
            if size > limit:
                # Refused on its size alone: not a byte of it is read.
                self._skip(directory, path, f"too large ({size / 2**20:.1f} MB, limit {limit / 2**20:.0f} MB)")
                skipped += 1
                invalid += 1
        self.bar.close()
        known = _known_hashes(list(set(hashes.values())))
        imported = 0
        self.bar = Progress(self, label="Importing", total=len(hashes), unit="image")
        for path, sha256 in hashes.items():
            self.bar.advance()
            if sha256 in known:
                self._skip(directory, path, f"duplicate of {known[sha256]}")
                skipped += 1
                continue
            try:
                image = image_intake(
                    source=path, filename=path.name, source_kind=ImageSource.IMPORTED,
                    prompt=prompt or embedded_prompt(path), actor=actor, refuse_duplicate=True,
                )
            except DuplicateImageError as exc:
                # Registered by someone else since the look-up above (e.g. another import running).
                self._skip(directory, path, f"duplicate of {exc.details['existing_image_id']}")
                skipped += 1
                continue
            except (InvalidInputError, BusyError) as exc:
                # BusyError: an image too large for IMAGE_DECODE_BUDGET_MB (this process decodes nothing else).
                self._skip(directory, path, exc.message)
                skipped += 1
                invalid += 1
                continue
            except OSError as exc:
                raise CommandError(
                    f"Could not store {path.relative_to(directory)}: {exc.strerror or exc}"
                    f" (imported {imported} before it)"
                ) from None
            known[image.sha256] = image.id
            imported += 1
            self.bar.write(f"imported {path.relative_to(directory)} -> {image.id} ({_quality_note(image)})")
        self.bar.close()
        self.stdout.write(
            f"Imported {imported}, skipped {skipped} ({skipped - invalid} duplicate(s), {invalid} invalid)"
            f" of {len(paths)} file(s) in {directory}"
        )

    def _skip(self, directory: Path, path: Path, reason: str) -> None:
        self.bar.write(f"skipped {path.relative_to(directory)}: {reason}")


def _known_hashes(hashes: list[str], batch: int = 500) -> dict[str, str]:
    """sha256 → id of the earliest image with those bytes; in batches (SQLite caps query parameters)."""
    known: dict[str, str] = {}
    for start in range(0, len(hashes), batch):
        rows = Image.objects.filter(sha256__in=hashes[start:start + batch]).order_by("-created_at", "-id")
        known.update(rows.values_list("sha256", "id"))
    return known


def _quality_note(image: Image) -> str:
    size = f"{image.width}x{image.height} {image.format}"
    if not image.quality_valid:
        return f"{size}, quality: {'; '.join(image.quality.get('errors', []))}"
    if image.quality_warnings:
        return f"{size}, {image.quality_warnings} quality warning(s)"
    return f"{size}, quality ok"
