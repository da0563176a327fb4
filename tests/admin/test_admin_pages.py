"""Generations started from the admin, and the browsable products, templates and webhooks."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.utils import quote
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from images.models import Generation, GenerationStatus
from images.models import ImageStatus as S
from publishing.models import Product, ProductStatus, ProductTemplate
from tests.plans import plan
from webhooks.models import WebhookEvent, WebhookSubscription

pytestmark = pytest.mark.django_db

START = "/admin/images/generation/add/"


def admin_url(name: str, pk: str) -> str:
    return reverse(f"admin:{name}", args=[quote(pk)])


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def start_form(**overrides) -> dict:
    data = {"prompt": "a retro sunset cat", "batch_size": "2", "width": "1024", "height": "1024", "steps": "20",
            "guidance": "3.5", "seed": "", "backend": "procedural"}
    return {**data, **overrides}


# --- Generations -------------------------------------------------------------------------------


def test_start_generation_form_queues_a_generation(client, staff_reviewer):
    client.force_login(staff_reviewer)
    page = client.get(START)
    assert page.status_code == 200 and b'name="prompt"' in page.content

    response = client.post(START, start_form(seed="42"))

    generation = Generation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == admin_url("images_generation_change", generation.pk)
    assert (generation.status, generation.prompt, generation.backend) == ("queued", "a retro sunset cat", "procedural")
    assert generation.params["batch_size"] == 2 and generation.params["seed"] == 42
    assert generation.created_by == staff_reviewer


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("prompt", "<script>alert(1)</script> cat", "prompt"),
        ("prompt", "ab", "prompt"),
        ("batch_size", "26", "25"),
        ("width", "100", "512"),
        ("guidance", "0", "0.1"),
        ("backend", "dalle", "dalle"),
    ],
)
def test_start_generation_form_refuses_what_the_api_refuses(client, staff_reviewer, field, value, message):
    client.force_login(staff_reviewer)

    response = client.post(START, start_form(**{field: value}))

    assert response.status_code == 200
    assert not Generation.objects.exists()
    errors = response.context["form"].errors
    assert errors, "the form shows what is wrong"
    assert message in str(errors)


def test_start_generation_form_reports_a_duplicate_prompt_and_allows_it_on_request(client, staff_reviewer):
    client.force_login(staff_reviewer)
    client.post(START, start_form(seed="7"))
    first = Generation.objects.get()

    refused = client.post(START, start_form(seed="7"))
    assert refused.status_code == 200 and Generation.objects.count() == 1
    assert admin_url("images_generation_change", first.pk) in refused.content.decode()

    allowed = client.post(START, start_form(seed="7", allow_duplicate="on"))
    assert allowed.status_code == 302 and Generation.objects.count() == 2


def test_only_users_who_may_generate_see_the_start_form(client, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    client.force_login(viewer)
    assert client.get(START).status_code == 403
    assert client.post(START, start_form()).status_code == 403
    assert not Generation.objects.exists()


def test_generation_page_shows_its_images(client, staff_reviewer, make_generation, queue_image):
    generation = make_generation(status=GenerationStatus.COMPLETED)
    images = [queue_image(generation=generation, batch_index=n) for n in range(3)]
    client.force_login(staff_reviewer)

    html = client.get(admin_url("images_generation_change", generation.pk)).content.decode()

    for image in images:
        assert admin_url("images_image_thumbnail", image.pk) in html
        assert admin_url("images_image_change", image.pk) in html
    assert f"?generation={generation.pk}" in html
    assert 'name="prompt"' not in html, "a generation's record is read-only"


def test_cancel_action_cancels_unfinished_generations_and_reports_finished_ones(
    client, staff_reviewer, make_generation
):
    queued = make_generation()
    done = make_generation(status=GenerationStatus.COMPLETED)
    client.force_login(staff_reviewer)

    response = client.post(reverse("admin:images_generation_changelist"),
                           {"action": "cancel_generations", "_selected_action": [queued.pk, done.pk]})

    queued.refresh_from_db()
    done.refresh_from_db()
    assert (queued.status, done.status) == ("cancelled", "completed")
    assert any(done.pk in m and "already completed" in m for m in texts(response))


def test_the_generation_list_is_searched_by_prompt_words_id_or_prompt_hash(client, staff_reviewer, make_generation):
    tiger = make_generation("neon tiger on a skateboard", prompt_hash="ab" * 32)
    make_generation("pastel tiger")
    make_generation("neon owl")
    client.force_login(staff_reviewer)

    def listed(words: str) -> set[str]:
        response = client.get(reverse("admin:images_generation_changelist"), {"q": words})
        assert response.status_code == 200
        return {generation.pk for generation in response.context["cl"].result_list}

    assert listed("tiger NEON") == {tiger.pk}
    assert listed('"on a skate"') == {tiger.pk}
    assert listed(tiger.pk) == {tiger.pk}
    assert listed("AB" * 32) == {tiger.pk}
    assert listed("tiger owl") == set()

    # Through the prompt index: Django's own search (`iexact` on the id and hash) would read every row.
    searched = client.get(reverse("admin:images_generation_changelist"), {"q": "tiger"}).context["cl"].queryset
    text = plan(searched.order_by() if connection.vendor == "postgresql" else searched)
    if connection.vendor == "postgresql":
        assert "Bitmap Index Scan on images_generation_prompt_trgm" in text and "Seq Scan" not in text, text
    else:
        assert "images_generation_prompt_fts" in text and not re.search(r"SCAN images_generation(\s|$)", text), text


def test_the_generation_list_offers_the_configured_backends_without_reading_every_generation(
    client, staff_reviewer, make_generation
):
    comfy = make_generation("neon owl")
    Generation.objects.filter(pk=comfy.pk).update(backend="comfyui")
    make_generation("pastel owl")
    client.force_login(staff_reviewer)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("admin:images_generation_changelist"))
    assert page.status_code == 200
    html = page.content.decode()
    assert all(f"?backend={name}" in html for name in ("procedural", "comfyui", "runpod"))  # runpod: unused
    assert not [q["sql"] for q in queries if "DISTINCT" in q["sql"].upper() and "backend" in q["sql"]]

    filtered = client.get(reverse("admin:images_generation_changelist"), {"backend": "comfyui"})
    assert [generation.pk for generation in filtered.context["cl"].result_list] == [comfy.pk]
    Generation.objects.filter(pk=comfy.pk).update(backend="retired")  # no longer configured
    retired = client.get(reverse("admin:images_generation_changelist"), {"backend": "retired"})
    assert [generation.pk for generation in retired.context["cl"].result_list] == [comfy.pk]
    assert "?backend=retired" in retired.content.decode()


# --- Products and templates --------------------------------------------------------------------


def test_products_are_browsable_and_linked_to_their_image(client, staff_reviewer, queue_image):
    image = queue_image(S.PUBLISHED)
    product = Product.objects.create(image=image, platform="printify", status=ProductStatus.PUBLISHED,
                                     external_id="prn-1", external_url="https://printify.example/prn-1")
    client.force_login(staff_reviewer)

    listing = client.get(reverse("admin:publishing_product_changelist")).content.decode()
    page = client.get(admin_url("publishing_product_change", product.pk)).content.decode()

    assert admin_url("images_image_change", image.pk) in listing
    assert "prn-1" in listing and "https://printify.example/prn-1" in page
    assert "<h1>Products</h1>" in listing
    assert 'name="status"' not in page


def test_the_product_list_is_searched_by_title_marketplace_id_prompt_or_ids(client, staff_reviewer, make_image):
    def product(prompt: str, title: str, external_id: str = "") -> Product:
        return Product.objects.create(image=make_image(status=S.PUBLISHED, prompt=prompt), platform="printify",
                                      status=ProductStatus.PUBLISHED, title=title, external_id=external_id)

    tiger = product("neon tiger", "Tiger tee", "5f3a9c1e2b")
    mug = product("pastel owl", "Owl mug", "77aa")
    owl = product("neon owl", "Design")
    client.force_login(staff_reviewer)

    def listed(words: str) -> set[str]:
        response = client.get(reverse("admin:publishing_product_changelist"), {"q": words})
        assert response.status_code == 200
        return {found.pk for found in response.context["cl"].result_list}

    assert listed("TIGER") == {tiger.pk}  # title and prompt
    assert listed("neon") == {tiger.pk, owl.pk}  # the design's prompt
    assert listed("mug") == {mug.pk} and listed("9C1E") == {tiger.pk}
    assert listed(mug.pk) == {mug.pk} and listed(owl.image_id) == {owl.pk}
    assert listed("owl neon") == {owl.pk} and listed("tiger owl") == set()

    searched = client.get(reverse("admin:publishing_product_changelist"), {"q": "tiger"}).context["cl"].queryset
    text = plan(searched.order_by() if connection.vendor == "postgresql" else searched)
    if connection.vendor == "postgresql":
        for index in ("publishing_product_title_trgm", "publishing_product_external_id_trgm",
                      "images_image_prompt_trgm"):
            assert index in text, text
        assert "Seq Scan on publishing_product" not in text, text
    else:
        for index in ("publishing_product_title_fts", "publishing_product_external_id_fts", "images_image_prompt_fts"):
            assert index in text, text
        assert not re.search(r"SCAN (publishing_product|images_image)(\s|$)", text), text


def test_retry_action_is_for_publishers_and_retries_failed_products(
    client, staff_reviewer, staff_publisher, queue_image
):
    image = queue_image(S.FAILED)
    product = Product.objects.create(image=image, platform="export", status=ProductStatus.FAILED, error="boom")
    changelist = reverse("admin:publishing_product_changelist")
    data = {"action": "retry_products", "_selected_action": [product.pk]}

    client.force_login(staff_reviewer)
    client.post(changelist, data)
    product.refresh_from_db()
    assert product.status == ProductStatus.FAILED

    client.force_login(staff_publisher)
    client.post(changelist, data)
    product.refresh_from_db()
    image.refresh_from_db()
    assert (product.status, image.status) == (ProductStatus.QUEUED, S.PUBLISHING)


def test_publishers_manage_templates_and_several_may_be_default(client, staff_publisher):
    old = ProductTemplate.objects.create(name="Old tee", platform="export", is_default=True)
    client.force_login(staff_publisher)
    data = {"name": "New tee", "platform": "export", "variant_ids": "[]", "price_cents": "2500",
            "position": "front", "x": "0.5", "y": "0.5", "scale": "1", "angle": "0",
            "title_template": "{prompt}", "description_template": "{prompt}", "tags": '["cat"]', "is_default": "on"}

    response = client.post(reverse("admin:publishing_producttemplate_add"), data)

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    new = ProductTemplate.objects.get(name="New tee")
    old.refresh_from_db()
    assert new.is_default and old.is_default  # several templates may be default
    assert new.tags == ["cat"] and new.price_cents == 2500


def template_form(**overrides) -> dict:
    data = {"name": "Gildan 18500 hoodie", "platform": "printify", "blueprint_id": "77", "print_provider_id": "29",
            "variant_ids": "32918, 32919,32919", "price_cents": "3499", "position": "front", "x": "0.5", "y": "0.5",
            "scale": "1", "angle": "0", "title_template": "{prompt} hoodie", "description_template": "{prompt}",
            "tags": "hoodie, retro sunset"}
    return {**data, **overrides}


def test_template_form_takes_comma_separated_variants_and_tags_and_shows_no_made_up_id(client, staff_publisher):
    client.force_login(staff_publisher)
    add = reverse("admin:publishing_producttemplate_add")

    page = client.get(add).content.decode()
    assert "tpl_" not in page, "the add page shows no id: the saved template gets another one"
    assert "printify_catalog" in page, "the form says where the real ids come from"

    assert client.post(add, template_form()).status_code == 302
    template = ProductTemplate.objects.get()
    assert template.variant_ids == [32918, 32919]
    assert template.tags == ["hoodie", "retro sunset"]

    change = client.get(admin_url("publishing_producttemplate_change", template.pk)).content.decode()
    assert 'value="32918, 32919"' in change and 'value="hoodie, retro sunset"' in change


def test_template_form_refuses_what_the_api_refuses(client, staff_publisher):
    client.force_login(staff_publisher)
    add = reverse("admin:publishing_producttemplate_add")

    missing = client.post(add, template_form(blueprint_id="", variant_ids=""))
    not_numbers = client.post(add, template_form(variant_ids="32918, black-s"))

    errors = missing.context["adminform"].form.errors
    assert "Required for a Printify template." in errors["blueprint_id"]
    assert "Required for a Printify template." in errors["variant_ids"]
    assert "variant_ids" in not_numbers.context["adminform"].form.errors
    assert not ProductTemplate.objects.exists()


def test_reviewers_cannot_change_templates(client, staff_reviewer):
    template = ProductTemplate.objects.create(name="Tee", platform="export")
    client.force_login(staff_reviewer)
    page = client.get(admin_url("publishing_producttemplate_change", template.pk)).content.decode()
    assert 'name="name"' not in page
    assert client.get(reverse("admin:publishing_producttemplate_add")).status_code == 403


# --- Webhooks ----------------------------------------------------------------------------------


def test_webhook_subscriptions_and_events_are_browsable_without_secrets(client, superuser):
    subscription = WebhookSubscription.objects.create(
        owner=superuser, url="https://hooks.example/pod", events=["image.approved"], secret="whsec_topsecret"
    )
    event = WebhookEvent.objects.create(event_type="image.approved", data={"image_id": "img_1"})
    client.force_login(superuser)

    listing = client.get(reverse("admin:webhooks_webhooksubscription_changelist")).content.decode()
    page = client.get(admin_url("webhooks_webhooksubscription_change", subscription.pk)).content.decode()
    events = client.get(reverse("admin:webhooks_webhookevent_changelist")).content.decode()

    assert "https://hooks.example/pod" in listing and "image.approved" in listing
    assert "whsec_topsecret" not in listing + page
    assert event.pk in events
