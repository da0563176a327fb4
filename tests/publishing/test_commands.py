"""The operator commands: publish, printify_shops, printify_catalog."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from images.models import ImageStatus
from publishing.models import Product, ProductStatus, ProductTemplate
from tests.publishing.conftest import run_worker

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_publish_all_approved_queues_and_reports(printify, hoodie, approved, make_image):
    images = approved(2)
    make_image()  # pending: not touched
    out, _ = run("publish", "--all-approved")
    assert "Queued 2, skipped 0, failed 0." in out
    run_worker()
    assert set(Product.objects.values_list("image_id", "status")) == {(i.id, ProductStatus.PUBLISHED) for i in images}


def test_publish_reports_skipped_and_unknown_ids_and_fails(hoodie, make_image):
    pending = make_image()
    with pytest.raises(CommandError, match="Nothing was published"):
        run("publish", pending.id, "img_missing")


def test_publish_without_any_template_fails_clearly(approved):
    (image,) = approved()
    with pytest.raises(CommandError, match="default template"):
        run("publish", image.id)
    image.refresh_from_db()
    assert image.status == ImageStatus.APPROVED


def test_publish_wait_runs_the_pipeline_and_prints_the_outcome(printify, hoodie, approved):
    (image,) = approved()
    out, _ = run("publish", image.id, "--wait", "--timeout", "30")
    product = Product.objects.get(image=image)
    assert product.status == ProductStatus.PUBLISHED
    assert f"{product.id} ({image.id}): published" in out


def test_printify_shops_lists_shops(printify):
    out, _ = run("printify_shops")
    assert "4321\tStand-in Shop" in out and "(PRINTIFY_SHOP_ID)" in out


def test_printify_shops_without_key_fails(printify, settings):
    settings.PRINTIFY_API_KEY = ""
    with pytest.raises(CommandError, match="PRINTIFY_API_KEY"):
        run("printify_shops")


def test_printify_catalog_browses_and_creates_a_template(printify):
    assert "77\tUnisex Heavy Blend" in run("printify_catalog")[0]
    assert "29\tMonster Digital" in run("printify_catalog", "--blueprint", "77")[0]
    out, _ = run("printify_catalog", "--blueprint", "77", "--provider", "29", "--create-template", "Hoodie",
                 "--variants", "32918,32920", "--price-cents", "3499", "--default")
    assert "32919\tBlack / M\tfront" in out
    template = ProductTemplate.objects.get(name="Hoodie")
    assert (template.blueprint_id, template.print_provider_id, template.variant_ids, template.is_default) == (
        77, 29, [32918, 32920], True
    )


def test_printify_catalog_refuses_unknown_variant_and_blueprint(printify):
    with pytest.raises(CommandError, match="Not variants"):
        run("printify_catalog", "--blueprint", "77", "--provider", "29", "--create-template", "X", "--variants", "1")
    with pytest.raises(CommandError, match="404"):
        run("printify_catalog", "--blueprint", "12345")
