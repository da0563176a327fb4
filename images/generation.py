"""Starting and cancelling generations. The pictures are made by the worker (`images.tasks`), never here."""

from __future__ import annotations

import secrets
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from core.actors import Actor
from core.errors import DuplicatePromptError, InvalidStateError, NotFoundError
from core.logging import current_request_id
from images.models import Generation, GenerationStatus
from images.services import generation_created, generation_transition
from images.tasks import generation_run
from images.validation import SEED_MAX, prompt_hash

FINISHED = frozenset({GenerationStatus.COMPLETED, GenerationStatus.FAILED, GenerationStatus.CANCELLED})
# A prompt only counts as a duplicate of a generation that did (or may still) produce images.
DUPLICATE_OF = (GenerationStatus.QUEUED, GenerationStatus.RUNNING, GenerationStatus.COMPLETED)


def _current_request_id() -> str:
    return current_request_id() or ""


def generation_create(*, data: dict[str, Any], actor: Actor, request_id: str | None = None) -> Generation:
    """Record a queued generation and enqueue its worker task in the same transaction.

    `data` is GenerateInputSerializer.validated_data. Raises DuplicatePromptError when an earlier
    generation has the same prompt hash, unless `allow_duplicate`.
    """
    digest = prompt_hash(
        prompt=data["prompt"],
        width=data["width"],
        height=data["height"],
        steps=data["steps"],
        guidance=data["guidance"],
        seed=data.get("seed"),
    )
    # Without a given seed one is drawn now and kept, so a resumed run draws the same pictures.
    seed = data.get("seed")
    params = {
        "width": data["width"],
        "height": data["height"],
        "steps": data["steps"],
        "guidance": data["guidance"],
        "seed": seed if seed is not None else secrets.randbelow(SEED_MAX + 1),
        "seed_given": seed is not None,
        "batch_size": data["batch_size"],
    }
    with transaction.atomic():
        if not data.get("allow_duplicate"):
            existing = (
                Generation.objects.filter(prompt_hash=digest, status__in=DUPLICATE_OF)
                .order_by("created_at")
                .values_list("id", flat=True)
                .first()
            )
            if existing:
                raise DuplicatePromptError(
                    f"The same prompt and parameters were already generated in {existing}; "
                    "send allow_duplicate to generate again",
                    details={"existing_generation_id": existing},
                )
        generation = Generation.objects.create(
            prompt=data["prompt"],
            negative_prompt=data.get("negative_prompt", ""),
            style=data.get("style", ""),
            genre=data.get("genre", ""),
            backend=data["backend"],
            params=params,
            prompt_hash=digest,
            request_id=(request_id or _current_request_id())[:128],
            created_by=actor.user,
        )
        generation_created(generation=generation, actor=actor)
        # The database task backend writes the task row in this same transaction: both or neither.
        generation_run.enqueue(generation_id=generation.id)
    return generation


# Who may read and cancel every generation, not only their own (CONTRACT §4 "Ownership"): reviewers and above.
SEE_ALL_GENERATIONS = "images.review_image"


def generations_of(actor: Actor) -> QuerySet[Generation]:
    """The generations `actor` may see and cancel: a client's own; every one for reviewers, superusers, the system."""
    generations = Generation.objects.all()
    if sees_every_generation(actor):
        return generations
    return generations.filter(created_by_id=actor.user_id)


def sees_every_generation(actor: Actor) -> bool:
    """Whether `generations_of(actor)` is every generation (reviewers, superusers, the system)."""
    return actor.user is None or actor.user.has_perm(SEE_ALL_GENERATIONS)


def generation_cancel(*, generation_id: str, actor: Actor) -> Generation:
    """Cancel a queued or running generation (`generation.cancelled`); the worker stops its remote jobs.

    Refused once finished.
    """
    with transaction.atomic():
        # Another client's generation is "not found", exactly like one that does not exist.
        generation = generations_of(actor).select_for_update().filter(id=generation_id).first()
        if generation is None:
            raise NotFoundError(f"Generation {generation_id} not found", details={"generation_id": generation_id})
        if generation.status in FINISHED:
            raise InvalidStateError(
                f"Generation {generation_id} is already {generation.status}",
                details={"generation_id": generation_id, "status": generation.status},
            )
        move = generation_transition(
            generation_id=generation_id,
            to_status=GenerationStatus.CANCELLED,
            actor=actor,
            fields={"finished_at": timezone.now(), "error": f"Cancelled by {actor.label}"},
            event_data={"actor": actor.label, "via": actor.via},
        )
    return move.obj
