"""The review workspace (/admin/review/): decisions by keyboard in Debian's Chromium, and its JSON endpoints.

The browser tests share one Chromium per module (a context per reviewer) and check every decision
through the API and the history; axe-core, installed from package-lock.json by `npm ci`, audits the
page and the lightbox.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Group, Permission
from django.test import Client

from images.intake import image_intake
from images.models import Generation, Image, ImageSource, ImageTransition, QuickRejectReason
from images.models import ImageStatus as S
from images.review import UNDO_NOTE
from publishing.review import workspace
from tests.admin.test_browser import design
from tests.conftest import make_user

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
REASONS = ["Blurry or soft focus", "Garbled text or lettering"]
REVIEWER_PERMS = {"view_image", "review_image", "change_image", "delete_image", "view_generation",
                  "view_quickrejectreason", "change_quickrejectreason"}
PROMPTS = ["Neon fox in a retro sunset", "Geometric owl sticker", "Mountain range at dusk", "Cosmic cat astronaut",
           "Botanical line art", "Surfing skeleton"]
# Expectations wait at most this long (ms) for the page; a working page answers in a few.
WAIT = 10_000

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed at /usr/bin/chromium (apt-get install -y chromium); "
    "the browser tests need it and never download a browser",
)


# --- Fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _room(settings):
    # Limits have their own tests; here every login and decision comes from one address and few users.
    settings.ADMIN_LOGIN_RATE = (100_000, 300)
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "approval": (100_000, 3600), "publishing": (100_000, 3600)}


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread while the browser is open; the ORM calls
    # between pages (and the database flush after each test) are still plain synchronous calls.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def axe_source() -> str:
    """axe-core's script, installed from the lockfile the first time (`npm ci --ignore-scripts`)."""
    if not AXE.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed, so axe-core (package-lock.json) cannot be installed for the audit")
        subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=ROOT, check=True,
                       timeout=300, capture_output=True)
    return AXE.read_text()


@pytest.fixture
def roles(transactional_db):
    """Reviewers and publishers with their permissions, and the quick reasons.

    A live-server test flushes the database afterwards, dropping what the migrations made; so it is made here.
    """
    reviewers, _ = Group.objects.get_or_create(name="reviewers")
    reviewer_perms = Permission.objects.filter(content_type__app_label="images", codename__in=REVIEWER_PERMS)
    reviewers.permissions.add(*reviewer_perms)
    publishers, _ = Group.objects.get_or_create(name="publishers")
    publishers.permissions.add(*reviewer_perms, *Permission.objects.filter(
        content_type__app_label="publishing", codename__in=["publish_image", "view_product"]))
    QuickRejectReason.objects.all().delete()
    for position, text in enumerate(REASONS, start=1):
        QuickRejectReason.objects.create(text=text, position=position)


def sign_in(chromium, live_server, username: str):
    """A browser context signed in as `username` (password `pw-<username>`), on the review workspace."""
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT)
    page.goto(f"{live_server.url}/admin/login/?next=/admin/review/")
    page.fill("#id_username", username)
    page.fill("#id_password", f"pw-{username}")
    page.click("input[type=submit]")
    page.wait_for_selector("#pod-tiles [data-image-id]")
    return context, page


def focused_id(page) -> str | None:
    return page.evaluate("() => document.activeElement && document.activeElement.dataset.imageId || null")


def tile(page, image: Image):
    return page.locator(f"[data-image-id='{image.pk}']")


def api_image(context, live_server, image: Image) -> dict:
    """The image as the signed-in user reads it from the API."""
    response = context.request.get(f"{live_server.url}/api/v2/images/{image.pk}")
    assert response.ok, response.text()
    return response.json()


def serious_violations(page, axe_source: str) -> list[str]:
    # The admin's links fade their colour (a CSS transition): a colour scheme just switched is measured
    # once the fades have ended, not halfway.
    page.wait_for_function("() => document.getAnimations().every(a => a.playState !== 'running')")
    page.add_script_tag(content=axe_source)
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"] if v["impact"] in ("serious", "critical")
    ]


def history(data: dict) -> list[tuple[str, str, str, str, str]]:
    return [(h["from_status"], h["to_status"], h["actor"], h["via"], h["note"]) for h in data["history"]]


