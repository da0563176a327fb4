"""`manage.py reject ID… [--reason R] [--as USERNAME]` (the files stay; `prune` removes old rejected images)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from core.commands import command_actor, write_batch_result
from images.services import images_reject


class Command(BaseCommand):
    help = "Reject images by id"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("image_ids", nargs="+", metavar="ID")
        parser.add_argument("--reason", default="", help="Recorded in each image's history")
        parser.add_argument("--as", dest="as_user", metavar="USERNAME", help="Act as this user (default: system)")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = command_actor(options["as_user"])
        result = images_reject(image_ids=options["image_ids"], actor=actor, reason=options["reason"])
        write_batch_result(self, result, done="rejected", verb="rejected")
