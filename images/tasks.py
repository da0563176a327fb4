"""The generation task: from a queued generation to pending images, resumable after a crash.

Each batch slot is one backend job. A job's id is committed to `Generation.external_jobs` right
after submission and before any polling, so a run that dies (worker killed, machine lost) is resumed
by the next run of the task: slots that already have an image are skipped, stored jobs are polled
again instead of submitted again, and the (generation, batch_index) constraint keeps every slot to
one image even if two runs ever overlapped.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tasks import task

from core import metrics
from core.actors import Actor, Via
from core.errors import BusyError, InvalidInputError
from core.logging import bind_request_id, unbind_request_id
from core.worker import WorkerStopping, stop_requested
from images.backends.base import (
    Backend,
    BackendError,
    GenerationRequest,
    JobResult,
    JobState,
    TransientBackendError,
)
from images.backends.registry import get_backend
from images.intake import image_intake
from images.models import Generation, GenerationStatus, Image, ImageSource
from images.services import generation_transition

logger = logging.getLogger(__name__)

SUBMITTED = "submitted"
COMPLETED = "completed"
FAILED = "failed"


@task()
def generation_run(generation_id: str) -> dict[str, Any]:
    """Run or resume one generation on its backend until it is completed, failed or cancelled."""
    generation = Generation.objects.filter(id=generation_id).first()
    if generation is None:
        return {"generation_id": generation_id, "status": "missing"}
    token = bind_request_id(generation.request_id or None)
    try:
        status = _run(generation)
    finally:
        unbind_request_id(token)
    return {"generation_id": generation_id, "status": status}


def _run(generation: Generation) -> str:
    if not _start(generation):
        return generation.status
    try:
        backend = get_backend(generation.backend)
        return _Run(generation=generation, backend=backend).run()
    except WorkerStopping:
        raise
    except BackendError as exc:
        _finish(generation.id, error=exc.message, error_type="external")
        return GenerationStatus.FAILED
    except Exception as exc:
        logger.exception("Generation %s crashed", generation.id)
        _finish(generation.id, error=f"Internal error: {type(exc).__name__}", error_type="internal")
        raise


def _start(generation: Generation) -> bool:
    """queued → running (with event and metric); True if the generation should run now."""
    with transaction.atomic():
        status = Generation.objects.select_for_update().values_list("status", flat=True).get(id=generation.id)
        if status == GenerationStatus.QUEUED:
            generation_transition(
                generation_id=generation.id,
                to_status=GenerationStatus.RUNNING,
                actor=Actor.system(),
                fields={"started_at": timezone.now()},
                event_data={"backend": generation.backend, "batch_size": generation.batch_size,
                            "prompt": generation.prompt},
            )
            transaction.on_commit(metrics.GENERATION_STARTED.inc)
        row = Generation.objects.get(id=generation.id)
        generation.status, generation.started_at = row.status, row.started_at
        generation.external_jobs = row.external_jobs
    return generation.status == GenerationStatus.RUNNING


def _slot_request(generation: Generation, index: int) -> GenerationRequest:
    params = generation.params
    return GenerationRequest(
        prompt=generation.prompt,
        negative_prompt=generation.negative_prompt,
        style=generation.style,
        genre=generation.genre,
        width=int(params["width"]),
        height=int(params["height"]),
        steps=int(params["steps"]),
        guidance=float(params["guidance"]),
        # Each slot its own seed, so a batch holds different pictures and a rerun the same ones.
        seed=(int(params["seed"]) + index) % (2**32),
        request_id=generation.request_id or None,
    )


def _store_slot(generation_id: str, index: int, entry: dict[str, Any]) -> None:
    """Commit one slot's job record at once (before anything else happens to that job)."""
    with transaction.atomic():
        jobs = Generation.objects.select_for_update().values_list("external_jobs", flat=True).get(id=generation_id)
        jobs = dict(jobs or {})
        jobs[str(index)] = entry
        Generation.objects.filter(id=generation_id).update(external_jobs=jobs)