# --- Browser -------------------------------------------------------------------------------------------


@pytest.mark.browser
@needs_chromium
def test_a_reviewer_decides_a_queue_by_keyboard_alone(chromium, axe_source, live_server, roles):
    from playwright.sync_api import expect

    make_user("alice", "reviewers", is_staff=True)
    # Real intake (hash, thumbnail, quality report) of designs with some structure: the README's screenshot.
    sizes = [(2400, 2880, 300), (1200, 1440, 300), (2400, 2880, 72), (600, 720, None), (2400, 2880, 300),
             (900, 1080, 150)]
    images = [
        image_intake(source=design(n, width, height, dpi), filename=f"design-{n}.png",
                     source_kind=ImageSource.UPLOADED, prompt=f"{PROMPTS[n]}, vintage t-shirt design")
        for n, (width, height, dpi) in enumerate(sizes)
    ]
    screenshots = os.environ.get("SCREENSHOT_DIR")
    context, page = sign_in(chromium, live_server, "alice")
    try:
        expect(page.locator("#pod-tiles [data-image-id]")).to_have_count(6)
        expect(page.locator("h1")).to_contain_text("6 images waiting")
        assert focused_id(page) == images[0].pk
        expect(tile(page, images[0])).to_have_attribute("aria-selected", "true")
        assert page.locator("#pod-tiles [data-image-id]").first.bounding_box()["width"] >= 256
        assert serious_violations(page, axe_source) == []

        page.keyboard.press("?")
        expect(page.locator("#pod-help")).to_be_visible()
        expect(page.locator("#pod-help")).to_contain_text("Undo the last decision")
        page.keyboard.press("Escape")
        expect(page.locator("#pod-help")).to_be_hidden()

        page.keyboard.press("a")
        expect(tile(page, images[0])).to_have_attribute("data-state", "approved")
        assert focused_id(page) == images[1].pk

        page.keyboard.press("r")
        expect(page.locator("#pod-reject")).to_be_visible()
        page.keyboard.press("1")
        expect(tile(page, images[1])).to_have_attribute("data-state", "rejected")
        assert focused_id(page) == images[2].pk

        page.keyboard.press("r")
        page.keyboard.type("colours too dull")
        page.keyboard.press("Enter")
        expect(tile(page, images[2])).to_have_attribute("data-state", "rejected")
        assert focused_id(page) == images[3].pk

        page.keyboard.press("u")
        expect(tile(page, images[2])).to_have_attribute("data-state", "pending")
        expect(page.locator("#pod-review-status")).to_contain_text("Undone")
        assert focused_id(page) == images[2].pk

        # Bulk: select 2, move two to the right, shift+x takes the range 2–4, approve the three at once.
        page.keyboard.press("x")
        page.keyboard.press("l")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Shift+X")
        expect(page.locator("#pod-tiles [aria-checked='true']")).to_have_count(3)
        if screenshots:
            page.screenshot(path=f"{screenshots}/review-workspace.png")
        page.keyboard.press("a")
        for image in images[2:5]:
            expect(tile(page, image)).to_have_attribute("data-state", "approved")
        assert focused_id(page) == images[5].pk

        page.keyboard.press(" ")
        expect(page.locator("#pod-lightbox")).to_be_visible()
        photo = page.locator("#pod-lightbox-img")
        assert photo.get_attribute("src").endswith(f"/admin/images/image/{quote(images[5].pk)}/file/")
        page.wait_for_function("() => document.getElementById('pod-lightbox-img').naturalWidth > 0")
        page.keyboard.press("+")
        assert "scale(1.5)" in photo.get_attribute("style")
        assert serious_violations(page, axe_source) == []
        page.keyboard.press(" ")
        expect(page.locator("#pod-lightbox")).to_be_hidden()
        assert focused_id(page) == images[5].pk
        # Decided, refused and selected tiles keep their contrast in the admin's dark theme too.
        page.keyboard.press("x")
        page.emulate_media(color_scheme="dark")
        assert serious_violations(page, axe_source) == []
        page.emulate_media(color_scheme="light")

        # Every decision, as the API reports it: through the admin, by alice, with what she picked or typed.
        statuses = [api_image(context, live_server, image)["status"] for image in images]
        assert statuses == [S.APPROVED, S.REJECTED, S.APPROVED, S.APPROVED, S.APPROVED, S.PENDING]
        assert history(api_image(context, live_server, images[0])) == [("pending", "approved", "alice", "admin", "")]
        assert history(api_image(context, live_server, images[1])) == [
            ("pending", "rejected", "alice", "admin", REASONS[0])]
        assert history(api_image(context, live_server, images[2])) == [
            ("pending", "rejected", "alice", "admin", "colours too dull"),
            ("rejected", "pending", "alice", "admin", UNDO_NOTE),
            ("pending", "approved", "alice", "admin", ""),
        ]
        for image in images[3:5]:
            assert history(api_image(context, live_server, image)) == [("pending", "approved", "alice", "admin", "")]
    finally:
        context.close()


