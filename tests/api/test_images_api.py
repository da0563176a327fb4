"""The images endpoints through the real URLconf, database and services."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from images.models import Image, ImageStatus, ImageTransition
from tests.conftest import png_bytes

pytestmark = pytest.mark.django_db

DETAIL_FIELDS = {
    "id", "status", "source", "generation", "prompt", "width", "height", "dpi", "format", "file_size", "sha256",
    "file_url", "thumbnail_url", "quality", "history", "products", "product", "created_at", "updated_at",
}


def test_list_v1_is_page_numbered_with_count(as_client, make_image):
    for _ in range(3):
        make_image()
    body = as_client.get("/api/v1/images?page_size=2").json()
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert "page=2" in body["next"] and body["previous"] is None
    page2 = as_client.get(body["next"]).json()
    assert len(page2["results"]) == 1


def test_list_v2_uses_cursors_and_walks_every_image_once(as_client, make_image):
    made = {make_image().id for _ in range(5)}
    response = as_client.get("/api/v2/images/?page_size=2")
    body = response.json()
    assert set(body) == {"results", "next", "previous"}
    seen = [row["id"] for row in body["results"]]
    while body["next"]:
        assert "cursor=" in body["next"]
        body = as_client.get(body["next"]).json()
        seen += [row["id"] for row in body["results"]]
    assert sorted(seen) == sorted(made)


def test_page_size_is_capped_at_200(as_client, make_image):
    make_image()
    from api.pagination import PagePagination

    assert PagePagination.max_page_size == 200
    assert as_client.get("/api/v1/images?page_size=100000").status_code == 200


def test_list_filters_by_status_generation_and_search(as_client, make_image):
    approved = make_image(status=ImageStatus.APPROVED, prompt="a red fox")
    make_image(prompt="blue whale")
    assert [r["id"] for r in as_client.get("/api/v1/images?status=approved").json()["results"]] == [approved.id]
    assert [r["id"] for r in as_client.get("/api/v1/images?search=FOX").json()["results"]] == [approved.id]
    assert as_client.get("/api/v1/images?generation=gen_nothing").json()["count"] == 0


def test_list_orders_as_asked(as_client, make_image):
    small = make_image(file_size=10)
    big = make_image(file_size=1000)
    ids = [r["id"] for r in as_client.get("/api/v1/images?ordering=file_size").json()["results"]]
    assert ids == [small.id, big.id]
    ids = [r["id"] for r in as_client.get("/api/v1/images?ordering=-file_size").json()["results"]]
    assert ids == [big.id, small.id]


def test_unknown_ordering_is_refused_with_the_allowed_values(as_client):
    response = as_client.get("/api/v1/images?ordering=prompt")
    assert response.status_code == 400
    assert "-created_at" in response.json()["details"]["fields"]["ordering"][0]


def test_unknown_status_filter_is_refused_with_the_allowed_values(as_client):
    response = as_client.get("/api/v1/images?status=bogus")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "VALIDATION_ERROR"
    assert "pending" in body["details"]["fields"]["status"][0]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_list_query_count_does_not_grow_with_the_page(as_client, make_image, reviewer_actor, version):
    from images.services import images_approve

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert as_client.get(f"/api/{version}/images?page_size=50").status_code == 200
        return len(queries)

    images_approve(image_ids=[make_image().id for _ in range(2)], actor=reviewer_actor)
    count_queries()  # the first request of a process does one-off work (caches, rate-limit housekeeping)
    few = count_queries()
    images_approve(image_ids=[make_image().id for _ in range(10)], actor=reviewer_actor)
    assert count_queries() == few


def test_detail_has_every_field_history_and_urls(as_reviewer, make_image):
    image = make_image(quality={"valid": False, "errors": ["too small"], "warnings": [], "info": {"format": "PNG"}})
    as_reviewer.post(f"/api/v1/images/{image.id}/approve", {"note": "nice"}, format="json")
    body = as_reviewer.get(f"/api/v1/images/{image.id}").json()
    assert set(body) == DETAIL_FIELDS
    assert body["status"] == "approved"
    assert body["quality"]["valid"] is False and body["quality"]["errors"] == ["too small"]
    assert body["history"][-1] | {"created_at": None} == {
        "from_status": "pending", "to_status": "approved", "actor": "reviewer1", "via": "api", "note": "nice",
        "created_at": None,
    }
    assert body["product"] is None and body["products"] == []
    assert body["file_url"] == f"http://testserver/api/v1/images/{image.id}/file"
    assert body["thumbnail_url"] is None


def test_detail_of_unknown_image_is_404(as_client):
    response = as_client.get("/api/v1/images/img_missing")
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"


def test_file_returns_the_bytes_and_requires_auth(as_client, anon, make_image):
    image = make_image()
    response = as_client.get(f"/api/v1/images/{image.id}/file")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == image.file.open("rb").read()
    assert anon.get(f"/api/v1/images/{image.id}/file").status_code == 401


def test_file_answers_an_image_accept_header(as_client, make_image):
    image = make_image()
    response = as_client.get(f"/api/v2/images/{image.id}/file", HTTP_ACCEPT="image/png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == image.file.open("rb").read()


def test_thumbnail_missing_is_404(as_client, make_image):
    response = as_client.get(f"/api/v2/images/{make_image().id}/thumbnail/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_upload_registers_a_pending_uploaded_image(as_client):
    upload = png_bytes(80, 60)
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = as_client.post(
        "/api/v1/images", {"file": SimpleUploadedFile("mine.png", upload, "image/png"), "prompt": "my own design"},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending" and body["source"] == "uploaded" and body["prompt"] == "my own design"
    assert (body["width"], body["height"]) == (80, 60)
    assert response["Location"].endswith(f"/api/v1/images/{body['id']}")
    assert body["thumbnail_url"].endswith("/thumbnail")
    assert Image.objects.get(id=body["id"]).sha256


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_uploading_the_same_bytes_again_is_a_conflict_naming_the_image(as_client, version):
    from django.core.files.uploadedfile import SimpleUploadedFile

    def upload():
        file = SimpleUploadedFile("mine.png", png_bytes(80, 60), "image/png")
        return as_client.post(f"/api/{version}/images", {"file": file}, format="multipart")

    first = upload().json()
    again = upload()
    assert again.status_code == 409
    body = again.json()
    assert body["code"] == "CONFLICT"
    assert body["details"]["existing_image_id"] == first["id"]
    assert Image.objects.count() == 1


def test_upload_of_a_non_image_is_a_validation_error(as_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = as_client.post(
        "/api/v1/images", {"file": SimpleUploadedFile("x.png", b"not an image at all", "image/png")},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_ERROR"


def test_upload_as_json_is_415(as_client):
    response = as_client.post("/api/v1/images", {"prompt": "x"}, format="json")
    assert response.status_code == 415
    assert response.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_upload_with_markup_prompt_is_refused(as_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = as_client.post(
        "/api/v1/images",
        {"file": SimpleUploadedFile("a.png", png_bytes(), "image/png"), "prompt": "<script>alert(1)</script>"},
        format="multipart",
    )
    assert response.status_code == 400
    assert "prompt" in response.json()["details"]["fields"]


def test_approve_reject_reset_go_through_the_lifecycle(as_reviewer, make_image):
    image = make_image()
    url = f"/api/v1/images/{image.id}"
    assert as_reviewer.post(f"{url}/reject", {"reason": "blurry"}, format="json").json()["status"] == "rejected"
    assert as_reviewer.post(f"{url}/reset/").json()["status"] == "pending"
    assert as_reviewer.post(f"{url}/approve").json()["status"] == "approved"
    transitions = list(ImageTransition.objects.filter(image=image).values_list("to_status", "note", "via"))
    assert transitions == [("rejected", "blurry", "api"), ("pending", "", "api"), ("approved", "", "api")]


def test_refused_transition_is_409_invalid_state(as_reviewer, make_image):
    image = make_image(status=ImageStatus.PUBLISHED)
    response = as_reviewer.post(f"/api/v1/images/{image.id}/approve")
    assert response.status_code == 409
    assert response.json()["code"] == "INVALID_STATE"
    v2 = as_reviewer.post(f"/api/v2/images/{image.id}/approve")
    assert v2.status_code == 409 and v2.json()["code"] == "INVALID_STATE"


def test_delete_removes_a_pending_image_and_refuses_approved_without_force(as_reviewer, make_image):
    pending, approved = make_image(), make_image(status=ImageStatus.APPROVED)
    assert as_reviewer.delete(f"/api/v1/images/{pending.id}").status_code == 204
    assert not Image.objects.filter(id=pending.id).exists()
    assert as_reviewer.delete(f"/api/v1/images/{approved.id}").status_code == 409
    assert as_reviewer.delete(f"/api/v1/images/{approved.id}?force=true").status_code == 204


def test_client_role_may_read_but_not_review(as_client, make_image):
    image = make_image()
    assert as_client.get(f"/api/v1/images/{image.id}").status_code == 200
    for method, path in [
        ("post", f"/api/v1/images/{image.id}/approve"),
        ("post", f"/api/v1/images/{image.id}/reject"),
        ("post", f"/api/v1/images/{image.id}/reset"),
        ("delete", f"/api/v1/images/{image.id}"),
        ("post", "/api/v1/batch/approve"),
        ("post", "/api/v1/batch/delete"),
    ]:
        response = getattr(as_client, method)(path, {"image_ids": [image.id]}, format="json")
        assert response.status_code == 403, path
        assert response.json()["code"] == "FORBIDDEN"
    assert Image.objects.get(id=image.id).status == "pending"


def test_user_without_role_is_403_on_reads(db, make_image):
    from tests.api.conftest import token_client
    from tests.conftest import make_user

    make_image()
    response = token_client(make_user("nobody")).get("/api/v1/images")
    assert response.status_code == 403 and response.json()["code"] == "FORBIDDEN"
    assert "results" not in response.json()


@pytest.mark.parametrize(
    "method,path",
    [("get", "/api/v1/images"), ("get", "/api/v2/images/x"), ("post", "/api/v1/images/x/approve"),
     ("get", "/api/v1/generations"), ("post", "/api/v1/generate"), ("get", "/api/v1/stats"),
     ("post", "/api/v1/batch/reject"), ("get", "/api/v1/images/x/thumbnail")],
)
def test_anonymous_is_401_with_a_token_challenge(anon, method, path):
    response = getattr(anon, method)(path)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["code"] == "UNAUTHORIZED"


def test_bad_token_is_401(db):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get("/api/v1/images")
    assert response.status_code == 401 and response.json()["code"] == "UNAUTHORIZED"


def test_session_authentication_lists_images(client, reviewer, make_image):
    image = make_image()
    client.force_login(reviewer)
    response = client.get("/api/v1/images")
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [image.id]


def test_stats_counts_by_status(as_client, make_image):
    make_image()
    make_image()
    make_image(status=ImageStatus.APPROVED)
    body = as_client.get("/api/v1/stats").json()
    assert body["images"] == {"total": 3, "by_status": {"pending": 2, "approved": 1}}
    assert body["generations"]["total"] == 0 and body["products"]["total"] == 0


def test_detail_nests_the_product_when_there_is_one(as_client, make_image):
    from publishing.models import Product

    image = make_image(status=ImageStatus.PUBLISHED)
    product = Product.objects.create(
        image=image, platform="printify", status="published", external_url="https://shop.example/p/1"
    )
    body = as_client.get(f"/api/v2/images/{image.id}").json()
    summary = {"id": product.id, "status": "published", "platform": "printify", "template": None,
               "external_url": "https://shop.example/p/1"}
    assert body["products"] == [summary] and body["product"] == summary
