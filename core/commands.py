"""Helpers the management commands of every app share: who acts, and how a batch result is printed."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.actors import Actor, Via
from core.batch import BatchResult


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
    for entry in result.skipped:
        command.stdout.write(f"skipped {entry['image_id']}: {entry['reason']}")
    for entry in result.failed:
        command.stdout.write(f"failed {entry['image_id']}: {entry['error']}")
    counts = result.as_dict()["counts"]
    command.stdout.write(
        f"{done.capitalize()} {counts['successful']}, skipped {counts['skipped']}, "
        f"failed {counts['failed']} of {counts['total']}"
    )
    if refused := result.refused:
        raise CommandError(f"{len(refused)} image(s) could not be {verb}")