@pytest.mark.browser
@needs_chromium
def test_a_publisher_publishes_with_p_and_a_reviewer_has_no_p(chromium, live_server, roles, queue_image):
    from playwright.sync_api import expect

    from publishing.models import ProductTemplate

    make_user("pat", "publishers", is_staff=True)
    make_user("alice", "reviewers", is_staff=True)
    template = ProductTemplate.objects.create(name="Export tee", platform="export", is_default=True,
                                              price_cents=2500)
    first, second = queue_image(prompt="retro sunset cat"), queue_image(prompt="retro sunset dog")

    context, page = sign_in(chromium, live_server, "pat")
    try:
        expect(page.locator("[data-command=publish]")).to_be_visible()
        assert focused_id(page) == first.pk
        page.keyboard.press("p")
        expect(tile(page, first)).to_have_attribute("data-state", "publishing")
        assert focused_id(page) == second.pk
        published = api_image(context, live_server, first)
        assert published["status"] in (S.PUBLISHING, S.PUBLISHED)
        assert history(published)[:2] == [
            ("pending", "approved", "pat", "admin", ""),
            ("approved", "publishing", "pat", "admin", f"template {template.name}"),
        ]
        products = context.request.get(f"{live_server.url}/api/v2/products?image={first.pk}").json()["results"]
        assert [product["template"] for product in products] == [template.pk]
    finally:
        context.close()

    context, page = sign_in(chromium, live_server, "alice")
    try:
        expect(page.locator("[data-command=approve]")).to_be_visible()
        expect(page.locator("[data-command=publish]")).to_have_count(0)
        assert focused_id(page) == second.pk
        page.keyboard.press("p")
        expect(tile(page, second)).to_have_attribute("data-state", "pending")
        page.keyboard.press("?")
        expect(page.locator("#pod-help")).not_to_contain_text("publish")
        token = page.locator("#pod-review input[name=csrfmiddlewaretoken]").input_value()
        refused = context.request.post(
            f"{live_server.url}/admin/review/decide/", headers={"X-CSRFToken": token},
            data=json.dumps({"action": "publish", "image_ids": [second.pk]}),
        )
        assert refused.status == 403 and refused.json()["code"] == "FORBIDDEN"
        assert api_image(context, live_server, second)["status"] == S.PENDING
    finally:
        context.close()


