"""`manage.py optimize_images [ID…] [--all-pending] [--width W --height H]`: print-ready 300 DPI PNGs."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.commands import Progress, command_actor
from core.errors import DomainError
from images.intake import image_optimize
from images.models import Image
from images.selectors import image_pending_ids


class Command(BaseCommand):
    help = "Resize images to fit the print size (aspect kept) as 300 DPI PNGs, replacing their files"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("image_ids", nargs="*", metavar="ID")
        parser.add_argument("--all-pending", action="store_true", help="Optimise every pending image")
        parser.add_argument("--width", type=int, default=4500)
        parser.add_argument("--height", type=int, default=5400)
        parser.add_argument("--as", dest="as_user", metavar="USERNAME", help="Act as this user (default: system)")

    def handle(self, *args: Any, **options: Any) -> None:
        if bool(options["image_ids"]) == options["all_pending"]:
            raise CommandError("Give image ids or --all-pending (one of them)")
        actor = command_actor(options["as_user"])
        if options["all_pending"]:
            image_ids = image_pending_ids()
        else:
            image_ids = list(dict.fromkeys(options["image_ids"]))
        sizes = {
            image_id: f"{width}x{height}"
            for image_id, width, height in Image.objects.filter(id__in=image_ids).values_list("id", "width", "height")
        }
        failed = 0
        bar = Progress(self, label="Optimising", total=len(image_ids), unit="image")
        for image_id in image_ids:
            bar.advance()
            try:
                image = image_optimize(
                    image_id=image_id, actor=actor, width=options["width"], height=options["height"]
                )
            except DomainError as exc:
                failed += 1
                bar.write(f"failed {image_id}: {exc.message}{_fields(exc)}")
                continue
            bar.write(
                f"optimised {image_id}: {sizes[image_id]} -> {image.width}x{image.height} PNG {image.dpi} DPI"
            )
        bar.close()
        self.stdout.write(f"Optimised {len(image_ids) - failed} of {len(image_ids)} image(s)")
        if failed:
            raise CommandError(f"{failed} image(s) could not be optimised")


def _fields(exc: DomainError) -> str:
    fields = exc.details.get("fields") or {}
    return "".join(f" ({name}: {' '.join(messages)})" for name, messages in fields.items())
