"""`GET images` renders its rows without ImageSerializer: each row must equal the detail view's body."""

import pytest
from django.core.files.base import ContentFile

from core.actors import Actor, Via
from images.models import ImageStatus
from images.services import images_approve, images_reject
from publishing.models import Product

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_list_rows_equal_the_detail_bodies(as_reviewer, make_image, reviewer, version):
    plain = make_image()
    reviewed = make_image(prompt="reviewed twice")
    images_reject(image_ids=[reviewed.id], actor=Actor(reviewer, Via.API), reason="blurry")
    images_approve(image_ids=[reviewed.id], actor=Actor(reviewer, Via.ADMIN), note="fixed")
    published = make_image(status=ImageStatus.PUBLISHED, dpi=300,
                           quality={"valid": False, "errors": ["too small"], "info": {"format": "PNG"}})
    Product.objects.create(image=published, platform="printify", status="published",
                           external_url="https://shop.example/p/1")
    with_thumbnail = make_image(quality_valid=False)
    with_thumbnail.thumbnail.save("thumb.jpg", ContentFile(b"jpeg"), save=True)

    response = as_reviewer.get(f"/api/{version}/images?page_size=10")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [row["id"] for row in rows] == [with_thumbnail.id, published.id, reviewed.id, plain.id]
    for row in rows:
        detail = as_reviewer.get(f"/api/{version}/images/{row['id']}").json()
        assert list(row) == list(detail)  # same members in the same order
        assert row == detail
    by_id = {row["id"]: row for row in rows}
    assert [(h["from_status"], h["to_status"], h["via"], h["note"]) for h in by_id[reviewed.id]["history"]] == [
        ("pending", "rejected", "api", "blurry"), ("rejected", "approved", "admin", "fixed"),
    ]
    assert by_id[published.id]["product"]["external_url"] == "https://shop.example/p/1"
    assert by_id[published.id]["quality"]["errors"] == ["too small"]
    assert by_id[with_thumbnail.id]["thumbnail_url"].endswith(f"/api/{version}/images/{with_thumbnail.id}/thumbnail")
    assert by_id[plain.id]["product"] is None and by_id[plain.id]["thumbnail_url"] is None
