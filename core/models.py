"""Rows the shared machinery keeps: the task workers' heartbeats."""

from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    """Liveness of a task worker process; a running task whose worker went silent is requeued."""

    worker_id = models.CharField(primary_key=True, max_length=64)
    hostname = models.CharField(max_length=255, blank=True, default="")
    pid = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.worker_id} (pid {self.pid})"