@dataclass
class _Run:
    generation: Generation
    backend: Backend
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    done: set[int] = field(default_factory=set)

    def run(self) -> str:
        g = self.generation
        self.jobs = {key: dict(value) for key, value in (g.external_jobs or {}).items()}
        self.done = set(Image.objects.filter(generation=g).values_list("batch_index", flat=True))
        deadline = g.started_at.timestamp() + settings.GENERATION_TIMEOUT_SECONDS
        while True:
            self._check_stop()
            if self._cancelled():
                return GenerationStatus.CANCELLED
            open_slots = [i for i in range(g.batch_size) if i not in self.done and self._state(i) != FAILED]
            if not open_slots:
                break
            if time.time() > deadline:
                self._time_out(open_slots)
                break
            for index in open_slots:
                self._check_stop()
                self._advance(index)
            if any(self._state(i) == SUBMITTED for i in range(g.batch_size) if i not in self.done):
                # Wakes at once on shutdown, so SIGTERM never waits a whole poll interval.
                stop_requested.wait(settings.GENERATION_POLL_SECONDS)
        return _finish(g.id, error=self._errors(), error_type=self._error_type())

    def _state(self, index: int) -> str | None:
        return self.jobs.get(str(index), {}).get("state")

    def _set(self, index: int, **entry: Any) -> None:
        record = {**self.jobs.get(str(index), {}), **entry}
        self.jobs[str(index)] = record
        _store_slot(self.generation.id, index, record)

    def _advance(self, index: int) -> None:
        """Submit the slot's job if it has none, else poll it once and act on what it says."""
        request = _slot_request(self.generation, index)
        job = self.jobs.get(str(index))
        if job is None:
            try:
                job_id = self.backend.submit(request)
            except TransientBackendError as exc:
                logger.warning("Generation %s slot %d: submit will be retried: %s", self.generation.id, index, exc)
                return
            except BackendError as exc:
                self._set(index, state=FAILED, error=exc.message, error_type="external")
                return
            self._set(index, job_id=job_id, state=SUBMITTED, submitted_at=timezone.now().isoformat())
            job = self.jobs[str(index)]
        try:
            result = self.backend.poll(job["job_id"], request)
        except TransientBackendError as exc:
            logger.warning("Generation %s slot %d: poll will be retried: %s", self.generation.id, index, exc)
            return
        except BackendError as exc:
            result = JobResult.failed(exc.message)
        if result.state == JobState.COMPLETED:
            self._take_in(index, result)
        elif result.state == JobState.FAILED:
            self._set(index, state=FAILED, error=result.error, error_type="external")

    def _take_in(self, index: int, result: JobResult) -> None:
        g = self.generation
        if not result.images:
            self._set(index, state=FAILED, error="The backend returned no image", error_type="external")
            return
        try:
            image_intake(
                source=io.BytesIO(result.images[0]),
                filename=f"{g.id}_{index}.png",
                source_kind=ImageSource.GENERATED,
                prompt=g.prompt,
                generation=g,
                batch_index=index,
                actor=Actor(g.created_by, Via.SYSTEM),
            )
        except InvalidInputError as exc:
            self._set(index, state=FAILED, error=f"Unusable image: {exc.message}", error_type="invalid_image")
            return
        except BusyError as exc:
            if not exc.temporary:
                self._set(index, state=FAILED, error=f"Unusable image: {exc.message}", error_type="invalid_image")
            else:
                # The job's result is fetched again on the next poll, and taken in then.
                logger.warning("Generation %s slot %d: %s; retried on the next poll", g.id, index, exc.message)
            return
        except IntegrityError:
            # Another run of this generation took this slot's image in first: one image per slot.
            logger.warning("Generation %s slot %d already has its image", g.id, index)
        self.done.add(index)
        self._set(index, state=COMPLETED)

    def _check_stop(self) -> None:
        if stop_requested.is_set():
            raise WorkerStopping(f"Worker stopping; generation {self.generation.id} will resume")

    def _cancelled(self) -> bool:
        status = Generation.objects.values_list("status", flat=True).get(id=self.generation.id)
        if status != GenerationStatus.CANCELLED:
            return False
        for index in range(self.generation.batch_size):
            if index not in self.done and self._state(index) == SUBMITTED:
                self.backend.cancel(self.jobs[str(index)]["job_id"], self.generation.request_id or None)
                self._set(index, state=FAILED, error="Cancelled", error_type="cancelled")
        _count(self.generation.id)
        return True

    def _time_out(self, open_slots: list[int]) -> None:
        for index in open_slots:
            if self._state(index) == SUBMITTED:
                self.backend.cancel(self.jobs[str(index)]["job_id"], self.generation.request_id or None)
            self._set(index, state=FAILED, error="Timed out", error_type="timeout")

    def _errors(self) -> str:
        errors = [job.get("error", "") for job in self.jobs.values() if job.get("state") == FAILED]
        return "; ".join(dict.fromkeys(e for e in errors if e))[:2000]

    def _error_type(self) -> str:
        types = [job.get("error_type", "") for job in self.jobs.values() if job.get("state") == FAILED]
        return next((t for t in types if t), "unknown")


def _count(generation_id: str) -> tuple[list[str], int]:
    """Write success/failed counts from the images that exist; return (image ids, failed count)."""
    generation = Generation.objects.get(id=generation_id)
    images = Image.objects.filter(generation_id=generation_id).order_by("batch_index")
    image_ids = list(images.values_list("id", flat=True))
    failed = max(0, generation.batch_size - len(image_ids))
    Generation.objects.filter(id=generation_id).update(success_count=len(image_ids), failed_count=failed)
    return image_ids, failed


def _finish(generation_id: str, *, error: str, error_type: str) -> str:
    """running → completed (any image) or failed (none), with event and metrics; never over a cancel."""
    with transaction.atomic():
        row = Generation.objects.select_for_update().get(id=generation_id)
        if row.status != GenerationStatus.RUNNING:
            return row.status
        image_ids, failed = _count(generation_id)
        now = timezone.now()
        status = GenerationStatus.COMPLETED if image_ids else GenerationStatus.FAILED
        if status == GenerationStatus.COMPLETED:
            event_data = {"image_ids": image_ids, "success_count": len(image_ids), "failed_count": failed,
                          "error": error}
            transaction.on_commit(metrics.GENERATION_COMPLETED.inc)
        else:
            event_data = {"error": error, "failed_count": failed}
            transaction.on_commit(metrics.GENERATION_FAILED.labels(error_type=error_type).inc)
        generation_transition(
            generation_id=generation_id, to_status=status, actor=Actor.system(), note=error[:1000],
            fields={"finished_at": now, "error": error}, event_data=event_data,
        )
        duration = (now - row.started_at).total_seconds() if row.started_at else 0.0
        transaction.on_commit(lambda: metrics.GENERATION_DURATION.observe(duration))
    return status
