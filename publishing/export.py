"""The `export` platform: a folder per product (per design and template) for marketplaces without an API."""

from __future__ import annotations

import json
import shutil
from pathlib import Path, PurePath

from django.conf import settings

from publishing.models import Product


def product_export(*, product: Product) -> Path:
    """Write the print file and `listing.json` into EXPORT_DIR/<product id>/; return the folder.

    Written into a temporary folder first and renamed into place, so a folder that exists is complete
    and a re-run after a crash simply writes it again.
    """
    image = product.image
    root = Path(settings.EXPORT_DIR)
    root.mkdir(parents=True, exist_ok=True)
    target = root / product.id
    staging = root / f".{product.id}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    suffix = PurePath(image.file.name).suffix.lower() or ".png"
    print_file = f"design{suffix}"
    with image.file.open("rb") as source, open(staging / print_file, "wb") as out:
        shutil.copyfileobj(source, out, 1024 * 1024)
    price = product.price_cents or 0
    listing = {
        "product_id": product.id,
        "image_id": image.id,
        "title": product.title,
        "description": product.description,
        "tags": list(product.tags),
        "price": {"cents": price, "amount": f"{price // 100}.{price % 100:02d}", "currency": "USD"},
        "print_file": print_file,
        "width": image.width,
        "height": image.height,
        "sha256": image.sha256,
        "prompt": image.prompt,
        # One folder per product: a design exported with several templates has one listing per template.
        "template": {"id": product.template_id, "name": product.template.name if product.template else ""},
    }
    (staging / "listing.json").write_text(json.dumps(listing, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target
