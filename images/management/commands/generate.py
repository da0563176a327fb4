"""`manage.py generate PROMPT [...]`: validate, queue a generation, optionally wait for its images."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tasks_db.models import DBTaskResult

from api.fields import TEXT_INPUT
from core.actors import Actor, Via
from core.commands import Progress
from core.errors import DuplicatePromptError
from core.worker import task_run_here, tasks_requeue_stale, worker_alive
from images.generation import FINISHED, generation_create
from images.models import Generation, GenerationStatus, Image
from images.tasks import generation_run
from images.validation import GenerateInputSerializer

# Options passed through to GenerateInputSerializer as strings, so it (not argparse) names the field.
FIELDS = ("batch_size", "width", "height", "steps", "guidance", "seed", "backend", "style", "genre", "negative_prompt")


def format_errors(errors: Any, prefix: str = "") -> list[str]:
    if isinstance(errors, dict):
        return [line for key, value in errors.items() for line in format_errors(value, f"{prefix}{key}: ")]
    if isinstance(errors, list):
        return [line for value in errors for line in format_errors(value, prefix)]
    return [f"{prefix}{errors}"]


class Command(BaseCommand):
    help = "Queue a generation (validated like POST generate); with --wait, wait for it and print the image ids"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prompt")
        for name in FIELDS:
            parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None)
        parser.add_argument("--allow-duplicate", action="store_true", help="Generate even if the prompt was seen")
        parser.add_argument("--wait", action="store_true", help="Wait until the generation has finished")
        parser.add_argument("--timeout", type=float, default=3600.0, help="Seconds --wait waits at most")

    def handle(self, *args: Any, **options: Any) -> None:
        data = {name: options[name] for name in FIELDS if options[name] is not None}
        data["prompt"] = options["prompt"]
        data["allow_duplicate"] = options["allow_duplicate"]
        serializer = GenerateInputSerializer(data=data, context={TEXT_INPUT: True})
        if not serializer.is_valid():
            raise CommandError("Invalid input:\n  " + "\n  ".join(format_errors(serializer.errors)))
        try:
            generation = generation_create(data=serializer.validated_data, actor=Actor(None, Via.COMMAND))
        except DuplicatePromptError as exc:
            existing = exc.details["existing_generation_id"]
            raise CommandError(
                f"The same prompt and parameters were already generated in {existing}; "
                "add --allow-duplicate to generate again"
            ) from exc
        self.stdout.write(generation.id)
        if options["wait"]:
            self.wait(generation, timeout=options["timeout"])

    def wait(self, generation: Generation, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        bar = Progress(self, label=f"Generating {generation.id}", total=generation.batch_size, unit="image")
        while True:
            generation.refresh_from_db()
            bar.show(Image.objects.filter(generation=generation).count(), generation.status)
            if generation.status in FINISHED:
                break
            if time.monotonic() > deadline:
                bar.close()
                raise CommandError(f"Gave up waiting after {timeout:g}s; {generation.id} is {generation.status}")
            if not worker_alive():
                # A worker killed while running it left the task RUNNING, and no worker is left to
                # requeue it: do what a worker's heartbeat would, then run it here as a worker would.
                tasks_requeue_stale()
                task_id = self._ready_task(generation.id)
                if task_id is not None:
                    task_run_here(task_id=task_id)
                    continue
            time.sleep(0.5)
        bar.close()
        images = Image.objects.filter(generation=generation).order_by("batch_index")
        image_ids = list(images.values_list("id", flat=True))
        summary = f"{generation.id} {generation.status}: {len(image_ids)} image(s), {generation.failed_count} failed"
        if generation.error:
            summary += f" ({generation.error})"
        self.stderr.write(summary)
        for image_id in image_ids:
            self.stdout.write(image_id)
        if generation.status != GenerationStatus.COMPLETED:
            raise CommandError(f"Generation {generation.id} {generation.status}")

    @staticmethod
    def _ready_task(generation_id: str) -> Any:
        return (
            DBTaskResult.objects.ready()
            .filter(task_path=generation_run.module_path, args_kwargs__kwargs__generation_id=generation_id)
            .values_list("id", flat=True)
            .first()
        )
