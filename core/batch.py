"""The outcome of a set-wise action: which ids changed, which were refused and why, as codes and sentences.

Callers branch on `code`, never on the sentence: the API returns both, the admin and the commands
pick their own wording for a code where they need to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from core.errors import DomainError

# The most ids one batch call takes (API, admin bulk actions, commands split larger sets).
MAX_BATCH_IDS = 500


class Outcome(StrEnum):
    """Why an id was not changed. `NOT_FOUND` ids are `failed`; the others are `skipped`."""

    NOT_FOUND = "not_found"
    ALREADY_IN_STATE = "already_in_state"
    INVALID_TRANSITION = "invalid_transition"
    NEEDS_FORCE = "needs_force"
    HAS_LIVE_PRODUCT = "has_live_product"


# Outcomes that mean "nothing to do" rather than "refused": a command does not fail on them.
HARMLESS = frozenset({Outcome.ALREADY_IN_STATE})


@dataclass
class BatchResult:
    """Per-id outcome of a set-wise action, in the shape of the batch endpoints.

    `failed` entries are `{image_id, error, code}` with the API error code (`NOT_FOUND`); `skipped`
    entries are `{image_id, reason, code}` with an `Outcome` code.
    """

    successful: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.failed and not self.skipped

    def fail(self, image_id: str, error: str) -> None:
        self.failed.append({"image_id": image_id, "error": error, "code": "NOT_FOUND"})

    def skip(self, image_id: str, code: Outcome, reason: str) -> None:
        self.skipped.append({"image_id": image_id, "reason": reason, "code": str(code)})

    def withdraw(self, image_ids: Iterable[str], code: Outcome, reasons: dict[str, str]) -> None:
        """Move ids counted as successful to skipped, each with its reason."""
        doomed = list(dict.fromkeys(image_ids))
        self.successful = [image_id for image_id in self.successful if image_id not in set(doomed)]
        for image_id in doomed:
            self.skip(image_id, code, reasons[image_id])

    @property
    def refused(self) -> list[str]:
        """Ids that could not be changed for a reason other than already being as asked."""
        return [e["image_id"] for e in self.failed] + [
            e["image_id"] for e in self.skipped if e["code"] not in HARMLESS
        ]

    def as_dict(self) -> dict[str, Any]:
        counts = {
            "successful": len(self.successful),
            "failed": len(self.failed),
            "skipped": len(self.skipped),
        }
        counts["total"] = sum(counts.values())
        return {"successful": self.successful, "failed": self.failed, "skipped": self.skipped, "counts": counts}


def batch_event_data(action: str, result: BatchResult) -> dict[str, Any]:
    """The `batch.completed` event's data: the action, the id lists and the counts (no sentences)."""
    body = result.as_dict()
    return {
        "action": action,
        "successful": list(result.successful),
        "failed": [entry["image_id"] for entry in result.failed],
        "skipped": [entry["image_id"] for entry in result.skipped],
        "counts": body["counts"],
    }


class BatchNotAppliedError(DomainError):
    """An atomic batch in which some id could not be changed; nothing was changed."""

    code = "CONFLICT"

    def __init__(self, result: BatchResult) -> None:
        super().__init__("The batch was not applied: not every image could be changed", details=result.as_dict())
        self.result = result


def unique_ids(ids: Iterable[str]) -> list[str]:
    """The ids as strings, first occurrence kept, order kept."""
    return list(dict.fromkeys(str(i) for i in ids))
