"""`manage.py approve ID… | --generation G | --all-pending [--note N] [--as USERNAME]`."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from images.models import Generation, Image, ImageStatus, Via
from images.services import Actor, BatchResult, images_approve


def command_actor(username: str | None) -> Actor:
    """The actor for `--as USERNAME` (which must exist), else the system acting through a command."""
    if not username:
        return Actor(None, Via.COMMAND)
    User = get_user_model()
    user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
    if user is None:
        raise CommandError(f"User {username!r} not found")
    return Actor(user, Via.COMMAND)


def write_batch_result(command: BaseCommand, result: BatchResult, *, done: str, verb: str) -> None:
    """Print one line per image and a summary; raise CommandError if any image could not be changed.

    An image already in the target state is no failure; an unknown id or a refused transition is.
    """
    for image_id in result.successful:
        command.stdout.write(f"{done} {image_id}")
    refused = []
    for entry in result.skipped:
        command.stdout.write(f"skipped {entry['image_id']}: {entry['reason']}")
        if not entry["reason"].startswith("already "):
            refused.append(entry["image_id"])
    for entry in result.failed:
        command.stdout.write(f"failed {entry['image_id']}: {entry['error']}")
    counts = result.as_dict()["counts"]
    command.stdout.write(
        f"{done.capitalize()} {counts['successful']}, skipped {counts['skipped']}, "
        f"failed {counts['failed']} of {counts['total']}"
    )
    if result.failed or refused:
        raise CommandError(f"{len(result.failed) + len(refused)} image(s) could not be {verb}")


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
        pending = Image.objects.filter(status=ImageStatus.PENDING).order_by("created_at", "id")
        if options["generation"]:
            if not Generation.objects.filter(id=options["generation"]).exists():
                raise CommandError(f"Generation {options['generation']} not found")
            image_ids = list(pending.filter(generation_id=options["generation"]).values_list("id", flat=True))
        elif options["all_pending"]:
            image_ids = list(pending.values_list("id", flat=True))
        else:
            image_ids = options["image_ids"]
        if not image_ids:
            self.stdout.write("No pending images to approve")
            return
        result = images_approve(image_ids=image_ids, actor=actor, note=options["note"])
        write_batch_result(self, result, done="approved", verb="approved")
