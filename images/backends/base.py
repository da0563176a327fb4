"""The one interface every generation backend implements, and the values that cross it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from core.errors import ExternalServiceError


class BackendError(ExternalServiceError):
    """The backend refused or failed a job; retrying the same call will not help."""


class TransientBackendError(BackendError):
    """The backend could not be reached or was overloaded even after retries; try again later."""


@dataclass(frozen=True)
class GenerationRequest:
    """One image to make: a batch slot of a generation, with its own seed."""

    prompt: str
    width: int
    height: int
    steps: int
    guidance: float
    seed: int
    negative_prompt: str = ""
    style: str = ""
    genre: str = ""
    # Passed on as X-Request-ID so a remote log line can be matched with ours.
    request_id: str | None = None

    @property
    def full_prompt(self) -> str:
        """The prompt with style and genre appended the way image models read them."""
        parts = [self.prompt]
        if self.style:
            parts.append(f"{self.style} style")
        if self.genre:
            parts.append(self.genre)
        return ", ".join(parts)


class JobState:
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass
class JobResult:
    """What a poll found: still pending, completed with image bytes, or failed with a reason."""

    state: str
    images: list[bytes] = field(default_factory=list)
    error: str = ""

    @classmethod
    def pending(cls) -> JobResult:
        return cls(JobState.PENDING)

    @classmethod
    def failed(cls, error: str) -> JobResult:
        return cls(JobState.FAILED, error=error)


class Backend(Protocol):
    """Submit a job, poll it until it finishes, cancel it. Job ids are stored by the caller."""

    name: str

    def submit(self, request: GenerationRequest) -> str:
        """Start a job for one image and return its id (raises BackendError)."""

    def poll(self, job_id: str, request: GenerationRequest) -> JobResult:
        """Look at a job once; `request` is the one it was submitted with."""

    def cancel(self, job_id: str, request_id: str | None = None) -> None:
        """Ask the backend to stop a job; best effort."""