@pytest.mark.browser
@needs_chromium
def test_the_second_reviewer_on_the_same_image_sees_the_conflict(chromium, axe_source, live_server, roles,
                                                                  queue_image, make_generation, settings):
    from playwright.sync_api import expect

    make_user("alice", "reviewers", is_staff=True)
    make_user("bob", "reviewers", is_staff=True)
    batch = make_generation(prompt="owl sticker")
    contested, other, third = (queue_image(prompt="owl sticker", generation=batch, batch_index=n) for n in range(3))
    alice_context, alice = sign_in(chromium, live_server, "alice")
    bob_context, bob = sign_in(chromium, live_server, "bob")
    try:
        assert focused_id(alice) == focused_id(bob) == contested.pk
        alice.keyboard.press("a")
        expect(tile(alice, contested)).to_have_attribute("data-state", "approved")

        bob.keyboard.press("r")
        bob.keyboard.press("2")
        refused = tile(bob, contested)
        expect(refused).to_have_class("pod-tile is-refused")
        expect(refused).to_contain_text("approved by alice (admin)")
        expect(refused).to_have_attribute("data-state", "approved")
        # Bob lost nothing: his focus went on, and the other image is still his to decide.
        assert focused_id(bob) == other.pk
        bob.keyboard.press("a")
        expect(tile(bob, other)).to_have_attribute("data-state", "approved")

        # Over the approval limit: the tile says so, and the image is still there to decide.
        settings.RATE_LIMITS = {**settings.RATE_LIMITS, "approval": (1, 3600)}
        assert focused_id(bob) == third.pk
        bob.keyboard.press("a")
        expect(tile(bob, third)).to_contain_text("Rate limit reached")
        expect(tile(bob, third)).to_have_attribute("data-state", "pending")
        assert api_image(bob_context, live_server, third)["status"] == S.PENDING

        # The generation view: the batch side by side, whatever each image's status.
        bob.keyboard.press("g")
        bob.wait_for_url(f"**/admin/review/generation/{batch.pk}/")
        expect(bob.locator("#pod-tiles [data-image-id]")).to_have_count(3)
        expect(tile(bob, contested)).to_have_attribute("data-state", "approved")
        assert focused_id(bob) == third.pk
        assert serious_violations(bob, axe_source) == []

        assert api_image(bob_context, live_server, contested)["status"] == S.APPROVED
        assert history(api_image(bob_context, live_server, contested)) == [
            ("pending", "approved", "alice", "admin", "")]
        assert history(api_image(bob_context, live_server, other)) == [("pending", "approved", "bob", "admin", "")]
    finally:
        alice_context.close()
        bob_context.close()


# --- The JSON endpoints, without a browser ------------------------------------------------------------


@pytest.fixture
def alice(db) -> Client:
    client = Client()
    client.force_login(make_user("alice", "reviewers", is_staff=True))
    return client


def decide(client: Client, body, **extra):
    payload = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post("/admin/review/decide/", payload, content_type="application/json", **extra)


def test_decisions_are_refused_with_coded_errors_and_change_nothing(alice, make_image):
    image = make_image()
    cases = [
        ("{not json", 400, "MALFORMED_REQUEST"),
        ("[" * 100_000 + "]" * 100_000, 400, "MALFORMED_REQUEST"),
        (b"\xff\xfe", 400, "MALFORMED_REQUEST"),
        ([image.pk], 400, "MALFORMED_REQUEST"),
        ({"action": "promote", "image_ids": [image.pk]}, 400, "VALIDATION_ERROR"),
        ({"action": "approve", "image_ids": []}, 400, "VALIDATION_ERROR"),
        ({"action": "approve", "image_ids": [7]}, 400, "VALIDATION_ERROR"),
        ({"action": "reject", "image_ids": [image.pk], "reason": "x" * 1001}, 400, "VALIDATION_ERROR"),
        ({"action": "reject", "image_ids": [image.pk], "reason": ["no"]}, 400, "VALIDATION_ERROR"),
        ({"action": "publish", "image_ids": [image.pk]}, 403, "FORBIDDEN"),
    ]
    for body, status, code in cases:
        response = decide(alice, body)
        assert (response.status_code, response.json()["code"]) == (status, code), body
    assert Image.objects.get(pk=image.pk).status == S.PENDING
    assert not ImageTransition.objects.exists()


def test_a_decision_needs_the_csrf_token_and_the_review_permission(db, make_image):
    image = make_image()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(make_user("alice", "reviewers", is_staff=True))
    assert decide(strict, {"action": "approve", "image_ids": [image.pk]}).status_code == 403
    looker = Client()
    looker.force_login(make_user("looker", "clients", is_staff=True))
    response = decide(looker, {"action": "approve", "image_ids": [image.pk]})
    assert (response.status_code, response.json()["code"]) == (403, "FORBIDDEN")
    assert Image.objects.get(pk=image.pk).status == S.PENDING


