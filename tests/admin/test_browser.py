"""A reviewer clears the queue in a real browser: Debian's Chromium driven by Playwright, against a live server."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from PIL import Image as PILImage
from PIL import ImageDraw

from images.intake import image_intake
from images.models import Image, ImageSource, ImageTransition
from images.models import ImageStatus as S
from tests.conftest import make_user

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
REVIEWER_PERMS = {"view_image", "review_image", "change_image", "delete_image", "add_generation", "view_generation"}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed at /usr/bin/chromium (apt-get install -y chromium); "
        "the browser test needs it and never downloads a browser",
    ),
]


@contextmanager
def signed_in_page(live_server, username: str, *, width: int, height: int) -> Iterator:
    """A Chromium page of the given size, signed in to the admin as `username` (password `pw-<username>`)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(f"{live_server.url}/admin/")
            page.fill("#id_username", username)
            page.fill("#id_password", f"pw-{username}")
            page.click("input[type=submit]")
            yield page
        finally:
            browser.close()


@pytest.fixture(autouse=True)
def _login_rate_room(settings):
    # Every browser login comes from 127.0.0.1, and the login counters outlive the run (files in DATA_DIR
    # or Redis): without room, the sixth run within five minutes would be refused. Limits have their own tests.
    settings.ADMIN_LOGIN_RATE = (100_000, 300)


@pytest.fixture
def browser_reviewer(transactional_db):
    # A live-server test flushes the database afterwards, which drops the groups made by the roles
    # migration; an earlier such test may already have done so, so the group is ensured here.
    group, _ = Group.objects.get_or_create(name="reviewers")
    group.permissions.add(*Permission.objects.filter(content_type__app_label="images", codename__in=REVIEWER_PERMS))
    return make_user("alice", "reviewers", is_staff=True)


