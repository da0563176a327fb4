"""`manage.py redeliver_webhooks [--failed] [--since YYYY-MM-DD|ISO datetime]`: queue deliveries again."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from core.actors import Actor, Via
from core.commands import Progress
from webhooks.services import REDELIVER_MAX_AGE, deliveries_redeliver


def parse_since(value: str) -> datetime:
    """A date (its midnight) or an ISO datetime; one without a zone is in the configured time zone."""
    try:
        moment = parse_datetime(value)
        if moment is None and (day := parse_date(value)) is not None:
            moment = datetime.combine(day, time.min)
    except ValueError:
        moment = None  # well formed, but not a real date or time (2024-02-30, 25:00)
    if moment is None:
        raise CommandError(f"--since {value!r} is not a date (YYYY-MM-DD) or an ISO 8601 datetime")
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


class Command(BaseCommand):
    help = (
        "Queue webhook deliveries again: the failed ones (--failed), or failed and delivered ones, created "
        f"since --since (at most {REDELIVER_MAX_AGE.days} days back, the default). Disabled subscriptions "
        "are skipped; re-enable them first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--failed", action="store_true", help="Only deliveries that ended failed")
        parser.add_argument("--since", metavar="WHEN", help="YYYY-MM-DD or an ISO 8601 datetime")

    def handle(self, *args: Any, **options: Any) -> None:
        floor = timezone.now() - REDELIVER_MAX_AGE
        since = parse_since(options["since"]) if options["since"] else floor
        if since < floor:
            self.stdout.write(
                f"--since reaches back at most {REDELIVER_MAX_AGE.days} days: from {floor:%Y-%m-%d %H:%M %Z}"
            )
            since = floor
        # A day per transaction: a large recovery never holds its row locks long, and the bar moves.
        now = timezone.now()
        windows = [since + timedelta(days=day) for day in range(int((now - since) / timedelta(days=1)) + 1)]
        bar = Progress(self, label="Redelivering", total=len(windows), unit="day")
        count = 0
        for done, start in enumerate(windows, 1):
            count += deliveries_redeliver(
                failed_only=options["failed"], since=start, actor=Actor(None, Via.COMMAND),
                until=start + timedelta(days=1) if done < len(windows) else None,
            )
            bar.show(done, f"{count} queued")
        bar.close()
        which = "failed" if options["failed"] else "failed or delivered"
        self.stdout.write(
            f"Queued {count} {which} deliver{'y' if count == 1 else 'ies'} again "
            f"(created since {since:%Y-%m-%d %H:%M %Z})"
        )
