"""`manage.py printify_shops`: list the Printify shops the API key can publish to."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from publishing.clients.printify import PrintifyClient, PrintifyError


class Command(BaseCommand):
    help = "List the Printify shops of PRINTIFY_API_KEY (set PRINTIFY_SHOP_ID to one of the ids)"

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            client = PrintifyClient.from_settings()
            shops = client.shops()
        except PrintifyError as exc:
            raise CommandError(exc.message) from exc
        if not shops:
            raise CommandError("The API key has no shops; create one in Printify first")
        for shop in shops:
            marker = "  (PRINTIFY_SHOP_ID)" if str(shop.get("id")) == str(settings.PRINTIFY_SHOP_ID) else ""
            self.stdout.write(f"{shop.get('id')}\t{shop.get('title', '')}\t{shop.get('sales_channel', '')}{marker}")