def design(seed: int, width: int, height: int, dpi: int | None) -> io.BytesIO:
    """A small picture with some structure, so thumbnails look like designs in screenshots."""
    picture = PILImage.new("RGB", (width, height), (20 + seed * 40 % 200, 30, 90 + seed * 25 % 160))
    draw = ImageDraw.Draw(picture)
    for ring in range(6):
        inset = ring * width // 14
        colour = ((seed * 70 + ring * 40) % 256, (ring * 50) % 256, (200 - seed * 30) % 256)
        draw.ellipse([inset, inset + height // 10, width - inset, height - inset - height // 10], fill=colour)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", **({"dpi": (dpi, dpi)} if dpi else {}))
    buffer.seek(0)
    return buffer


def test_reviewer_logs_in_approves_and_rejects_with_a_reason(live_server, browser_reviewer, make_image):
    from playwright.sync_api import expect

    def intake(n: int, prompt: str, width: int, height: int, dpi: int | None = None) -> Image:
        return image_intake(source=design(n, width, height, dpi), filename=f"design-{n}.png",
                            source_kind=ImageSource.UPLOADED, prompt=prompt)

    to_approve = [intake(n, f"neon fox in a retro sunset, variation {n}", 2400, 2880, 300) for n in range(3)]
    to_reject = [intake(n + 3, f"blurry owl sticker {n}", 600, 720) for n in range(2)]
    untouched = make_image(S.APPROVED, prompt="already approved")
    screenshots = os.environ.get("SCREENSHOT_DIR")

    with signed_in_page(live_server, "alice", width=1440, height=900) as page:
        expect(page.locator(".pod-queue-callout")).to_contain_text("5 images waiting for review")
        if screenshots:
            page.screenshot(path=f"{screenshots}/index.png", full_page=True)

        page.click("text=Open the review queue")
        expect(page.locator("#result_list tbody tr")).to_have_count(5)
        expect(page.locator("#result_list img.pod-thumb").first).to_be_visible()
        # The thumbnails load lazily: wait for the first one to arrive, then check it decoded.
        first_thumb = page.locator("#result_list img.pod-thumb").first.element_handle()
        page.wait_for_function("img => img.complete", arg=first_thumb)
        assert first_thumb.evaluate("img => img.naturalWidth") > 0
        page.goto(f"{live_server.url}/admin/images/image/")
        if screenshots:
            page.screenshot(path=f"{screenshots}/queue.png", full_page=True)

        for image in to_approve:
            page.check(f"input.action-select[value='{image.pk}']")
        page.select_option("select[name=action]", "approve_images")
        page.click("button[name=index]")
        expect(page.locator(".messagelist")).to_contain_text("Approved 3 images")

        for image in to_reject:
            page.check(f"input.action-select[value='{image.pk}']")
        page.select_option("select[name=action]", "reject_images")
        page.click("button[name=index]")
        expect(page.locator("h1")).to_have_text("Reject images")
        if screenshots:
            page.screenshot(path=f"{screenshots}/reject.png", full_page=True)
        page.fill("textarea[name=reason]", "soft focus, not print-ready")
        page.click("#pod-action-form input[type=submit]")
        expect(page.locator(".messagelist")).to_contain_text("Rejected 2 images")
        if screenshots:
            page.screenshot(path=f"{screenshots}/after.png", full_page=True)
            page.goto(f"{live_server.url}/admin/images/image/{quote(to_reject[0].pk)}/change/")
            page.screenshot(path=f"{screenshots}/image.png", full_page=True)
            page.goto(f"{live_server.url}/admin/images/generation/add/")
            page.screenshot(path=f"{screenshots}/start.png", full_page=True)

    assert {i.status for i in Image.objects.filter(pk__in=[i.pk for i in to_approve])} == {S.APPROVED}
    assert {i.status for i in Image.objects.filter(pk__in=[i.pk for i in to_reject])} == {S.REJECTED}
    assert Image.objects.get(pk=untouched.pk).status == S.APPROVED
    rejections = ImageTransition.objects.filter(to_status=S.REJECTED)
    assert {(t.note, t.actor_label, t.via) for t in rejections} == {("soft focus, not print-ready", "alice", "admin")}
    assert rejections.count() == 2


def test_queue_and_products_fit_a_laptop_screen(live_server, transactional_db, queue_image, make_generation):
    """At 1366×768 every column of the queue and the product list is on screen, without sideways scrolling."""

    from publishing.models import Product, ProductStatus, ProductTemplate

    User = get_user_model()
    User.objects.create_superuser(username="boss", password="pw-boss")
    generation = make_generation(prompt="A retro sunset over mountains, vintage t-shirt design")
    template = ProductTemplate.objects.create(name="Gildan 18500 hoodie, front, $34.99", blueprint_id=77,
                                              print_provider_id=29, variant_ids=[32918], price_cents=3499)
    for n in range(3):
        image = queue_image(prompt=generation.prompt, generation=generation, batch_index=n,
                            warnings=["DPI under 300"] if n else ())
        if n == 0:
            image.status = S.PUBLISHED
            image.save(update_fields=["status"])
            Product.objects.create(image=image, template=template, platform="printify",
                                   status=ProductStatus.PUBLISHED, external_id="5f0c1a2b3c4d5e6f7a8b9c0d",
                                   external_url="https://printify.com/app/product-details/5f0c1a2b3c4d5e6f7a8b9c0d")
    screenshots = os.environ.get("SCREENSHOT_DIR")

    with signed_in_page(live_server, "boss", width=1366, height=768) as page:
        for name, path in [("queue-1366", "/admin/images/image/"), ("products-1366", "/admin/publishing/product/")]:
            page.goto(f"{live_server.url}{path}")
            if screenshots:
                page.screenshot(path=f"{screenshots}/{name}.png")
            overflow = page.evaluate(
                "() => { const r = document.querySelector('#changelist-form .results');"
                " return [r.scrollWidth, r.clientWidth, document.documentElement.scrollWidth, window.innerWidth]; }"
            )
            assert overflow[0] <= overflow[1] and overflow[2] <= overflow[3], f"{path} scrolls sideways: {overflow}"
            last_header = page.locator("#result_list thead th").last
            box = last_header.bounding_box()
            assert box is not None and box["x"] + box["width"] <= 1366, f"{path}: last column off screen"
