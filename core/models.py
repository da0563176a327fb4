"""Rows the shared machinery keeps: the task workers' heartbeats; the status-history row every app extends."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from core.actors import Via


class WorkerHeartbeat(models.Model):
    """Liveness of a task worker process; a running task whose worker went silent is requeued."""

    worker_id = models.CharField(primary_key=True, max_length=64)
    hostname = models.CharField(max_length=255, blank=True, default="")
    pid = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.worker_id} (pid {self.pid})"


class StatusChange(models.Model):
    """One recorded move of a stateful object (image, generation, product): who, when, from, to, why, how.

    Concrete subclasses add the key of what moved (`core.lifecycle.Lifecycle.subject` + `_id`), with
    no database constraint and `DO_NOTHING`, so the history outlives the object. The rows are
    append-only: `save()` refuses to change a stored row, and the database itself refuses UPDATE and
    DELETE (`core.db.append_only`).
    """

    from_status = models.CharField(max_length=16, blank=True, default="")
    to_status = models.CharField(max_length=16)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The username at the time, or "system"; kept when the user is later deleted (and `actor` emptied).
    actor_label = models.CharField(max_length=150)
    via = models.CharField(max_length=16, choices=Via.choices)
    note = models.TextField(blank=True, default="")
    # What else the change concerned, e.g. a replaced print file's old and new size and sha256.
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        abstract = True
        ordering = ["created_at", "id"]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError(f"{type(self).__name__} rows are append-only")
        super().save(*args, **kwargs)
