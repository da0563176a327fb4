"""Printify's catalog as the gateway reads it: blueprints, print providers, variants with their print areas.

Answers are kept in the Django cache (`PRINTIFY_CATALOG_CACHE_SECONDS`, a day by default): the catalog
changes rarely, and the admin's template form and the fit check ask for the same pages again and again.
The fit check compares a design with the print area (Printify's placeholder, in pixels at 300 DPI) of
the template's position: a design smaller than the area would print soft or not fill it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.core.cache import cache

from publishing.clients.printify import PrintifyClient, PrintifyError
from publishing.models import Platform, ProductTemplate

logger = logging.getLogger(__name__)
CACHE_PREFIX = "publishing:catalog:"
PRINT_DPI = 300


def _cached(key: str, fetch: Callable[[PrintifyClient], Any]) -> Any:
    full_key = f"{CACHE_PREFIX}{settings.PRINTIFY_API_URL}:{key}"
    answer = cache.get(full_key)
    if answer is None:
        client = PrintifyClient.from_settings()
        try:
            answer = fetch(client)
        finally:
            client.close()
        cache.set(full_key, answer, getattr(settings, "PRINTIFY_CATALOG_CACHE_SECONDS", 86_400))
    return answer


def blueprints(*, search: str = "") -> list[dict[str, Any]]:
    """Printify's blueprints (`id title brand model`), those whose title, brand or model contain `search`."""
    found = _cached("blueprints", lambda client: client.blueprints())
    needle = search.strip().lower()
    return [
        {key: bp.get(key) for key in ("id", "title", "brand", "model")}
        for bp in found
        if not needle or needle in " ".join(str(bp.get(k) or "") for k in ("title", "brand", "model")).lower()
    ]


def print_providers(*, blueprint_id: int) -> list[dict[str, Any]]:
    """The print providers of a blueprint (`id title`)."""
    found = _cached(f"providers:{int(blueprint_id)}",
                    lambda client: client.print_providers(blueprint_id=blueprint_id))
    return [{"id": p.get("id"), "title": p.get("title")} for p in found]


def variants(*, blueprint_id: int, print_provider_id: int) -> list[dict[str, Any]]:
    """A provider's variants of a blueprint: `id title options{color, size…} placeholders[{position, width, height}]`,
    names as Printify gives them."""
    found = _cached(
        f"variants:{int(blueprint_id)}:{int(print_provider_id)}",
        lambda client: client.variants(blueprint_id=blueprint_id, print_provider_id=print_provider_id),
    )
    return [v for v in (found.get("variants") or []) if isinstance(v, dict)]


def print_area(template: ProductTemplate) -> tuple[int, int] | None:
    """The largest print area (width, height in pixels at 300 DPI) of the template's position among its
    variants; None when the template is not Printify's or the catalog cannot be read."""
    if template.platform != Platform.PRINTIFY or not template.blueprint_id or not template.print_provider_id:
        return None
    try:
        rows = variants(blueprint_id=template.blueprint_id, print_provider_id=template.print_provider_id)
    except PrintifyError as exc:
        logger.info("Print area of template %s unknown: %s", template.id, exc.message)
        return None
    wanted = set(template.variant_ids)
    areas = [
        (int(p["width"]), int(p["height"]))
        for v in rows if v.get("id") in wanted
        for p in v.get("placeholders") or []
        if p.get("position") == template.position and p.get("width") and p.get("height")
    ]
    if not areas:
        return None
    return max(w for w, _ in areas), max(h for _, h in areas)


def fit_warnings(*, width: int, height: int, templates: Sequence[ProductTemplate]) -> list[str]:
    """Warnings for a design too small for a template's print area at 300 DPI (see `fit_report`)."""
    return fit_report(width=width, height=height, templates=templates)[0]


def fit_report(*, width: int, height: int, templates: Sequence[ProductTemplate]) -> tuple[list[str], int]:
    """(warnings, how many templates' print areas were known) for a design of `width`×`height` pixels:
    a warning for each template whose print area it is too small for at 300 DPI.

    Printify's `scale` is relative to the area's width: a design placed at scale s spans s × the area's width,
    so it needs that many pixels across to print at 300 DPI (the placeholders' pixels are 300 DPI ones).
    Templates whose area is unknown give no warning.
    """
    warnings, known = [], 0
    for template in templates:
        area = print_area(template)
        if area is None:
            continue
        known += 1
        needed = area[0] * template.scale
        if width < needed:
            dpi = int(PRINT_DPI * width / needed)
            warnings.append(
                f"Too small for {template.name} ({template.position}, {area[0]}×{area[1]} px at {PRINT_DPI} DPI): "
                f"{width}×{height} px prints at about {dpi} DPI"
            )
    return warnings, known
