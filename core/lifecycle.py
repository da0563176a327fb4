"""One transition table per stateful model, checked and recorded the same way for every one of them.

A `Lifecycle` names the model, its history model (a `core.models.StatusChange`) and the table
from-status → the statuses it may move to. Each app's `*_transition` service moves its objects with
`move` (one object, row locked) or checks with `allows` and writes the history set-wise with
`record`, and records its own outbox events in the same transaction; this module knows no app.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from core.actors import Actor
from core.db.bulk import insert_rows
from core.errors import InvalidStateError, NotFoundError
from core.models import StatusChange

# The from-status of the row that records an object's creation.
CREATED = ""


@dataclass(frozen=True)
class Move:
    """What `Lifecycle.move` did: the locked row as it is now, the status it left, and whether it moved."""

    obj: Any
    from_status: str
    moved: bool


@dataclass(frozen=True)
class Lifecycle:
    subject: str  # "image", "generation", "product": the history's key is `<subject>_id`
    model: type[models.Model]
    history: type[StatusChange]
    transitions: Mapping[str, frozenset[str]]

    def allows(self, from_status: str, to_status: str) -> bool:
        return to_status in self.transitions.get(from_status, frozenset())

    def refusal(self, object_id: str, from_status: str, to_status: str) -> InvalidStateError:
        return InvalidStateError(
            f"{self.subject.capitalize()} {object_id} is {from_status}; it cannot become {to_status}",
            details={f"{self.subject}_id": object_id, "status": from_status, "to_status": to_status},
        )

    def record(
        self,
        moves: Sequence[tuple[str, str]],
        *,
        to_status: str,
        actor: Actor,
        note: str = "",
        details: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> None:
        """Append one history row per (object id, from-status), in one INSERT; the caller checked the moves."""
        if not moves:
            return
        insert_rows(
            self.history,
            fields=[f"{self.subject}_id", "from_status"],
            rows=moves,
            constants={"to_status": to_status, "actor_id": actor.user_id, "actor_label": actor.label,
                       "via": actor.via, "note": note, "details": details or {}, "created_at": at or timezone.now()},
        )

    def move(
        self,
        *,
        object_id: str,
        to_status: str,
        actor: Actor,
        note: str = "",
        details: dict[str, Any] | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> Move:
        """Move one object (row locked) to `to_status`, setting `fields` too, and record the history row.

        Already in `to_status`: only `fields` are written, no history (a resumed worker repeats a move
        harmlessly). Refused moves raise `InvalidStateError` and change nothing; unknown ids `NotFoundError`.
        """
        with transaction.atomic():
            obj = self.model.objects.select_for_update().filter(pk=object_id).first()
            if obj is None:
                raise NotFoundError(f"{self.subject.capitalize()} {object_id} not found",
                                    details={f"{self.subject}_id": object_id})
            from_status = obj.status
            moved = from_status != to_status
            if moved and not self.allows(from_status, to_status):
                raise self.refusal(object_id, from_status, to_status)
            changed = dict(fields or {})
            if moved:
                changed["status"] = to_status
            for name, value in changed.items():
                setattr(obj, name, value)
            if changed:
                # `auto_now` fields are only written when named.
                auto_now = [f.name for f in self.model._meta.concrete_fields if getattr(f, "auto_now", False)]
                obj.save(update_fields=[*changed, *auto_now])
            if moved:
                self.record([(obj.pk, from_status)], to_status=to_status, actor=actor, note=note, details=details)
        return Move(obj=obj, from_status=from_status, moved=moved)
