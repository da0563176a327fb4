"""JSON types are checked, not coerced: a number is a JSON number, a boolean is true/false; anything else is
a 400 VALIDATION_ERROR naming the field, and nothing changes."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from images.models import Generation, ImageStatus
from publishing.models import Platform, ProductTemplate
from tests.api.conftest import token_client
from tests.api.test_errors import assert_v1, assert_v2
from webhooks.models import WebhookSubscription

pytestmark = pytest.mark.django_db

PROMPT = "retro sunset cat"


@pytest.mark.parametrize(("field", "value"), [
    ("batch_size", "3"), ("batch_size", 2.0), ("batch_size", True), ("width", "4500"), ("steps", 30.0),
    ("seed", "7"), ("seed", False), ("guidance", "2.5"), ("guidance", True),
    ("allow_duplicate", "yes"), ("allow_duplicate", "true"), ("allow_duplicate", 1), ("allow_duplicate", "on"),
])
def test_generate_refuses_values_of_the_wrong_json_type(as_client, field, value):
    body = assert_v1(as_client.post("/api/v1/generate", {"prompt": PROMPT, field: value}, format="json"),
                     400, "VALIDATION_ERROR")
    assert list(body["details"]["fields"]) == [field]
    problem = assert_v2(as_client.post("/api/v2/generate", {"prompt": PROMPT, field: value}, format="json"),
                        400, "VALIDATION_ERROR")
    assert [error["pointer"] for error in problem["errors"]] == [f"#/{field}"]
    assert not Generation.objects.exists()


def test_generate_takes_json_numbers_and_booleans(as_client):
    response = as_client.post("/api/v1/generate", {"prompt": PROMPT, "batch_size": 3, "guidance": 3, "seed": 0,
                                                   "allow_duplicate": True}, format="json")
    assert response.status_code == 202
    assert response.json()["params"]["batch_size"] == 3


def test_the_generate_command_still_reads_its_options_as_text():
    out = io.StringIO()
    call_command("generate", PROMPT, "--batch-size", "2", "--guidance", "2.5", stdout=out)
    assert Generation.objects.get().params["batch_size"] == 2


@pytest.mark.parametrize("body", [{"atomic": "true"}, {"atomic": 1}])
def test_batch_flags_are_json_booleans(as_reviewer, make_image, body):
    image = make_image()
    response = as_reviewer.post("/api/v1/batch/approve", {"image_ids": [image.id], **body}, format="json")
    assert list(assert_v1(response, 400, "VALIDATION_ERROR")["details"]["fields"]) == ["atomic"]
    image.refresh_from_db()
    assert image.status == ImageStatus.PENDING


@pytest.mark.parametrize(("field", "value"), [
    ("price_cents", "3499"), ("price_cents", 3499.0), ("blueprint_id", "5"), ("angle", "0"),
    ("is_default", "yes"), ("variant_ids", ["1"]), ("x", "0.5"),
])
def test_template_numbers_and_flags_are_json_types(publisher, field, value):
    body = {"name": "Tee", "platform": Platform.EXPORT, field: value}
    response = token_client(publisher).post("/api/v1/product-templates", body, format="json")
    fields = assert_v1(response, 400, "VALIDATION_ERROR")["details"]["fields"]
    assert list(fields) == [field]
    assert not ProductTemplate.objects.exists()


def test_publish_price_is_a_json_integer(publisher, make_image):
    image = make_image(status=ImageStatus.APPROVED)
    ProductTemplate.objects.create(name="Tee", platform=Platform.EXPORT, is_default=True)
    response = token_client(publisher).post(f"/api/v1/images/{image.id}/publish", {"price_cents": "999"},
                                            format="json")
    assert list(assert_v1(response, 400, "VALIDATION_ERROR")["details"]["fields"]) == ["price_cents"]
    image.refresh_from_db()
    assert image.status == ImageStatus.APPROVED


def test_webhook_is_active_is_a_json_boolean(as_client, client_user):
    subscription = WebhookSubscription.objects.create(owner=client_user, url="https://example.com/h", secret="s")
    response = as_client.patch(f"/api/v1/webhooks/{subscription.id}", {"is_active": "false"}, format="json")
    assert list(assert_v1(response, 400, "VALIDATION_ERROR")["details"]["fields"]) == ["is_active"]
    subscription.refresh_from_db()
    assert subscription.is_active
