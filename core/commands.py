"""What the management commands of every app share: who acts, how a batch result is printed, progress."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, OutputWrapper
from tqdm import tqdm

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


class _RawStream:
    """A command's output stream as tqdm writes to it: text as given, no line ending added (tqdm uses \\r)."""

    def __init__(self, wrapper: OutputWrapper) -> None:
        self.wrapper = wrapper

    def write(self, text: str) -> None:
        self.wrapper.write(text, ending="")

    def flush(self) -> None:
        self.wrapper.flush()


class Progress:
    """Progress of one long command: a bar on a terminal, plain lines elsewhere (logs, pipes, cron mail).

    The bar (tqdm) is drawn on stderr when stderr is a terminal. `write` prints a result line on stdout
    (above the bar on a terminal); `advance` moves the bar; `show` sets it to `done` of `total` with a
    status, and off a terminal prints that as a line on stderr whenever it changes, so a waiting
    command still says what it waits for.
    """

    def __init__(self, command: BaseCommand, *, label: str, total: int | None, unit: str) -> None:
        self.command = command
        self.label = label
        self.total = total
        self._shown: tuple[int, str] | None = None
        self.bar: tqdm | None = None
        if command.stderr.isatty():
            self.bar = tqdm(
                desc=label, total=total, unit=f" {unit}", file=_RawStream(command.stderr),
                dynamic_ncols=True, leave=True, mininterval=0.2,
            )

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.clear()
            self.command.stdout.write(line)
            self.bar.refresh()
        else:
            self.command.stdout.write(line)

    def advance(self, count: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(count)

    def show(self, done: int, status: str = "") -> None:
        if self.bar is not None:
            self.bar.n = done
            self.bar.set_postfix_str(status, refresh=False)
            self.bar.refresh()
        elif (done, status) != self._shown:
            of = f"/{self.total}" if self.total is not None else ""
            self.command.stderr.write(f"{self.label}: {done}{of}{' ' + status if status else ''}")
        self._shown = (done, status)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextmanager
def progress(command: BaseCommand, *, label: str, total: int | None = None, unit: str = "item") -> Iterator[Progress]:
    """A `Progress` for `command`'s long work, closed (the bar finished) when the block ends."""
    tracker = Progress(command, label=label, total=total, unit=unit)
    try:
        yield tracker
    finally:
        tracker.close()
