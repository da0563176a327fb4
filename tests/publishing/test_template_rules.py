"""Product-template and publish-override rules: one set, the same answer from every way in.

The service refuses invalid input whoever calls it; the API, the admin form and `printify_catalog
--create-template` all get the service's field errors.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError
from django.db import connections
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.actors import Actor, Via
from core.errors import InvalidInputError
from publishing.forms import ProductTemplateForm
from publishing.models import DESCRIPTION_MAX, PRICE_MAX_CENTS, TITLE_MAX, Product, ProductTemplate
from publishing.services import (
    image_publish,
    product_template_create,
    product_template_update,
    product_template_validate,
)
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

ACTOR = Actor(None, Via.COMMAND)
HOODIE = {"name": "Hoodie", "platform": "printify", "blueprint_id": 77, "print_provider_id": 29,
          "variant_ids": [32918, 32919], "price_cents": 3499}


@pytest.fixture(autouse=True)
def _generous_rate_limits(settings):
    settings.RATE_LIMITS = {tier: (100_000, 3600) for tier in ("generation", "publishing", "approval", "read")}


@pytest.fixture
def as_publisher(publisher) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=publisher).key}")
    return client


def refused_fields(**data) -> dict[str, list[str]]:
    with pytest.raises(InvalidInputError) as caught:
        product_template_create(data=data, actor=ACTOR)
    assert not ProductTemplate.objects.exists()
    return caught.value.fields


# --- The service -------------------------------------------------------------------------------


def test_service_refuses_a_printify_template_without_blueprint():
    fields = refused_fields(**{**HOODIE, "blueprint_id": None})
    assert fields == {"blueprint_id": ["Required for a Printify template."]}


def test_service_refuses_a_printify_template_without_provider_or_variants():
    data = {k: v for k, v in HOODIE.items() if k not in {"print_provider_id", "variant_ids"}}
    assert set(refused_fields(**data)) == {"print_provider_id", "variant_ids"}


def test_service_refuses_a_zero_price():
    assert "price_cents" in refused_fields(**{**HOODIE, "price_cents": 0})


def test_service_refuses_x_99():
    assert set(refused_fields(**{**HOODIE, "x": 99})) == {"x"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("name", "   "),
        ("name", "n" * 201),
        ("platform", "etsy"),
        ("blueprint_id", 0),
        ("blueprint_id", "77"),
        ("blueprint_id", True),
        ("print_provider_id", 2**40),
        ("variant_ids", []),
        ("variant_ids", [0]),
        ("variant_ids", [1, "2"]),
        ("variant_ids", [True]),
        ("variant_ids", "32918"),
        ("variant_ids", list(range(1, 502))),
        ("price_cents", -1),
        ("price_cents", PRICE_MAX_CENTS + 1),
        ("price_cents", 12.5),
        ("x", -0.1),
        ("y", 1.5),
        ("x", float("nan")),
        ("y", float("inf")),
        ("scale", 0),
        ("scale", 11),
        ("angle", 361),
        ("angle", -361),
        ("angle", 45.5),
        ("position", ""),
        ("position", "p" * 33),
        ("tags", "hoodie"),
        ("tags", ["ok", ""]),
        ("tags", ["t" * 101]),
        ("tags", [f"t{n}" for n in range(51)]),
        ("tags", [7]),
        ("title_template", ""),
        ("title_template", "t" * 501),
        ("description_template", "d" * 5001),
        ("is_default", "yes"),
    ],
)
def test_service_refuses_each_bad_value_on_its_field(field, value):
    assert set(refused_fields(**{**HOODIE, field: value})) == {field}


def test_service_refuses_unknown_fields():
    assert set(refused_fields(**HOODIE, blueprint=77)) == {"blueprint"}


def test_service_accepts_the_bounds_and_cleans_what_it_keeps():
    template = product_template_create(
        data={**HOODIE, "name": "  Hoodie\x00 ", "variant_ids": [32918, 32919, 32918], "tags": [" retro ", "cat"],
              "x": 0, "y": 1, "scale": 10, "angle": -360, "price_cents": PRICE_MAX_CENTS,
              "description_template": ""},
        actor=ACTOR,
    )
    template.refresh_from_db()
    assert template.name == "Hoodie"
    assert template.variant_ids == [32918, 32919] and template.tags == ["retro", "cat"]
    assert (template.x, template.y, template.scale, template.angle) == (0, 1, 10, -360)


def test_an_export_template_needs_no_printify_ids():
    template = product_template_create(data={"name": "Redbubble", "platform": "export"}, actor=ACTOR)
    assert template.blueprint_id is None and template.variant_ids == []


def test_update_validates_the_merged_template(hoodie):
    with pytest.raises(InvalidInputError) as caught:
        product_template_update(template_id=hoodie.id, data={"blueprint_id": None}, actor=ACTOR)
    assert caught.value.fields == {"blueprint_id": ["Required for a Printify template."]}
    with pytest.raises(InvalidInputError) as caught:
        product_template_update(template_id=hoodie.id, data={"price_cents": 0, "x": 99}, actor=ACTOR)
    assert set(caught.value.fields) == {"price_cents", "x"}
    hoodie.refresh_from_db()
    assert (hoodie.blueprint_id, hoodie.price_cents, hoodie.x) == (77, 3499, 0.5)

    export = product_template_create(data={"name": "Export", "platform": "export"}, actor=ACTOR)
    with pytest.raises(InvalidInputError) as caught:
        product_template_update(template_id=export.id, data={"platform": "printify"}, actor=ACTOR)
    assert set(caught.value.fields) == {"blueprint_id", "print_provider_id", "variant_ids"}

    updated = product_template_update(template_id=hoodie.id, data={"variant_ids": [32920, 32920]}, actor=ACTOR)
    assert updated.variant_ids == [32920]


def test_validate_returns_only_the_given_fields_cleaned(hoodie):
    assert product_template_validate({"tags": [" a "]}, instance=hoodie) == {"tags": ["a"]}


# --- The API and the admin form give the service's answer ----------------------------------------


def form_data(**overrides) -> dict:
    data = {"name": "Gildan 18500 hoodie", "platform": "printify", "blueprint_id": "77", "print_provider_id": "29",
            "variant_ids": "32918, 32919", "price_cents": "3499", "position": "front", "x": "0.5", "y": "0.5",
            "scale": "1", "angle": "0", "title_template": "{prompt} hoodie", "description_template": "{prompt}",
            "tags": "hoodie, retro sunset"}
    return {**data, **overrides}


def api_data(**overrides) -> dict:
    data = {"name": "Gildan 18500 hoodie", "platform": "printify", "blueprint_id": 77, "print_provider_id": 29,
            "variant_ids": [32918, 32919], "price_cents": 3499, "position": "front", "x": 0.5, "y": 0.5,
            "scale": 1, "angle": 0, "title_template": "{prompt} hoodie", "description_template": "{prompt}",
            "tags": ["hoodie", "retro sunset"]}
    return {**data, **overrides}


SAME_BAD_INPUT = [
    ({"blueprint_id": ""}, {"blueprint_id": None}),
    ({"blueprint_id": "", "variant_ids": ""}, {"blueprint_id": None, "variant_ids": []}),
    ({"price_cents": "0"}, {"price_cents": 0}),
    ({"x": "99"}, {"x": 99}),
    ({"scale": "0"}, {"scale": 0}),
    ({"angle": "400"}, {"angle": 400}),
    ({"variant_ids": "0, 32918"}, {"variant_ids": [0, 32918]}),
    ({"tags": "ok, " + "t" * 101}, {"tags": ["ok", "t" * 101]}),
    ({"position": "p" * 33}, {"position": "p" * 33}),
    ({"price_cents": str(PRICE_MAX_CENTS + 1), "y": "-1"}, {"price_cents": PRICE_MAX_CENTS + 1, "y": -1}),
]


@pytest.mark.parametrize(("form_values", "api_values"), SAME_BAD_INPUT)
def test_api_and_admin_form_give_the_same_field_errors(form_values, api_values, as_publisher):
    form = ProductTemplateForm(data=form_data(**form_values))
    assert not form.is_valid()
    response = as_publisher.post("/api/v1/product-templates", api_data(**api_values), format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "VALIDATION_ERROR"
    assert body["details"]["fields"] == {name: list(messages) for name, messages in form.errors.items()}
    assert not ProductTemplate.objects.exists()


def test_the_admin_add_page_shows_the_service_errors_on_the_form(client):
    client.force_login(make_user("pub", "publishers", is_staff=True))
    response = client.post(reverse("admin:publishing_producttemplate_add"), form_data(price_cents="0", x="99"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"price_cents", "x"}
    assert not ProductTemplate.objects.exists()


def test_api_patch_that_makes_a_printify_template_incomplete_is_refused(hoodie, as_publisher):
    url = f"/api/v1/product-templates/{hoodie.id}"
    response = as_publisher.patch(url, {"variant_ids": []}, format="json")
    assert response.status_code == 400 and set(response.json()["details"]["fields"]) == {"variant_ids"}
    response = as_publisher.patch(url, {"print_provider_id": None}, format="json")
    assert response.status_code == 400 and set(response.json()["details"]["fields"]) == {"print_provider_id"}
    export = ProductTemplate.objects.create(name="Export", platform="export")
    response = as_publisher.patch(f"/api/v1/product-templates/{export.id}", {"platform": "printify"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["details"]["fields"]) == {"blueprint_id", "print_provider_id", "variant_ids"}
    response = as_publisher.patch(url, {"price_cents": 0}, format="json")
    assert response.status_code == 400 and set(response.json()["details"]["fields"]) == {"price_cents"}
    hoodie.refresh_from_db()
    assert (hoodie.variant_ids, hoodie.print_provider_id, hoodie.price_cents) == ([32918, 32919], 29, 3499)
    assert as_publisher.patch(url, {"x": 0.25}, format="json").status_code == 200


def test_admin_change_that_makes_a_printify_template_incomplete_is_refused(hoodie):
    form = ProductTemplateForm(data=form_data(variant_ids=""), instance=hoodie)
    assert form.errors == {"variant_ids": ["Required for a Printify template."]}


# --- The command -------------------------------------------------------------------------------


def run_manage(monkeypatch, capsys, *argv: str) -> tuple[int, str, str]:
    """Run a command the way `manage.py` does, so its exit status and printed error are what an operator sees."""
    # manage.py closes the connections when a command ends; the test's transaction lives on them.
    monkeypatch.setattr(connections, "close_all", lambda: None)
    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["manage.py", *argv]).execute()
    out, err = capsys.readouterr()
    return exited.value.code, out, err


@pytest.mark.parametrize(
    ("option", "value", "field"),
    [("--price-cents", "0", "price_cents"), ("--price-cents", str(PRICE_MAX_CENTS + 1), "price_cents"),
     ("--create-template", "   ", "name")],
)
def test_create_template_with_a_bad_value_exits_non_zero_and_creates_nothing(
    printify, monkeypatch, capsys, option, value, field
):
    argv = ["printify_catalog", "--blueprint", "77", "--provider", "29", "--create-template", "Hoodie", option, value]
    status, _, err = run_manage(monkeypatch, capsys, *argv)
    assert status != 0
    assert field in err
    assert not ProductTemplate.objects.exists()
    with pytest.raises(CommandError, match=field):
        call_command(*argv, stdout=io.StringIO(), stderr=io.StringIO())
    assert not ProductTemplate.objects.exists()


# --- Publish overrides -------------------------------------------------------------------------


def test_one_title_limit_for_the_column_the_service_and_the_api(printify, hoodie, approved, publisher, as_publisher):
    assert Product._meta.get_field("title").max_length == TITLE_MAX
    too_long, longest = "t" * (TITLE_MAX + 1), "t" * TITLE_MAX
    first, second, third = approved(3)

    with pytest.raises(InvalidInputError) as caught:
        image_publish(image_id=first.id, actor=Actor(publisher, Via.API), title=too_long)
    assert set(caught.value.fields) == {"title"} and str(TITLE_MAX) in caught.value.fields["title"][0]

    response = as_publisher.post(f"/api/v1/images/{first.id}/publish", {"title": too_long}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "VALIDATION_ERROR" and body["details"]["fields"] == caught.value.fields
    assert not Product.objects.exists()

    assert image_publish(image_id=second.id, actor=Actor(publisher, Via.API), title=longest).title == longest
    response = as_publisher.post(f"/api/v1/images/{third.id}/publish", {"title": longest}, format="json")
    assert response.status_code == 202 and response.json()["title"] == longest


def test_publish_overrides_refused_by_the_service(hoodie, approved, publisher):
    (image,) = approved()
    actor = Actor(publisher, Via.API)
    for overrides, field in [({"title": "   "}, "title"), ({"description": "d" * (DESCRIPTION_MAX + 1)}, "description"),
                             ({"price_cents": 0}, "price_cents"), ({"price_cents": PRICE_MAX_CENTS + 1}, "price_cents"),
                             ({"price_cents": True}, "price_cents"), ({"title": 5}, "title")]:
        with pytest.raises(InvalidInputError) as caught:
            image_publish(image_id=image.id, actor=actor, **overrides)
        assert set(caught.value.fields) == {field}, overrides
    assert not Product.objects.exists()


def test_api_refuses_a_description_over_the_limit(hoodie, approved, as_publisher):
    (image,) = approved()
    response = as_publisher.post(f"/api/v1/images/{image.id}/publish", {"description": "d" * (DESCRIPTION_MAX + 1)},
                                 format="json")
    assert response.status_code == 400 and set(response.json()["details"]["fields"]) == {"description"}
