"""Domain errors raised by services; the API, the admin and the commands turn them into messages."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refused action. `code` is the API error code, `status` its HTTP status."""

    code = "CONFLICT"
    status = 409

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidStateError(DomainError):
    """A lifecycle transition that the transition table does not allow."""

    code = "INVALID_STATE"


class DuplicatePromptError(DomainError):
    """A generation whose prompt hash matches an earlier one."""

    code = "DUPLICATE_PROMPT"


class DuplicateImageError(DomainError):
    """An image whose exact bytes (sha256) are already in the review queue."""

    code = "CONFLICT"


class NotFoundError(DomainError):
    code = "NOT_FOUND"
    status = 404


class InvalidInputError(DomainError):
    """Input that fails validation; `details["fields"]` maps field names to messages."""

    code = "VALIDATION_ERROR"
    status = 400

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message, details={"fields": fields or {}})
        self.fields = fields or {}


class ExternalServiceError(DomainError):
    """A remote system (RunPod, ComfyUI, Printify) failed or refused."""

    code = "EXTERNAL_SERVICE_ERROR"
    status = 502


class BusyError(DomainError):
    """Work refused for now because a capacity of this process is taken; `retry_after` is in seconds.

    `temporary` is False when the work can never fit the capacity as configured.
    """

    code = "SERVICE_UNAVAILABLE"
    status = 503

    def __init__(
        self, message: str, *, retry_after: int, temporary: bool = True, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after
        self.temporary = temporary
