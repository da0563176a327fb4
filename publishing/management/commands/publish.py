"""`manage.py publish ID… | --all-approved [--template T] [--wait]`: start publishing approved designs."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tasks_db.models import DBTaskResult

from core.actors import Actor, Via
from core.commands import Progress
from core.errors import DomainError
from core.worker import task_run_here, worker_alive
from images.models import Image, ImageStatus
from publishing.models import Product, ProductStatus
from publishing.services import images_publish

FINISHED = {ProductStatus.PUBLISHED, ProductStatus.FAILED}


class Command(BaseCommand):
    help = "Publish approved, failed or published images with product templates (the default ones if none is given)"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("image_ids", nargs="*", metavar="ID")
        parser.add_argument("--all-approved", action="store_true", help="Publish every approved image")
        parser.add_argument("--template", action="append", default=None, dest="templates",
                            help="Product template id, repeatable: a product per template (default: the defaults)")
        parser.add_argument("--wait", action="store_true", help="Wait until every product is published or failed")
        parser.add_argument("--timeout", type=float, default=3600.0, help="Seconds --wait waits at most")

    def handle(self, *args: Any, **options: Any) -> None:
        ids = list(options["image_ids"])
        if options["all_approved"]:
            if ids:
                raise CommandError("Give image ids or --all-approved, not both")
            ids = list(Image.objects.filter(status=ImageStatus.APPROVED).order_by("created_at")
                       .values_list("id", flat=True))
            if not ids:
                self.stdout.write("No approved images to publish.")
                return
        elif not ids:
            raise CommandError("Give one or more image ids, or --all-approved")
        try:
            result = images_publish(
                image_ids=ids, actor=Actor(None, Via.COMMAND), template_ids=options["templates"], batch_action="publish"
            )
        except DomainError as exc:
            fields = getattr(exc, "fields", {}) or {}
            detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in fields.items())
            raise CommandError(f"{exc.message}{' (' + detail + ')' if detail else ''}") from exc
        products: dict[str, list[str]] = {}
        for image_id, product_id in (Product.objects.filter(image_id__in=result.successful)
                                     .exclude(status__in=FINISHED).values_list("image_id", "id")):
            products.setdefault(image_id, []).append(product_id)
        for image_id in result.successful:
            self.stdout.write(f"{image_id}: publishing as {', '.join(products.get(image_id, []))}")
        for entry in result.skipped:
            self.stderr.write(f"{entry['image_id']}: skipped ({entry['reason']})")
        for entry in result.failed:
            self.stderr.write(f"{entry['image_id']}: {entry['error']}")
        counts = result.as_dict()["counts"]
        self.stdout.write(f"Queued {counts['successful']}, skipped {counts['skipped']}, failed {counts['failed']}.")
        if options["wait"] and result.successful:
            self.wait([p for ids_ in products.values() for p in ids_], timeout=options["timeout"])
        if result.failed or not result.successful:
            raise CommandError("Nothing was published" if not result.successful else "Some images were not found")

    def wait(self, product_ids: list[str], *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        bar = Progress(self, label="Publishing", total=len(product_ids), unit="product")
        while True:
            rows = list(Product.objects.filter(id__in=product_ids).values_list("id", "status", "task_id"))
            pending = [row for row in rows if row[1] not in FINISHED]
            bar.show(len(rows) - len(pending), ", ".join(sorted({row[1] for row in pending})))
            if not pending:
                break
            if time.monotonic() > deadline:
                bar.close()
                raise CommandError(f"Gave up waiting after {timeout:g}s; {len(pending)} product(s) not finished")
            ready = DBTaskResult.objects.ready().filter(id__in=[row[2] for row in pending if row[2]])
            task_id = ready.values_list("id", flat=True).first()
            if task_id is not None and not worker_alive():
                # No worker would pick it up: run it here, exactly as a worker would.
                task_run_here(task_id=task_id)
                continue
            time.sleep(0.5)
        bar.close()
        failed = 0
        for product in Product.objects.filter(id__in=product_ids).order_by("created_at"):
            if product.status == ProductStatus.FAILED:
                failed += 1
                self.stderr.write(f"{product.id} ({product.image_id}): failed: {product.error}")
            else:
                self.stdout.write(f"{product.id} ({product.image_id}): published {product.external_url}".rstrip())
        if failed:
            raise CommandError(f"{failed} of {len(product_ids)} product(s) failed")
