"""`manage.py prune [--older-than-days N] [--dry-run]`: remove rejected images (rows and files) rejected long ago."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Max, Q, QuerySet
from django.utils import timezone

from core.batch import BatchResult
from core.commands import Progress, command_actor
from images.intake import remove_files, stored_orphans
from images.models import Image, ImageStatus
from images.services import images_delete

# Files younger than this may belong to an intake whose row is not committed yet.
ORPHAN_GRACE = timedelta(hours=1)
PRUNE_BATCH = 500


def rejected_before(cutoff: datetime) -> QuerySet[Image]:
    """Rejected images whose (latest) rejection is older than `cutoff`."""
    return (
        Image.objects.filter(status=ImageStatus.REJECTED)
        .annotate(rejected_at=Max("history__created_at", filter=Q(history__to_status=ImageStatus.REJECTED)))
        # An image without a rejection row (made directly in the database) counts from its last change.
        .filter(Q(rejected_at__lt=cutoff) | Q(rejected_at__isnull=True, updated_at__lt=cutoff))
    )


class Command(BaseCommand):
    help = "Delete rejected images, with their files, that were rejected more than N days ago"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than-days", type=int, default=30, metavar="N")
        parser.add_argument("--dry-run", action="store_true", help="List what would be removed, remove nothing")
        parser.add_argument(
            "--orphans", action="store_true",
            help="Also delete stored image files that no image refers to (older than an hour)",
        )
        parser.add_argument("--as", dest="as_user", metavar="USERNAME", help="Act as this user (default: system)")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["older_than_days"]
        if days < 0:
            raise CommandError("--older-than-days must be 0 or more")
        actor = command_actor(options["as_user"])
        doomed = rejected_before(timezone.now() - timedelta(days=days))
        rows = list(doomed.order_by("created_at", "id").values_list("id", "file_size"))
        total_mb = sum(size for _, size in rows) / 2**20
        if options["orphans"]:
            self._orphans(dry_run=options["dry_run"])
        if options["dry_run"]:
            for image_id, _ in rows:
                self.stdout.write(f"would remove {image_id}")
            self.stdout.write(f"Would remove {len(rows)} image(s) rejected over {days} day(s) ago ({total_mb:.1f} MB)")
            return
        ids = [image_id for image_id, _ in rows]
        result = BatchResult()
        # One transaction per slice: a long prune never holds the (SQLite: whole-database) write lock long.
        bar = Progress(self, label="Pruning", total=len(ids), unit="image")
        for start in range(0, len(ids), PRUNE_BATCH):
            bar.advance(len(ids[start:start + PRUNE_BATCH]))
            part = images_delete(image_ids=ids[start:start + PRUNE_BATCH], actor=actor)
            result.successful += part.successful
            result.skipped += part.skipped
            result.failed += part.failed
        bar.close()
        for image_id in result.successful:
            self.stdout.write(f"removed {image_id}")
        # Rows that changed status since they were listed are left alone.
        for entry in result.skipped + result.failed:
            self.stdout.write(f"kept {entry['image_id']}: {entry.get('reason') or entry.get('error')}")
        sizes = dict(rows)
        freed_mb = sum(sizes[image_id] for image_id in result.successful) / 2**20
        self.stdout.write(
            f"Removed {len(result.successful)} image(s) rejected over {days} day(s) ago ({freed_mb:.1f} MB)"
        )

    def _orphans(self, *, dry_run: bool) -> None:
        orphans = stored_orphans(modified_before=timezone.now() - ORPHAN_GRACE)
        for name in orphans:
            self.stdout.write(f"{'would remove' if dry_run else 'removed'} orphaned file {name}")
        if not dry_run:
            remove_files(orphans)
        self.stdout.write(f"{'Would remove' if dry_run else 'Removed'} {len(orphans)} orphaned file(s)")
