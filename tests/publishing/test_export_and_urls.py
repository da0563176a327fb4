"""The export platform, and uploads by signed URL when PUBLIC_BASE_URL is set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from core.actors import Actor, Via
from images.models import ImageStatus
from publishing.models import Product, ProductStatus, ProductTemplate
from publishing.pipeline import print_file_url
from publishing.services import image_publish, images_publish
from tests.publishing.conftest import run_worker


def published_count(platform: str) -> float:
    return REGISTRY.get_sample_value("pod_products_published_total", {"platform": platform}) or 0.0


@pytest.mark.django_db
def test_export_writes_print_file_and_listing(approved, settings, publisher, django_capture_on_commit_callbacks):
    template = ProductTemplate.objects.create(
        name="Redbubble export", platform="export", price_cents=2550, title_template="{prompt} ({style})",
        description_template="Art: {prompt}", tags=["cat", "retro"],
    )
    (image,) = approved(prompt="retro sunset cat")
    before = published_count("export")
    images_publish(image_ids=[image.id], actor=Actor(publisher, Via.API), template_id=template.id)
    with django_capture_on_commit_callbacks(execute=True):
        run_worker()

    product = Product.objects.get(image=image)
    image.refresh_from_db()
    assert product.status == ProductStatus.PUBLISHED and image.status == ImageStatus.PUBLISHED
    folder = Path(settings.EXPORT_DIR) / product.id
    assert product.external_id == product.id
    with image.file.open("rb") as handle:
        assert (folder / "design.png").read_bytes() == handle.read()
    listing = json.loads((folder / "listing.json").read_text())
    assert listing["title"] == "retro sunset cat ()"
    assert listing["description"] == "Art: retro sunset cat"
    assert listing["tags"] == ["cat", "retro"]
    assert listing["price"] == {"cents": 2550, "amount": "25.50", "currency": "USD"}
    assert not list(Path(settings.EXPORT_DIR).glob(".*partial"))
    assert published_count("export") == before + 1


@pytest.mark.django_db(transaction=True)
def test_upload_by_signed_url_when_public_base_url_is_set(printify, hoodie, approved, settings, live_server):
    # Transactional tests run after a flush that removed the role groups: act as the command line.
    settings.PUBLIC_BASE_URL = live_server.url
    (image,) = approved()
    product = image_publish(image_id=image.id, actor=Actor(None, Via.COMMAND))
    run_worker()
    product.refresh_from_db()
    assert product.status == ProductStatus.PUBLISHED, product.error
    body = next(body for name, body in printify.requests if name == "upload")
    assert "contents" not in body and body["url"].startswith(live_server.url + "/print-files/")
    # The stand-in fetched the file through that URL, as Printify does.
    assert printify.uploads[product.external_upload_id]["size"] == image.file.size


@pytest.mark.django_db
def test_print_file_url_is_signed(client, approved, settings):
    settings.PUBLIC_BASE_URL = "http://testserver"
    (image,) = approved()
    url = print_file_url(image_id=image.id, file_name=f"{image.id}.png").removeprefix("http://testserver")
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    token = url.split("/")[2]
    forged = url.replace(token, token[:-2] + ("aa" if not token.endswith("aa") else "bb"))
    assert client.get(forged).status_code == 404


def test_export_to_two_templates_writes_a_folder_and_listing_per_template(approved, settings, publisher):
    from publishing.services import image_publish_products  # noqa: PLC0415

    poster = ProductTemplate.objects.create(name="Poster export", platform="export", price_cents=1500,
                                            title_template="{prompt} poster")
    sticker = ProductTemplate.objects.create(name="Sticker export", platform="export", price_cents=400,
                                             title_template="{prompt} sticker")
    (image,) = approved(prompt="retro sunset cat")
    products = image_publish_products(image_id=image.id, actor=Actor(publisher, Via.API),
                                      template_ids=[poster.id, sticker.id])
    run_worker()
    listings = {}
    for product in products:
        listing = json.loads((Path(settings.EXPORT_DIR) / product.id / "listing.json").read_text())
        listings[listing["template"]["name"]] = (listing["title"], listing["price"]["cents"])
    assert listings == {"Poster export": ("retro sunset cat poster", 1500),
                        "Sticker export": ("retro sunset cat sticker", 400)}
    image.refresh_from_db()
    assert image.status == ImageStatus.PUBLISHED
