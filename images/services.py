"""Writes to the review queue and the generations' lifecycle.

Every image status change goes through `images_transition`, every generation status change through
`generation_transition`. The API, the admin, the management commands and the worker all call these
functions; none of them changes a status any other way. Each call is one transaction that updates the
rows, appends the history (`core.lifecycle`) and records the outbox events, set-wise for images (a
constant number of queries for 1 or 500 images).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from core import metrics
from core.actors import Actor
from core.batch import BatchNotAppliedError, BatchResult, Outcome, batch_event_data, unique_ids
from core.db.keyed import values_in
from core.db.pipeline import pipelined
from core.errors import InvalidStateError, NotFoundError
from core.lifecycle import CREATED, Lifecycle, Move
from images import relations
from images.models import (
    Generation,
    GenerationStatus,
    GenerationTransition,
    Image,
    ImageStatus,
    ImageTransition,
)
from webhooks.models import EventType
from webhooks.services import event_record, events_record

S = ImageStatus
# The lifecycle of CONTRACT §3: from-status → the statuses it may move to.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.APPROVED, S.REJECTED}),
    S.APPROVED: frozenset({S.PUBLISHING, S.PENDING}),
    S.REJECTED: frozenset({S.APPROVED, S.PENDING}),
    S.PUBLISHING: frozenset({S.PUBLISHED, S.FAILED}),
    S.FAILED: frozenset({S.PUBLISHING, S.PENDING}),
    # Another product for the same design (CONTRACT §3); a design's status sums up its products'.
    S.PUBLISHED: frozenset({S.PUBLISHING}),
}
IMAGE_LIFECYCLE = Lifecycle(subject="image", model=Image, history=ImageTransition, transitions=TRANSITIONS)
# The to-status of an image's last history row, written when it is deleted (the rows are kept).
DELETED = "deleted"
# Verb used in messages for a move to each status.
ACTION_NAMES = {
    S.PENDING: "reset",
    S.APPROVED: "approve",
    S.REJECTED: "reject",
    S.PUBLISHING: "publish",
    S.PUBLISHED: "mark published",
    S.FAILED: "mark failed",
    DELETED: "delete",
}
EVENTS = {S.APPROVED: EventType.IMAGE_APPROVED, S.REJECTED: EventType.IMAGE_REJECTED}
COUNTERS = {S.APPROVED: metrics.IMAGES_APPROVED, S.REJECTED: metrics.IMAGES_REJECTED}
# Deletable without `force`; with it also these. Images in or past publishing are never deleted.
DELETABLE = frozenset({S.PENDING, S.REJECTED})
DELETABLE_WITH_FORCE = DELETABLE | {S.APPROVED, S.FAILED}


def can_transition(from_status: str, to_status: str) -> bool:
    return IMAGE_LIFECYCLE.allows(from_status, to_status)


def _partition(
    ids: Sequence[str], found: dict[str, str], to_status: str, allowed: frozenset[str] | None = None
) -> tuple[BatchResult, list[tuple[str, str]]]:
    """Split ids into unknown (failed), refused (skipped) and movable (id, from_status) pairs."""
    result = BatchResult()
    movable: list[tuple[str, str]] = []
    verb = ACTION_NAMES.get(to_status, to_status)
    for image_id in ids:
        status = found.get(image_id)
        if status is None:
            result.fail(image_id, f"Image {image_id} not found")
        elif status == to_status and allowed is None:
            result.skip(image_id, Outcome.ALREADY_IN_STATE, f"already {status}")
        elif not (status in allowed if allowed is not None else can_transition(status, to_status)):
            result.skip(image_id, Outcome.INVALID_TRANSITION, f"cannot {verb} an image that is {status}")
        else:
            movable.append((image_id, status))
            result.successful.append(image_id)
    return result, movable


def images_transition(
    *,
    image_ids: Iterable[str],
    to_status: str,
    actor: Actor,
    note: str = "",
    atomic: bool = False,
    batch_action: str | None = None,
) -> BatchResult:
    """Move every listed image that may move to `to_status`; report the others.

    With `atomic`, nothing changes unless every image can move (`BatchNotAppliedError`). With
    `batch_action`, a `batch.completed` event is recorded with the counts.
    """
    ids = unique_ids(image_ids)
    # Pipelined: the lock (BEGIN sent with it); the update, history and events (numbered by their INSERT)
    # with COMMIT, answered at the block's end: two round trips to PostgreSQL, not one per statement
    # (nothing in here catches a database error; the counter's on_commit waits for the answer).
    with pipelined(), transaction.atomic():
        rows = values_in(Image, key="id", keys=ids, fields=("id", "status"), for_update=True)
        found = {row["id"]: row["status"] for row in rows}
        result, movable = _partition(ids, found, to_status)
        if atomic and not result.complete:
            raise BatchNotAppliedError(result)
        _apply(movable, to_status=to_status, actor=actor, note=note)
        if batch_action:
            event_record(event_type=EventType.BATCH_COMPLETED, data=batch_event_data(batch_action, result))
    return result


def _apply(movable: list[tuple[str, str]], *, to_status: str, actor: Actor, note: str) -> None:
    """Write the status, the history rows and the events for already-checked (id, from) pairs."""
    if not movable:
        return
    moved_ids = [image_id for image_id, _ in movable]
    now = timezone.now()
    label = actor.label
    Image.objects.filter(id__in=moved_ids).update(status=to_status, updated_at=now)
    IMAGE_LIFECYCLE.record(movable, to_status=to_status, actor=actor, note=note, at=now)
    if to_status in EVENTS:
        events_record(
            event_type=EVENTS[to_status],
            payloads=[
                {"image_id": image_id, "status": to_status, "previous_status": from_status,
                 "actor": label, "via": actor.via, "note": note}
                for image_id, from_status in movable
            ],
        )
    if to_status in COUNTERS:
        counter = COUNTERS[to_status]
        transaction.on_commit(lambda: counter.inc(len(moved_ids)))


def image_transition(*, image_id: str, to_status: str, actor: Actor, note: str = "") -> None:
    """Move one image; raise `NotFoundError` or `InvalidStateError` if it cannot move.

    Returns nothing: the callers know the id, and the API renders the row itself (no throw-away fetch).
    """
    result = images_transition(image_ids=[image_id], to_status=to_status, actor=actor, note=note)
    raise_for_single(result, image_id)


def raise_for_single(result: BatchResult, image_id: str) -> None:
    """Turn a one-image batch result into `NotFoundError` / `InvalidStateError`, as single-image actions answer."""
    if result.failed:
        raise NotFoundError(result.failed[0]["error"], details={"image_id": image_id})
    if result.skipped:
        entry = result.skipped[0]
        raise InvalidStateError(
            f"Image {image_id}: {entry['reason']}",
            details={"image_id": image_id, "reason": entry["reason"], "code": entry["code"]},
        )


def image_approve(*, image_id: str, actor: Actor, note: str = "") -> None:
    """Approve a pending (or previously rejected) image for publishing."""
    image_transition(image_id=image_id, to_status=S.APPROVED, actor=actor, note=note)


def image_reject(*, image_id: str, actor: Actor, reason: str = "") -> None:
    """Reject an image; the file is kept until `prune`."""
    image_transition(image_id=image_id, to_status=S.REJECTED, actor=actor, note=reason)


def image_reset(*, image_id: str, actor: Actor, note: str = "") -> None:
    """Put an approved, rejected or failed image back in the review queue."""
    image_transition(image_id=image_id, to_status=S.PENDING, actor=actor, note=note)


def images_approve(*, image_ids: Iterable[str], actor: Actor, note: str = "", atomic: bool = False) -> BatchResult:
    return images_transition(
        image_ids=image_ids, to_status=S.APPROVED, actor=actor, note=note, atomic=atomic, batch_action="approve"
    )


def images_reject(*, image_ids: Iterable[str], actor: Actor, reason: str = "", atomic: bool = False) -> BatchResult:
    return images_transition(
        image_ids=image_ids, to_status=S.REJECTED, actor=actor, note=reason, atomic=atomic, batch_action="reject"
    )


def images_reset(*, image_ids: Iterable[str], actor: Actor, atomic: bool = False) -> BatchResult:
    return images_transition(
        image_ids=image_ids, to_status=S.PENDING, actor=actor, atomic=atomic, batch_action="reset"
    )


def images_delete(
    *,
    image_ids: Iterable[str],
    actor: Actor,
    force: bool = False,
    atomic: bool = False,
    batch_action: str | None = None,
) -> BatchResult:
    """Delete images (rows and files) that are not in or past publishing; files go after commit."""
    ids = unique_ids(image_ids)
    allowed = DELETABLE_WITH_FORCE if force else DELETABLE
    with transaction.atomic():
        rows = values_in(Image, key="id", keys=ids, fields=("id", "status"), for_update=True)
        found = {row["id"]: row["status"] for row in rows}
        result, movable = _partition(ids, found, DELETED, allowed=allowed)
        for entry in result.skipped:
            if not force and found[entry["image_id"]] in DELETABLE_WITH_FORCE:
                entry["code"] = Outcome.NEEDS_FORCE
                entry["reason"] += " without force"
        # An image whose product exists on the platform is kept: deleting it would lose the external id.
        if kept := relations.delete_refusals([image_id for image_id, _ in movable]):
            movable = [pair for pair in movable if pair[0] not in kept]
            result.withdraw(kept, Outcome.HAS_LIVE_PRODUCT, kept)
        if atomic and not result.complete:
            raise BatchNotAppliedError(result)
        doomed = [image_id for image_id, _ in movable]
        files = list(Image.objects.filter(id__in=doomed).values_list("file", "thumbnail"))
        Image.objects.filter(id__in=doomed).delete()
        # The history stays (its rows have no database link to the image) and ends with who deleted it.
        IMAGE_LIFECYCLE.record(movable, to_status=DELETED, actor=actor)
        events_record(
            event_type=EventType.IMAGE_DELETED,
            payloads=[
                {"image_id": image_id, "previous_status": from_status, "actor": actor.label, "via": actor.via}
                for image_id, from_status in movable
            ],
        )
        if batch_action:
            event_record(event_type=EventType.BATCH_COMPLETED, data=batch_event_data(batch_action, result))
        transaction.on_commit(lambda: _remove_files(name for pair in files for name in pair))
    return result


def image_delete(*, image_id: str, actor: Actor, force: bool = False) -> None:
    """Delete one image; refused (`InvalidStateError`) once it is being or has been published."""
    raise_for_single(images_delete(image_ids=[image_id], actor=actor, force=force), image_id)


def _remove_files(names: Iterable[str]) -> None:
    storage = Image._meta.get_field("file").storage
    for name in names:
        if name:
            storage.delete(name)


def image_file_replaced(
    *, image_id: str, actor: Actor, old: Mapping[str, Any], new: Mapping[str, Any], note: str
) -> None:
    """Record that an image's print file was replaced (e.g. optimised): a history row with both files' facts.

    Called inside the transaction that stores the new file; the status does not change.
    """
    status = Image.objects.values_list("status", flat=True).get(id=image_id)
    IMAGE_LIFECYCLE.record(
        [(image_id, status)], to_status=status, actor=actor, note=note, details={"old": dict(old), "new": dict(new)}
    )


# --- Generations ---------------------------------------------------------------------------------

G = GenerationStatus
# CONTRACT §3: queued → running → completed | failed | cancelled; a queued generation may be cancelled.
GENERATION_TRANSITIONS: dict[str, frozenset[str]] = {
    G.QUEUED: frozenset({G.RUNNING, G.CANCELLED}),
    G.RUNNING: frozenset({G.COMPLETED, G.FAILED, G.CANCELLED}),
    G.COMPLETED: frozenset(),
    G.FAILED: frozenset(),
    G.CANCELLED: frozenset(),
}
GENERATION_LIFECYCLE = Lifecycle(
    subject="generation", model=Generation, history=GenerationTransition, transitions=GENERATION_TRANSITIONS
)
GENERATION_EVENTS = {
    G.RUNNING: EventType.GENERATION_STARTED,
    G.COMPLETED: EventType.GENERATION_COMPLETED,
    G.FAILED: EventType.GENERATION_FAILED,
    G.CANCELLED: EventType.GENERATION_CANCELLED,
}


def generation_created(*, generation: Generation, actor: Actor) -> None:
    """The first history row of a just-created (queued) generation."""
    GENERATION_LIFECYCLE.record([(generation.id, CREATED)], to_status=generation.status, actor=actor)


def generation_transition(
    *,
    generation_id: str,
    to_status: str,
    actor: Actor,
    note: str = "",
    fields: Mapping[str, Any] | None = None,
    event_data: Mapping[str, Any] | None = None,
) -> Move:
    """Move a generation (row locked) along its transition table, with its history row and outbox event.

    `fields` are written with the status; `event_data` is the event's data besides `generation_id`.
    Moving to the status it already has changes only `fields` (no history, no event); a refused move
    raises `InvalidStateError` and changes nothing.
    """
    with transaction.atomic():
        move = GENERATION_LIFECYCLE.move(
            object_id=generation_id, to_status=to_status, actor=actor, note=note, fields=fields
        )
        if move.moved and to_status in GENERATION_EVENTS:
            event_record(
                event_type=GENERATION_EVENTS[to_status],
                data={"generation_id": generation_id, **(event_data or {})},
            )
    return move
