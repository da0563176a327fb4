"""One design published to three templates against the loopback Printify stand-in, beside a bare `requests` loop.

The gateway's run (publish service, then each product's pipeline as the worker runs it) must make exactly
1 upload, 3 creates and 3 publishes (counted at the stand-in), and take at most 1.2x the time of a bare
`requests.Session` making the same calls (the shop look-up, the upload, and per product create, publish
and publishing_succeeded) with the same bodies.
"""

from __future__ import annotations

import base64
import io

import requests
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.test import override_settings
from PIL import Image as PILImage

from benchmarks import Figure, compare, figure

RATIO_LIMIT = 1.2
REPEAT = 5
TEMPLATES = 3
# A print file of the size the stand-in reads in well under a second; the upload body is its base64.
DESIGN_SIZE = (1200, 1200)


def _design_png() -> bytes:
    buffer = io.BytesIO()
    PILImage.effect_noise(DESIGN_SIZE, 64).convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def run() -> list[str]:
    from tests.servers.printify import API_KEY, SHOP_ID, PrintifyStandIn

    stand_in = PrintifyStandIn().start()
    try:
        with override_settings(PRINTIFY_API_URL=stand_in.url, PRINTIFY_API_KEY=API_KEY, PRINTIFY_SHOP_ID=str(SHOP_ID),
                               PRINTIFY_BACKOFF_SECONDS=0.01, PUBLIC_BASE_URL=""):
            return _run(stand_in, SHOP_ID, API_KEY)
    finally:
        stand_in.stop()
        _forget()


def _run(stand_in, shop_id: int, api_key: str) -> list[str]:
    from core.actors import Actor
    from images.models import Image, ImageStatus
    from publishing import pipeline
    from publishing.models import ProductTemplate
    from publishing.services import image_publish_products

    data = _design_png()
    templates = [
        ProductTemplate.objects.create(name="bench hoodie", blueprint_id=77, print_provider_id=29,
                                       variant_ids=[32918, 32919, 32920], price_cents=3499),
        ProductTemplate.objects.create(name="bench tee", blueprint_id=6, print_provider_id=99,
                                       variant_ids=[12100, 12101, 12102], price_cents=2499,
                                       variant_prices={"12102": 2899}),
        ProductTemplate.objects.create(name="bench mug", blueprint_id=68, print_provider_id=1,
                                       variant_ids=[33719], price_cents=1499),
    ]
    counts: list[dict[str, int]] = []
    pending: list[str] = []

    def setup() -> None:
        cache.clear()  # the shop's sales channel and the pacing buckets: both runs start cold
        image = Image(status=ImageStatus.APPROVED, prompt="bench design", width=DESIGN_SIZE[0],
                      height=DESIGN_SIZE[1], format="PNG", sha256=f"{len(pending) + 1:064x}")
        image.file.save(f"bench-publish-{len(pending)}.png", ContentFile(data), save=False)
        image.save()
        pending.append(image.id)

    def ours() -> None:
        stand_in.calls.clear()
        products = image_publish_products(image_id=pending[-1], actor=Actor.system(),
                                          template_ids=[t.id for t in templates])
        for product in products:
            pipeline.product_run(product_id=product.id)
        counts.append({name: stand_in.calls[name] for name in ("upload", "create", "publish")})

    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {api_key}", "User-Agent": "bench", "Accept": "application/json"})
    base = stand_in.url

    def bare() -> None:
        session.get(f"{base}/shops.json").raise_for_status()
        upload = session.post(f"{base}/uploads/images.json", json={
            "file_name": "bench.png", "contents": base64.b64encode(data).decode("ascii")}).json()
        for template in templates:
            body = {
                "title": "bench design", "description": "bench design", "tags": ["pod:bench"],
                "blueprint_id": template.blueprint_id, "print_provider_id": template.print_provider_id,
                "variants": [{"id": v, "price": template.price_cents, "is_enabled": True}
                             for v in template.variant_ids],
                "print_areas": [{"variant_ids": template.variant_ids, "placeholders": [{"position": "front", "images": [
                    {"id": upload["id"], "x": 0.5, "y": 0.5, "scale": 1.0, "angle": 0}]}]}],
            }
            product = session.post(f"{base}/shops/{shop_id}/products.json", json=body).json()
            session.post(f"{base}/shops/{shop_id}/products/{product['id']}/publish.json",
                         json={"title": True}).raise_for_status()
            session.post(f"{base}/shops/{shop_id}/products/{product['id']}/publishing_succeeded.json",
                         json={"external": {"id": "bench", "handle": "https://example.invalid/p"}}).raise_for_status()

    setup()
    ours()  # warm-up: imports, connections, the stand-in's threads
    bare()
    best_ours, best_bare = compare(ours, bare, repeat=REPEAT, setup=setup)
    session.close()
    exact = all(c == {"upload": 1, "create": TEMPLATES, "publish": TEMPLATES} for c in counts)
    lines = [figure(
        f"one design to {TEMPLATES} templates", best_ours / best_bare, RATIO_LIMIT,
        detail=f"vs a bare requests loop ({best_ours * 1000:.0f} ms vs {best_bare * 1000:.0f} ms)",
    )]
    calls = counts[-1]
    line = Figure(f"calls at the stand-in per design: {calls['upload']} upload, {calls['create']} creates, "
                  f"{calls['publish']} publishes" + (" (every run)" if exact else f" OVER LIMIT: {counts}"))
    line.over_limit = not exact
    lines.append(line)
    return lines


def _forget() -> None:
    from images.models import Image
    from publishing.models import ProductTemplate

    for image in Image.objects.filter(prompt="bench design"):
        image.file.delete(save=False)
        image.delete()
    ProductTemplate.objects.filter(name__startswith="bench ").delete()
