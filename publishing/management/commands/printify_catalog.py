"""`manage.py printify_catalog [--blueprint B [--provider P [--create-template NAME]]]`.

Lists blueprints, a blueprint's print providers, or a provider's variants, so product templates are
built from Printify's real ids; `--create-template` saves one with the listed (or chosen) variants.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.actors import Actor, Via
from core.errors import DomainError, InvalidInputError
from publishing.clients.printify import PrintifyClient, PrintifyError
from publishing.services import product_template_create


class Command(BaseCommand):
    help = "Browse Printify's catalog (blueprints → providers → variants) and optionally save a template"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--blueprint", type=int, help="List this blueprint's print providers")
        parser.add_argument("--provider", type=int, help="With --blueprint: list this provider's variants")
        parser.add_argument("--search", default="", help="Only blueprints/variants whose title contains this")
        parser.add_argument(
            "--create-template", metavar="NAME", help="With --blueprint and --provider: save a template"
        )
        parser.add_argument("--variants", default="", help="Comma-separated variant ids for the template (default all)")
        parser.add_argument("--price-cents", type=int, default=2999)
        parser.add_argument("--default", action="store_true", help="Make the new template the default one")

    def handle(self, *args: Any, **options: Any) -> None:
        blueprint, provider = options["blueprint"], options["provider"]
        if provider is not None and blueprint is None:
            raise CommandError("--provider needs --blueprint")
        if options["create_template"] and provider is None:
            raise CommandError("--create-template needs --blueprint and --provider")
        search = options["search"].lower()
        try:
            client = PrintifyClient.from_settings()
            if blueprint is None:
                for item in client.blueprints():
                    if search in str(item.get("title", "")).lower():
                        self.stdout.write(f"{item['id']}\t{item.get('title', '')}\t{item.get('brand', '')} "
                                          f"{item.get('model', '')}".rstrip())
                return
            if provider is None:
                for item in client.print_providers(blueprint_id=blueprint):
                    self.stdout.write(f"{item['id']}\t{item.get('title', '')}")
                return
            variants = client.variants(blueprint_id=blueprint, print_provider_id=provider).get("variants", [])
        except PrintifyError as exc:
            raise CommandError(exc.message) from exc
        variants = [v for v in variants if search in str(v.get("title", "")).lower()]
        for item in variants:
            positions = ",".join(p.get("position", "") for p in item.get("placeholders", []))
            self.stdout.write(f"{item['id']}\t{item.get('title', '')}\t{positions}")
        if options["create_template"]:
            self._create_template(options, blueprint, provider, [v["id"] for v in variants])

    def _create_template(self, options: dict[str, Any], blueprint: int, provider: int, known: list[int]) -> None:
        try:
            chosen = [int(v) for v in options["variants"].split(",") if v.strip()] or known
        except ValueError:
            raise CommandError("--variants must be comma-separated variant ids") from None
        unknown = sorted(set(chosen) - set(known))
        if unknown:
            raise CommandError(f"Not variants of blueprint {blueprint} / provider {provider}: {unknown}")
        if not chosen:
            raise CommandError("No variants to put in the template")
        # The template's rules (name, price, …) are the service's: it refuses what the API and the admin refuse.
        try:
            template = product_template_create(
                data={"name": options["create_template"], "platform": "printify", "blueprint_id": blueprint,
                      "print_provider_id": provider, "variant_ids": chosen, "price_cents": options["price_cents"],
                      "is_default": options["default"]},
                actor=Actor(None, Via.COMMAND),
            )
        except InvalidInputError as exc:
            problems = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in exc.fields.items())
            raise CommandError(f"{exc.message}: {problems}" if problems else exc.message) from exc
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Created template {template.id} ({template.name}) with {len(chosen)} variant(s)")
