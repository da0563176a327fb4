"""`manage.py db_worker`: django_tasks_db's worker made crash-safe (see `core.worker`).

`images` comes before `django_tasks_db` in INSTALLED_APPS, so this command replaces theirs; the
options are the same. Before it works it makes the data directory ready (`core.datadir`), as the
web server does.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV, run_with_reloader
from django_tasks_db.management.commands import db_worker

from core import datadir
from core.worker import CrashSafeWorker


class Command(db_worker.Command):
    help = "Run a database task worker with heartbeats; tasks of dead workers are requeued and resumed"

    def handle(
        self,
        *,
        verbosity: int,
        queue_name: str,
        interval: float,
        batch: bool,
        backend_name: str,
        startup_delay: bool,
        reload: bool,
        max_tasks: int | None,
        worker_id: str,
        exclude_queues: str,
        **options: Any,
    ) -> None:
        self.configure_logging(verbosity)
        self.prepare_data_dir()
        queue_names = queue_name.split(",")
        excluded = exclude_queues.split(",") if exclude_queues else []
        if excluded and "*" not in queue_names:
            raise CommandError("--exclude-queues can only be used with --queue-name=*")
        worker = CrashSafeWorker(
            queue_names=queue_names,
            interval=interval,
            batch=batch,
            backend_name=backend_name,
            startup_delay=startup_delay,
            max_tasks=max_tasks,
            worker_id=worker_id,
            excluded_queue_names=excluded,
        )
        if reload and not batch:
            if os.environ.get(DJANGO_AUTORELOAD_ENV) == "true":
                worker.configure_signals()  # only the reloaded child handles signals
            run_with_reloader(worker.run)
        else:
            worker.configure_signals()
            worker.run()

    def prepare_data_dir(self) -> None:
        """Make the data directory, and start over once if this process started before it existed.

        Settings are read, and prometheus_client imported, before a command runs. A worker that found
        no key file made a key of its own, so the print-file links it signs would be refused by the
        web server; one that found no metrics directory keeps its samples out of /api/metrics.
        """
        datadir.prepare(settings.DATA_DIR, settings.PROMETHEUS_MULTIPROC_DIR)
        unprepared = settings.SECRET_KEY_SOURCE == "process" or "PROMETHEUS_MULTIPROC_DIR" not in os.environ
        if unprepared and sys.argv[1:2] == ["db_worker"]:  # started as a command, not by call_command()
            self.stdout.write(f"Prepared {settings.DATA_DIR}; starting again to use it", ending="\n")
            self.stdout.flush()
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(settings.PROMETHEUS_MULTIPROC_DIR)
            os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
