"""`manage.py approve ID… | --generation G | --all-pending [--note N] [--as USERNAME]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.commands import command_actor, write_batch_result
from images.models import Generation
from images.selectors import image_pending_ids
from images.services import images_approve


class Command(BaseCommand):
    help = "Approve pending images by id, all pending images of a generation, or all pending images"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("image_ids", nargs="*", metavar="ID")
        parser.add_argument("--generation", metavar="G", help="Approve the pending images of generation G")
        parser.add_argument("--all-pending", action="store_true", help="Approve every pending image")
        parser.add_argument("--note", default="", help="Recorded in each image's history")
        parser.add_argument("--as", dest="as_user", metavar="USERNAME", help="Act as this user (default: system)")

    def handle(self, *args: Any, **options: Any) -> None:
        chosen = [bool(options["image_ids"]), bool(options["generation"]), options["all_pending"]]
        if sum(chosen) != 1:
            raise CommandError("Give image ids, or --generation G, or --all-pending (exactly one of them)")
        actor = command_actor(options["as_user"])
        if options["generation"]:
            if not Generation.objects.filter(id=options["generation"]).exists():
                raise CommandError(f"Generation {options['generation']} not found")
            image_ids = image_pending_ids(generation_id=options["generation"])
        elif options["all_pending"]:
            image_ids = image_pending_ids()
        else:
            image_ids = options["image_ids"]
        if not image_ids:
            self.stdout.write("No pending images to approve")
            return
        result = images_approve(image_ids=image_ids, actor=actor, note=options["note"])
        write_batch_result(self, result, done="approved", verb="approved")
