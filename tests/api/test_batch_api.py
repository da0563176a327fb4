"""Batch endpoints: the per-id result shape, set-wise services, and `atomic`."""

from __future__ import annotations

import pytest

from images.models import Image, ImageStatus, ImageTransition

pytestmark = pytest.mark.django_db


def test_batch_approve_reports_each_id(as_reviewer, make_image):
    pending = make_image()
    already = make_image(status=ImageStatus.APPROVED)
    published = make_image(status=ImageStatus.PUBLISHED)
    response = as_reviewer.post(
        "/api/v1/batch/approve", {"image_ids": [pending.id, already.id, published.id, "img_nope"]}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["successful"] == [pending.id]
    assert body["failed"] == [{"image_id": "img_nope", "error": "Image img_nope not found", "code": "NOT_FOUND"}]
    assert [entry["image_id"] for entry in body["skipped"]] == [already.id, published.id]
    assert body["counts"] == {"successful": 1, "failed": 1, "skipped": 2, "total": 4}
    assert Image.objects.get(id=pending.id).status == "approved"


def test_batch_reject_keeps_the_reason(as_reviewer, make_image):
    image = make_image()
    body = as_reviewer.post("/api/v2/batch/reject/", {"image_ids": [image.id], "reason": "off-brand"},
                            format="json").json()
    assert body["successful"] == [image.id]
    image.refresh_from_db()
    assert image.status == "rejected" and image.history.get().note == "off-brand"


def test_batch_delete_honours_force(as_reviewer, make_image):
    pending, approved = make_image(), make_image(status=ImageStatus.APPROVED)
    body = as_reviewer.post("/api/v1/batch/delete", {"image_ids": [pending.id, approved.id]}, format="json").json()
    assert body["successful"] == [pending.id] and body["skipped"][0]["image_id"] == approved.id
    body = as_reviewer.post("/api/v1/batch/delete", {"image_ids": [approved.id], "force": True},
                            format="json").json()
    assert body["successful"] == [approved.id]
    assert not Image.objects.exists()


@pytest.mark.parametrize("version,content_type", [("v1", "application/json"), ("v2", "application/problem+json")])
def test_atomic_batch_changes_nothing_and_answers_409_with_the_would_be_result(
    as_reviewer, make_image, version, content_type
):
    pending = make_image()
    published = make_image(status=ImageStatus.PUBLISHED)
    response = as_reviewer.post(
        f"/api/{version}/batch/approve", {"image_ids": [pending.id, published.id], "atomic": True}, format="json"
    )
    assert response.status_code == 409
    assert response["Content-Type"] == content_type
    body = response.json()
    assert body["code"] == "CONFLICT"
    assert body["details"]["successful"] == [pending.id]
    assert body["details"]["counts"] == {"successful": 1, "failed": 0, "skipped": 1, "total": 2}
    assert Image.objects.get(id=pending.id).status == "pending"
    assert not ImageTransition.objects.exists()  # no history row survived the rollback


def test_atomic_batch_that_can_apply_applies(as_reviewer, make_image):
    ids = [make_image().id for _ in range(3)]
    response = as_reviewer.post("/api/v1/batch/approve", {"image_ids": ids, "atomic": True}, format="json")
    assert response.status_code == 200
    assert set(Image.objects.values_list("status", flat=True)) == {"approved"}


@pytest.mark.parametrize(
    "payload,field",
    [({}, "image_ids"), ({"image_ids": []}, "image_ids"), ({"image_ids": ["x"] * 501}, "image_ids"),
     ({"image_ids": "img_1"}, "image_ids"), ({"image_ids": [{"a": 1}]}, "image_ids"),
     ({"image_ids": ["a"], "atomic": "maybe"}, "atomic")],
)
def test_batch_input_is_validated(as_reviewer, payload, field):
    response = as_reviewer.post("/api/v1/batch/approve", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["details"]["fields"]


def test_http_delete_on_the_batch_delete_route_is_405(as_reviewer, make_image):
    image = make_image()
    response = as_reviewer.delete("/api/v1/batch/delete")
    assert response.status_code == 405
    assert response.json()["code"] == "METHOD_NOT_ALLOWED"
    assert Image.objects.filter(id=image.id).exists()


def test_skipped_entries_carry_an_outcome_code(as_reviewer, make_image):
    pending, approved, published = make_image(), make_image(status=ImageStatus.APPROVED), make_image(
        status=ImageStatus.PUBLISHED
    )
    body = as_reviewer.post(
        "/api/v1/batch/approve", {"image_ids": [pending.id, approved.id, published.id]}, format="json"
    ).json()
    assert [(e["image_id"], e["code"]) for e in body["skipped"]] == [
        (approved.id, "already_in_state"), (published.id, "invalid_transition"),
    ]
    deleted = as_reviewer.post("/api/v1/batch/delete", {"image_ids": [approved.id]}, format="json").json()
    assert deleted["skipped"] == [
        {"image_id": approved.id, "reason": "cannot delete an image that is approved without force",
         "code": "needs_force"},
    ]


def test_an_image_whose_product_is_on_the_platform_is_kept_with_its_code(as_reviewer, make_image):
    from publishing.models import Product

    failed = make_image(status=ImageStatus.FAILED)
    Product.objects.create(image=failed, platform="printify", status="failed", external_id="p-77")
    body = as_reviewer.post("/api/v1/batch/delete", {"image_ids": [failed.id], "force": True}, format="json").json()
    assert body["successful"] == []
    assert body["skipped"] == [
        {"image_id": failed.id, "reason": "its product exists on the platform (p-77)", "code": "has_live_product"}
    ]
    assert Image.objects.filter(id=failed.id).exists()


def test_a_refused_single_action_names_its_outcome_code(as_reviewer, make_image):
    published = make_image(status=ImageStatus.PUBLISHED)
    response = as_reviewer.post(f"/api/v1/images/{published.id}/approve", {}, format="json")
    assert response.status_code == 409
    assert response.json()["details"]["code"] == "invalid_transition"
