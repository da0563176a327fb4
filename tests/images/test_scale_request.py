"""A decision answers with the image exactly as `GET images/{id}` shows it (rendered the cheap way)."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from images.models import ImageStatus
from publishing.models import Product

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_approve_reject_and_reset_answer_the_image_as_its_detail_shows_it(superuser, make_image, version, settings):
    settings.RATE_LIMITS = {tier: (100_000, 3600) for tier in settings.RATE_LIMITS}  # limits have their own tests
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=superuser).key}")
    image = make_image(prompt="a lighthouse at dusk")
    for action, body in [("reject", {"reason": "blurry"}), ("approve", {"note": "sharp"}), ("reset", {})]:
        decided = api.post(f"/api/{version}/images/{image.pk}/{action}", body, format="json")
        assert decided.status_code == 200, decided.content
        assert decided.json() == api.get(f"/api/{version}/images/{image.pk}").json(), action
    assert [entry["to_status"] for entry in decided.json()["history"]][-3:] == ["rejected", "approved", "pending"]
    failed = make_image(status=ImageStatus.FAILED)
    Product.objects.create(image=failed, platform="export", status="failed", error="no space")
    reset = api.post(f"/api/{version}/images/{failed.pk}/reset", {}, format="json")
    assert reset.status_code == 200, reset.content
    assert reset.json() == api.get(f"/api/{version}/images/{failed.pk}").json()
