"""The image's admin page in Debian's Chromium: its products with their mockups, and the publish box."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth import get_user_model

from images.models import ImageStatus
from publishing.models import Product, ProductStatus, ProductTemplate
from tests.admin.test_browser import CHROMIUM, signed_in_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"),
]


def test_image_page_shows_products_mockups_and_publish_box_on_a_laptop_screen(
    live_server, transactional_db, make_image
):
    get_user_model().objects.create_superuser(username="boss", password="pw-boss")
    image = make_image(status=ImageStatus.PUBLISHED)
    hoodie = ProductTemplate.objects.create(name="Hoodie", blueprint_id=77, print_provider_id=29,
                                            variant_ids=[32918], is_default=True)
    ProductTemplate.objects.create(name="Tee", blueprint_id=6, print_provider_id=99, variant_ids=[12100])
    # Mockups served by the live server itself: the browser fetches nothing from outside.
    src = f"{live_server.url}/static/admin/img/icon-yes.svg"
    Product.objects.create(image=image, template=hoodie, platform="printify", status=ProductStatus.PUBLISHED,
                           external_id="5f0c", external_url="https://printify.com/app/product-details/5f0c",
                           mockups=[{"src": src, "position": "front", "variant_ids": [32918], "is_default": True},
                                    {"src": src, "position": "back", "variant_ids": [32918], "is_default": False}])
    with signed_in_page(live_server, "boss", width=1366, height=768) as page:
        page.goto(f"{live_server.url}/admin/images/image/{image.pk}/change/")
        if os.environ.get("SCREENSHOT_DIR"):
            page.screenshot(path=f"{os.environ['SCREENSHOT_DIR']}/image-products-1366.png", full_page=True)
        mockups = page.locator("img.pod-mockup")
        assert mockups.count() == 2
        # The mockups load lazily (loading="lazy"), so the page's load event does not wait for them.
        page.wait_for_function("() => [...document.querySelectorAll('img.pod-mockup')]"
                               ".every(img => img.complete && img.naturalWidth > 0)")
        assert page.locator("#pod-publish input[type=checkbox]").count() == 2
        assert page.locator(f"#pod-publish input[value='{hoodie.pk}']").is_checked()
        # No Printify key here: the print areas are unknown, and the page does not claim the design fits.
        assert "Print areas unknown" in page.content()
        width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], "the page scrolls sideways"
