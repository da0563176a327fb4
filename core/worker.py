"""Crash safety for the task worker: heartbeats, requeueing tasks of dead workers, a clean SIGTERM.

django_tasks_db marks a task RUNNING when a worker claims it and never looks at it again, so a task
whose worker was killed would stay RUNNING forever. Every worker here writes a `WorkerHeartbeat`;
a RUNNING task whose worker has been silent for WORKER_STALE_SECONDS is put back to READY, and the
task itself is written to resume (see `images.tasks` and `publishing.tasks`). No library does this for django_tasks_db.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from types import FrameType
from typing import Any, Protocol

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone
from django.utils.crypto import get_random_string
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction

from core.models import WorkerHeartbeat

logger = logging.getLogger(__name__)

# Set when the worker was asked to stop; long-running tasks check it and stop resumably.
stop_requested = threading.Event()
# Heartbeat rows this much older than the stale limit belong to workers long gone.
FORGET_AFTER = timedelta(days=1)


class Companion(Protocol):
    """A loop that runs beside the task worker in each worker process (webhook delivery, say)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


# Factories registered by apps (in AppConfig.ready); each worker process starts one companion of each.
_companions: list[Callable[[], Companion]] = []


def worker_companion_register(factory: Callable[[], Companion]) -> None:
    """Run `factory()`'s companion beside every task worker started in this process."""
    if factory not in _companions:
        _companions.append(factory)


class WorkerStopping(Exception):
    """Raised inside a task when the worker is shutting down; the task is requeued, not failed."""


def heartbeat_beat(*, worker_id: str) -> None:
    """Record that `worker_id` (this process) is alive now."""
    WorkerHeartbeat.objects.update_or_create(
        worker_id=worker_id,
        defaults={"hostname": socket.gethostname()[:255], "pid": os.getpid(), "last_seen": timezone.now()},
    )


def worker_alive() -> bool:
    """Whether any worker has beaten within WORKER_STALE_SECONDS (readiness, and `--wait` in commands)."""
    fresh = timezone.now() - timedelta(seconds=settings.WORKER_STALE_SECONDS)
    return WorkerHeartbeat.objects.filter(last_seen__gte=fresh).exists()


def tasks_requeue_stale(*, stale_seconds: float | None = None) -> list[str]:
    """Put RUNNING tasks whose worker has no fresh heartbeat back to READY; return their ids."""
    stale = timedelta(seconds=stale_seconds if stale_seconds is not None else settings.WORKER_STALE_SECONDS)
    running = list(DBTaskResult.objects.running().values_list("id", "worker_ids"))
    if not running:
        return []
    alive = set(
        WorkerHeartbeat.objects.filter(last_seen__gte=timezone.now() - stale).values_list("worker_id", flat=True)
    )
    orphans = [task_id for task_id, worker_ids in running if not worker_ids or worker_ids[-1] not in alive]
    if orphans:
        # Conditional on RUNNING, so a task that finished meanwhile is left alone.
        DBTaskResult.objects.filter(id__in=orphans, status=TaskResultStatus.RUNNING).update(
            status=TaskResultStatus.READY, started_at=None
        )
        logger.warning("Requeued %d task(s) of workers without a heartbeat: %s", len(orphans), orphans)
    return [str(task_id) for task_id in orphans]


def task_requeue(db_task_result: DBTaskResult) -> None:
    """Hand a task this worker is giving up on (shutdown) back to the queue, to be resumed."""
    DBTaskResult.objects.filter(id=db_task_result.id).update(
        status=TaskResultStatus.READY, started_at=None, finished_at=None
    )
    db_task_result.status = TaskResultStatus.READY


class Heartbeat(threading.Thread):
    """Beats every WORKER_HEARTBEAT_SECONDS and requeues the tasks of dead workers as it goes."""

    def __init__(self, *, worker_id: str) -> None:
        super().__init__(name=f"heartbeat-{worker_id}", daemon=True)
        self.worker_id = worker_id
        self.interval = float(settings.WORKER_HEARTBEAT_SECONDS)
        self._halt = threading.Event()

    def beat(self) -> None:
        heartbeat_beat(worker_id=self.worker_id)
        tasks_requeue_stale()

    def run(self) -> None:
        try:
            while not self._halt.wait(self.interval):
                try:
                    close_old_connections()
                    self.beat()
                except DatabaseError:
                    # A busy or briefly unreachable database: skip this beat, the next one retries.
                    logger.warning("Worker heartbeat failed", exc_info=True)
        finally:
            connection.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=max(5.0, self.interval * 2))


def heartbeat_forget(*, worker_id: str) -> None:
    """Remove this worker's heartbeat (clean exit) and rows of workers gone for a long time."""
    WorkerHeartbeat.objects.filter(worker_id=worker_id).delete()
    WorkerHeartbeat.objects.filter(last_seen__lt=timezone.now() - FORGET_AFTER).delete()


class CrashSafeWorker(Worker):
    """django_tasks_db's Worker plus heartbeats, stale-task requeueing and a resumable SIGTERM."""

    def run(self) -> None:
        stop_requested.clear()
        # The first beat and sweep happen before any claim, so our own tasks never look orphaned.
        heartbeat = Heartbeat(worker_id=self.worker_id)
        heartbeat.beat()
        heartbeat.start()
        companions = [factory() for factory in _companions]
        for companion in companions:
            companion.start()
        try:
            super().run()
        finally:
            for companion in companions:
                companion.stop()
            heartbeat.stop()
            try:
                heartbeat_forget(worker_id=self.worker_id)
            except DatabaseError:
                logger.warning("Could not remove the heartbeat of worker %s", self.worker_id, exc_info=True)

    def shutdown(self, signum: int, frame: FrameType | None) -> None:
        # Tell a running task to stop at its next safe point; it is then requeued, not failed.
        stop_requested.set()
        super().shutdown(signum, frame)

    def run_task(self, db_task_result: DBTaskResult) -> None:
        mark_failed = db_task_result.set_failed

        def set_failed(exc: BaseException) -> None:
            # A task interrupted by shutdown is not a failure: it goes back to the queue and resumes.
            if isinstance(exc, WorkerStopping | SystemExit | KeyboardInterrupt):
                task_requeue(db_task_result)
                logger.warning("Task %s interrupted by shutdown; requeued", db_task_result.id)
            else:
                mark_failed(exc)

        db_task_result.set_failed = set_failed  # type: ignore[method-assign]
        super().run_task(db_task_result)


def task_run_here(*, task_id: Any, backend_name: str = "default") -> bool:
    """Claim one READY task and run it in this process (with a heartbeat); False if it was not READY.

    For `generate --wait` when no worker is running: the task runs exactly as a worker would run it.
    """
    worker_id = f"inline-{os.getpid()}-{get_random_string(8)}"
    worker = CrashSafeWorker(
        queue_names=["*"],
        interval=0,
        batch=True,
        backend_name=backend_name,
        startup_delay=False,
        max_tasks=1,
        worker_id=worker_id,
        excluded_queue_names=[],
    )
    heartbeat = Heartbeat(worker_id=worker_id)
    heartbeat_beat(worker_id=worker_id)
    heartbeat.start()
    try:
        with exclusive_transaction(DBTaskResult.objects.db):
            task_result = DBTaskResult.objects.ready().filter(id=task_id).get_locked()
            if task_result is not None:
                task_result.claim(worker_id)
        if task_result is None:
            return False
        stop_requested.clear()
        worker.run_task(task_result)
        return True
    finally:
        heartbeat.stop()
        heartbeat_forget(worker_id=worker_id)