def test_over_the_approval_limit_a_decision_is_refused_and_nothing_changes(alice, make_image, settings):
    settings.REDIS_URL = ""  # the database log, fresh in every test
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "approval": (1, 3600)}
    first, second = make_image(), make_image()
    assert decide(alice, {"action": "approve", "image_ids": [first.pk]}).status_code == 200
    refused = decide(alice, {"action": "approve", "image_ids": [second.pk]})
    assert refused.status_code == 429
    assert refused.json()["code"] == "RATE_LIMIT_EXCEEDED" and int(refused["Retry-After"]) > 0
    assert Image.objects.get(pk=second.pk).status == S.PENDING


def test_a_refused_decision_says_who_decided_first(alice, make_image):
    image = make_image()
    bob = Client()
    bob.force_login(make_user("bob", "reviewers", is_staff=True))
    assert decide(alice, {"action": "approve", "image_ids": [image.pk]}).json()["results"][0]["ok"] is True
    (result,) = decide(bob, {"action": "reject", "image_ids": [image.pk], "reason": "dull"}).json()["results"]
    assert result["ok"] is False and result["code"] == "invalid_transition"
    assert result["status"] == S.APPROVED
    assert "approved by alice (admin)" in result["decided_by"]
    assert Image.objects.get(pk=image.pk).status == S.APPROVED


def test_bulk_decisions_and_their_undo_are_recorded_set_wise(alice, make_image):
    images = [make_image() for _ in range(3)]
    ids = [image.pk for image in images]
    body = decide(alice, {"action": "reject", "image_ids": ids, "reason": "Blurry or soft focus"}).json()
    assert [r["ok"] for r in body["results"]] == [True, True, True]
    body = decide(alice, {"action": "undo", "image_ids": ids}).json()
    assert {r["status"] for r in body["results"]} == {S.PENDING}
    rows = ImageTransition.objects.filter(image_id__in=ids).order_by("id")
    assert [(r.to_status, r.note, r.actor_label, r.via) for r in rows] == (
        [(S.REJECTED, "Blurry or soft focus", "alice", "admin")] * 3 + [(S.PENDING, UNDO_NOTE, "alice", "admin")] * 3
    )


def test_the_queue_pages_by_keyset_and_filters(alice, make_image, monkeypatch):
    monkeypatch.setattr(workspace, "page_size", 2)
    pending = [make_image(quality_valid=n != 3) for n in range(5)]
    make_image(S.APPROVED)
    seen, cursor = [], None
    page = alice.get("/admin/review/")
    assert page.status_code == 200
    assert "5 images waiting" in page.content.decode()
    config = json.loads(page.content.decode().split('id="pod-review-config" type="application/json">')[1]
                        .split("</script>")[0])
    seen += [t["id"] for t in config["tiles"]]
    cursor = config["next"]
    while cursor:
        body = alice.get("/admin/review/tiles/", {"after": cursor}).json()
        seen += [t["id"] for t in body["tiles"]]
        cursor = body["next"]
    assert seen == [image.pk for image in pending]
    errors = alice.get("/admin/review/tiles/", {"quality": "errors"}).json()["tiles"]
    assert [t["id"] for t in errors] == [pending[3].pk] and errors[0]["quality"]["level"] == "error"
    for bad in ({"after": "yesterday"}, {"quality": "great"}):
        response = alice.get("/admin/review/tiles/", bad)
        assert (response.status_code, response.json()["code"]) == (400, "VALIDATION_ERROR")


def test_the_generation_view_shows_every_image_of_one_prompt(alice, make_image):
    generation = Generation.objects.create(prompt="retro sunset cat", backend="procedural", prompt_hash="a" * 64,
                                           params={})
    batch = [make_image(status, generation=generation, batch_index=n)
             for n, status in enumerate([S.PENDING, S.APPROVED, S.REJECTED])]
    make_image(prompt="another prompt")
    page = alice.get(f"/admin/review/generation/{generation.pk}/")
    assert page.status_code == 200
    for image in batch:
        assert f'"id": "{image.pk}"' in page.content.decode()
    assert page.content.decode().count('"file_url"') == 3


def test_quick_reasons_ship_with_defaults_and_are_edited_in_the_admin(alice):
    assert QuickRejectReason.objects.count() >= 5
    assert alice.get("/admin/images/quickrejectreason/").status_code == 200
    assert "Blurry or soft focus" in alice.get("/admin/review/").content.decode()
