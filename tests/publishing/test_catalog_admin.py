"""Templates built from Printify's catalog in the admin: search, provider, variants by colour and size, prices."""

from __future__ import annotations

import pytest

from core.actors import Actor
from publishing.models import ProductTemplate
from publishing.services import image_publish_products
from tests.publishing.conftest import run_worker

pytestmark = pytest.mark.django_db
CATALOG = "/admin/publishing/producttemplate/catalog/"


def test_a_publisher_builds_a_template_from_the_catalog_with_per_size_prices(printify, client, superuser, approved):
    client.force_login(superuser)
    assert "Build from Printify" in client.get("/admin/publishing/producttemplate/").content.decode()

    found = client.get(CATALOG, {"search": "cotton tee"}).content.decode()
    assert "Unisex Heavy Cotton Tee" in found and "Hooded Sweatshirt" not in found
    providers = client.get(CATALOG, {"blueprint": 6}).content.decode()
    assert "Printify Choice" in providers and "provider=99" in providers
    form = client.get(CATALOG, {"blueprint": 6, "provider": 99}).content.decode()
    for label in ("White / M", "White / 2XL", "Black / M", "2XL surcharge"):
        assert label in form  # Printify's own names
    calls = dict(printify.calls)

    response = client.post(f"{CATALOG}?blueprint=6&provider=99", {
        "name": "Tee from the catalog", "variants": ["12100", "12102"], "position": "front", "price_cents": "2499",
        "title_template": "{prompt} tee", "surcharge_2xl": "400", "is_default": "on",
    })
    assert response.status_code == 302, response.content.decode()[-2000:]
    template = ProductTemplate.objects.get(name="Tee from the catalog")
    assert (template.blueprint_id, template.print_provider_id, template.variant_ids) == (6, 99, [12100, 12102])
    assert template.price_cents == 2499 and template.variant_prices == {"12102": 2899} and template.is_default
    # The form's pages came from the cache after the first look-up of each.
    assert all(printify.calls[name] == calls[name] for name in ("blueprints", "providers", "variants"))

    (image,) = approved()
    (product,) = image_publish_products(image_id=image.id, actor=Actor.system())
    run_worker()
    product.refresh_from_db()
    assert [(v["id"], v["price"]) for v in printify.products[product.external_id]["variants"]] == [
        (12100, 2499), (12102, 2899)]


def test_the_catalog_form_refuses_no_variants_and_shows_an_unreadable_catalog(printify, client, superuser):
    client.force_login(superuser)
    response = client.post(f"{CATALOG}?blueprint=6&provider=99", {"name": "x", "position": "front",
                                                                   "price_cents": "100", "title_template": "{prompt}"})
    assert response.status_code == 200 and "Tick at least one variant" in response.content.decode()
    assert not ProductTemplate.objects.exists()
    page = client.get(CATALOG, {"blueprint": 999}).content.decode()
    assert "No blueprint 999" in page


def test_the_image_page_publishes_to_several_templates_and_lists_products_with_mockups(
    printify, client, superuser, approved, hoodie
):
    import re

    tee = ProductTemplate.objects.create(name="Tee", blueprint_id=6, print_provider_id=99, variant_ids=[12100],
                                         is_default=True)
    mug = ProductTemplate.objects.create(name="Mug", blueprint_id=68, print_provider_id=1, variant_ids=[33719])
    (image,) = approved()
    client.force_login(superuser)
    page_url = f"/admin/images/image/{image.id}/change/"
    html = client.get(page_url).content.decode()
    assert 'id="pod-publish"' in html
    for template, ticked in ((hoodie, True), (tee, True), (mug, False)):
        assert bool(re.search(rf'value="{template.pk}"[^>]* checked', html)) is ticked, template.name

    response = client.post(f"/admin/images/image/{image.id}/publish/", {"templates": [hoodie.pk, mug.pk]})
    assert response.status_code == 302
    run_worker()
    image.refresh_from_db()
    assert image.status == "published"
    products = list(image.products.all())
    assert sorted(p.template_id for p in products) == sorted([hoodie.pk, mug.pk])
    html = client.get(page_url).content.decode()
    for product in products:
        assert product.pk in html and product.mockups and product.mockups[0]["src"] in html
        assert product.external_url in html
    # Published: still offered, for the templates it is not live on yet.
    assert 'id="pod-publish"' in html
