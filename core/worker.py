"""Crash safety for the task worker: heartbeats, requeueing tasks of dead workers, a clean SIGTERM.

django_tasks_db marks a task RUNNING when a worker claims it and never looks at it again, so a task
whose worker was killed would stay RUNNING forever. Every worker here writes a `WorkerHeartbeat`;
a RUNNING task whose worker has been silent for WORKER_STALE_SECONDS is put back to READY, and the
task itself is written to resume (see `images.tasks` and `publishing.tasks`). No library does this for django_tasks_db.

Stopping: SIGTERM/SIGINT only set a flag and write a byte to a pipe (`StopFlag`); the worker loop,
long-running tasks and a watchdog thread wake on that pipe. django_tasks_db's own handler raises
SystemExit wherever the main thread happens to be, and a handler that takes a lock
(`threading.Event.set()`) can deadlock against the code it interrupted. The watchdog ends the process
WORKER_STOP_GRACE_SECONDS after the signal whatever the main thread is doing, handing its task back.
"""

from __future__ import annotations

import logging
import os
import random
import select
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from types import FrameType
from typing import Any, Protocol

from django.conf import settings
from django.db import DatabaseError, OperationalError, close_old_connections, connection
from django.utils import timezone
from django.utils.crypto import get_random_string
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from core.models import WorkerHeartbeat

logger = logging.getLogger(__name__)


class StopFlag:
    """A stop request that a signal handler may set: a plain bool plus one byte written to a pipe.

    Neither takes a lock, so the handler is safe wherever it interrupts the main thread. `wait()` polls
    the pipe's read end, so any number of threads wake at once; the bytes stay until `clear()`.
    """

    def __init__(self) -> None:
        self._set = False
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def set(self) -> None:
        self._set = True
        try:
            os.write(self._write, b"\0")
        except OSError:
            pass  # a full pipe is readable already

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the flag is set or `timeout` seconds pass; return whether it is set."""
        if not self._set:
            poller = select.poll()
            poller.register(self._read, select.POLLIN)
            poller.poll(None if timeout is None else max(0, int(timeout * 1000)))
        return self._set

    def clear(self) -> None:
        self._set = False
        try:
            while os.read(self._read, 4096):
                pass
        except BlockingIOError:
            pass


# Set when the worker was asked to stop; long-running tasks check it and stop resumably.
stop_requested = StopFlag()
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
    """django_tasks_db's Worker plus heartbeats, stale-task requeueing and a SIGTERM that always ends it.

    The loop is django_tasks_db's, except that it sleeps on `stop_requested` (so a signal wakes it),
    checks the flag before it runs a claimed task and never exits from inside a signal handler.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._current: DBTaskResult | None = None
        self._finished = threading.Event()

    def configure_signals(self) -> None:
        # Cleared before the handlers exist, so a signal that arrives from now on is never lost.
        stop_requested.clear()
        threading.Thread(target=self._watchdog, name="stop-watchdog", daemon=True).start()
        super().configure_signals()

    def shutdown(self, signum: int, frame: FrameType | None) -> None:
        # A signal handler: only flag assignments and a pipe write (see StopFlag), nothing that locks or raises.
        self.running = False
        stop_requested.set()

    def _watchdog(self) -> None:
        """Ends the process WORKER_STOP_GRACE_SECONDS after a stop request if it is still running."""
        stop_requested.wait()
        grace = float(settings.WORKER_STOP_GRACE_SECONDS)
        logger.warning("Stop requested; worker %s stops within %g s", self.worker_id, grace)
        if self._finished.wait(grace):
            return
        current = self._current
        logger.error(
            "Worker %s did not stop within %g s; ending it (task %s goes back to the queue)",
            self.worker_id, grace, current.id if current is not None else "-",
        )
        try:
            if current is not None:
                task_requeue(current)
            heartbeat_forget(worker_id=self.worker_id)
        except DatabaseError:
            logger.warning("Could not hand back the task of worker %s", self.worker_id, exc_info=True)
        finally:
            logging.shutdown()
            os._exit(1)

    def run(self) -> None:
        heartbeat = Heartbeat(worker_id=self.worker_id)
        companions: list[Companion] = []
        try:
            if not self.running:
                return
            # The first beat and sweep happen before any claim, so our own tasks never look orphaned.
            heartbeat.beat()
            heartbeat.start()
            for factory in _companions:
                if not self.running:
                    break
                companion = factory()
                companion.start()
                companions.append(companion)
            self._loop()
        finally:
            for companion in companions:
                companion.stop()
            if heartbeat.is_alive():
                heartbeat.stop()
            try:
                heartbeat_forget(worker_id=self.worker_id)
            except DatabaseError:
                logger.warning("Could not remove the heartbeat of worker %s", self.worker_id, exc_info=True)
            self._finished.set()

    def _loop(self) -> None:
        logger.info("Starting worker worker_id=%s queues=%s", self.worker_id, ",".join(self.queue_names))
        if self.startup_delay and self.interval:
            stop_requested.wait(random.random())  # noqa: S311 - spreads the first polls of many workers
        while self.running:
            close_old_connections()
            tasks = DBTaskResult.objects.ready().filter(backend_name=self.backend_name)
            if not self.process_all_queues:
                tasks = tasks.filter(queue_name__in=self.queue_names)
            if self.excluded_queue_names:
                tasks = tasks.exclude(queue_name__in=self.excluded_queue_names)
            retrieved = True
            with exclusive_transaction(tasks.db):
                try:
                    task_result = tasks.get_locked()
                    if task_result is not None:
                        task_result.claim(self.worker_id)
                except OperationalError as exc:
                    if not is_locked_database_exception(exc):
                        raise
                    task_result, retrieved = None, False  # a locked SQLite database unlocks eventually
            if task_result is not None:
                if self.running:
                    self.run_task(task_result)
                else:
                    task_requeue(task_result)  # claimed just as the stop request came in
            if self.batch and retrieved and task_result is None:
                logger.info("No more tasks to run for worker_id=%s - exiting gracefully.", self.worker_id)
                return
            if self.max_tasks is not None and self._run_tasks >= self.max_tasks:
                logger.info("Ran the maximum of %d tasks on worker=%s - exiting.", self._run_tasks, self.worker_id)
                return
            close_old_connections()
            if self.running and task_result is None:
                stop_requested.wait(self.interval)
        logger.info("Worker %s stopped", self.worker_id)

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
        self._current = db_task_result
        try:
            super().run_task(db_task_result)
        finally:
            self._current = None


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
