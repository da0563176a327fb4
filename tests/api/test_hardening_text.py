"""The markup rules read text after normalisation (NFKC, entities decoded, whitespace folded) and apply to
every text that leaves the gateway: prompts, listing titles, descriptions, tags, publish overrides — in
the API, the admin forms and the publishing service alike."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from core.actors import Actor, Via
from core.errors import InvalidInputError
from core.text import markup_found
from images.models import Generation, ImageStatus
from publishing import services
from publishing.forms import ProductTemplateForm
from publishing.models import Platform, Product, ProductTemplate
from tests.api.conftest import token_client
from tests.api.test_errors import assert_v1
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

EVASIONS = [
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "JaVa\u200bScRiPt:alert(1)",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#106;avascript:alert(1)",
    "javascript&colon;alert(1)",
    "&amp;lt;b&amp;gt;double encoded",
    "\uff1cscript\uff1ealert(1)",
    "\uff1cb\uff1efull-width tag\uff1c/b\uff1e",
    "<img src=x onerror=alert(1)",
    "a cat <svg",
    "<a href='x'",
    "click onmouseover\t=alert(1)",
    "data:text/html,<b>x</b>",
]
PLAIN = ["retro sunset cat", "cats <3 dogs", "price < 5, size > 3", "on the beach = fun", "50% off & free shipping",
         "caf\u00e9 \u2014 na\u00efve"]


@pytest.mark.parametrize("text", EVASIONS)
def test_every_evasion_is_found(text):
    assert markup_found(text)


@pytest.mark.parametrize("text", PLAIN)
def test_plain_text_passes(text):
    assert markup_found(text) is None


@pytest.mark.parametrize("text", EVASIONS)
def test_prompts_are_refused_through_every_door(as_client, text):
    body = assert_v1(as_client.post("/api/v1/generate", {"prompt": f"a cat {text}"}, format="json"),
                     400, "VALIDATION_ERROR")
    assert "prompt" in body["details"]["fields"]
    assert not Generation.objects.exists()


@pytest.fixture
def publisher_api(publisher):
    return token_client(publisher)


@pytest.mark.parametrize("field", ["title_template", "description_template", "tags"])
@pytest.mark.parametrize("text", ["java\tscript:alert(1)", "&lt;b&gt;bold&lt;/b&gt;", "\uff1cscript\uff1e",
                                  "<b>bold</b>", "<img src=x onerror=alert(1)"])
def test_template_listing_texts_are_refused_in_the_api(publisher_api, field, text):
    value = [text] if field == "tags" else text
    response = publisher_api.post("/api/v1/product-templates", {"name": "Tee", "platform": Platform.EXPORT,
                                                                 field: value}, format="json")
    body = assert_v1(response, 400, "VALIDATION_ERROR")
    assert field in body["details"]["fields"]
    assert not ProductTemplate.objects.exists()


def test_template_listing_texts_are_refused_by_the_service_and_a_change_too(publisher):
    actor = Actor(publisher, Via.COMMAND)
    with pytest.raises(InvalidInputError) as refused:
        services.product_template_create(data={"name": "Tee", "platform": Platform.EXPORT,
                                               "description_template": "&lt;script&gt;"}, actor=actor)
    assert "description_template" in refused.value.fields
    template = services.product_template_create(
        data={"name": "Tee", "platform": Platform.EXPORT, "title_template": "{prompt} tee", "tags": ["retro"]},
        actor=actor,
    )
    response = token_client(publisher).patch(f"/api/v1/product-templates/{template.id}",
                                             {"tags": ["fine", "java\tscript:x"]}, format="json")
    assert "tags" in assert_v1(response, 400, "VALIDATION_ERROR")["details"]["fields"]
    template.refresh_from_db()
    assert template.tags == ["retro"]


def test_template_listing_texts_are_refused_in_the_admin_form(publisher):
    form = ProductTemplateForm(data={
        "name": "Tee", "platform": Platform.EXPORT, "price_cents": 2500, "position": "front", "x": 0.5, "y": 0.5,
        "scale": 1, "angle": 0, "title_template": "\uff1cb\uff1e{prompt}", "description_template": "ok",
        "tags": "retro, java\tscript:x",
    })
    assert not form.is_valid()
    assert {"title_template", "tags"} <= set(form.errors)
    staff = make_user("pat", "publishers", is_staff=True)
    client = Client()
    client.force_login(staff)
    response = client.post("/admin/publishing/producttemplate/add/", {
        "name": "Tee", "platform": Platform.EXPORT, "price_cents": 2500, "position": "front", "x": 0.5, "y": 0.5,
        "scale": 1, "angle": 0, "title_template": "{prompt}", "description_template": "&lt;script&gt;x",
        "tags": "retro", "variant_ids": "",
    })
    assert response.status_code == 200  # the form again, with the error
    assert not ProductTemplate.objects.exists()


@pytest.mark.parametrize(("field", "text"), [("title", "Tee &lt;script&gt;"), ("description", "java\tscript:x"),
                                              ("title", "\uff1cimg src=x onerror=alert(1)")])
def test_publish_overrides_are_refused(publisher_api, make_image, field, text):
    image = make_image(status=ImageStatus.APPROVED)
    ProductTemplate.objects.create(name="Tee", platform=Platform.EXPORT, is_default=True)
    response = publisher_api.post(f"/api/v1/images/{image.id}/publish", {field: text}, format="json")
    assert field in assert_v1(response, 400, "VALIDATION_ERROR")["details"]["fields"]
    image.refresh_from_db()
    assert image.status == ImageStatus.APPROVED and not Product.objects.exists()


def test_publish_override_rule_is_the_services_own(publisher, make_image):
    image = make_image(status=ImageStatus.APPROVED)
    ProductTemplate.objects.create(name="Tee", platform=Platform.EXPORT, is_default=True)
    with pytest.raises(InvalidInputError) as refused:
        services.image_publish(image_id=image.id, actor=Actor(publisher, Via.COMMAND), description="<b>x</b>")
    assert "description" in refused.value.fields


@pytest.mark.parametrize("text", ["&lt;script&gt;x", "java\tscript:x", "\uff1cb\uff1e"])
def test_the_admin_reject_reason_and_approve_note_follow_the_same_rule(make_image, text):
    reviewer = make_user("rev", "reviewers", is_staff=True)
    image = make_image()
    client = Client()
    client.force_login(reviewer)
    client.post(reverse("admin:images_image_reject", args=[image.pk]), {"reason": text})
    client.post(reverse("admin:images_image_approve", args=[image.pk]), {"note": text})
    image.refresh_from_db()
    assert image.status == ImageStatus.PENDING
    client.post(reverse("admin:images_image_reject", args=[image.pk]), {"reason": "blurry\nedges"})
    image.refresh_from_db()
    assert image.status == ImageStatus.REJECTED
