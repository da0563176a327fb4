"""`manage.py prune_webhooks [--older-than-days N]`: delete old deliveries, their attempts and old events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from webhooks.services import webhooks_prune


class Command(BaseCommand):
    help = (
        "Delete webhook deliveries (with their attempts) and dispatched events older than N days "
        "(default WEBHOOK_RETENTION_DAYS); deliveries being sent are kept"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than-days", type=int, metavar="N")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["older_than_days"]
        if days is None:
            days = int(settings.WEBHOOK_RETENTION_DAYS)
        if days < 1:
            # Younger deliveries may still be waiting for their retries.
            raise CommandError("--older-than-days must be 1 or more")
        deleted = webhooks_prune(older_than=timedelta(days=days))
        self.stdout.write(
            f"Deleted {deleted} webhook deliver{'y' if deleted == 1 else 'ies'} older than {days} "
            f"day{'s' if days != 1 else ''} with their attempts, and the sent events of that age no delivery "
            "refers to any more"
        )
