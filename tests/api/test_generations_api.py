"""`POST generate` and the generation endpoints."""

from __future__ import annotations

import pytest

from images.models import Generation, GenerationStatus

pytestmark = pytest.mark.django_db


def test_generate_queues_a_generation_and_points_at_it(as_client):
    response = as_client.post(
        "/api/v1/generate", {"prompt": "  retro\nsunset cat ", "batch_size": 2, "cfg_scale": 3.5, "seed": 7},
        format="json",
    )
    assert response.status_code == 202, response.content
    body = response.json()
    generation = Generation.objects.get(id=body["id"])
    assert response["Location"] == f"http://testserver/api/v1/generations/{generation.id}"
    assert body["status"] == "queued" and body["prompt"] == "retro sunset cat"
    assert body["params"]["guidance"] == 3.5 and body["params"]["batch_size"] == 2
    assert body["image_ids"] == [] and body["prompt_hash"] == generation.prompt_hash
    assert as_client.get(response["Location"]).json()["id"] == generation.id


def test_same_prompt_again_is_409_duplicate_with_the_existing_id(as_client):
    first = as_client.post("/api/v1/generate", {"prompt": "a quiet lake"}, format="json").json()
    again = as_client.post("/api/v1/generate", {"prompt": "A quiet  lake"}, format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "DUPLICATE_PROMPT"
    assert again.json()["details"]["existing_generation_id"] == first["id"]
    v2 = as_client.post("/api/v2/generate", {"prompt": "a quiet lake"}, format="json")
    assert v2.json()["details"]["existing_generation_id"] == first["id"]
    allowed = as_client.post("/api/v1/generate", {"prompt": "a quiet lake", "allow_duplicate": True}, format="json")
    assert allowed.status_code == 202


@pytest.mark.parametrize(
    "payload,field",
    [({}, "prompt"), ({"prompt": "ab"}, "prompt"), ({"prompt": "x" * 2001}, "prompt"),
     ({"prompt": "cat <b>bold</b>"}, "prompt"), ({"prompt": "cat", "batch_size": 26}, "batch_size"),
     ({"prompt": "cat", "steps": "many"}, "steps"), ({"prompt": "cat", "width": 100}, "width"),
     ({"prompt": "cat", "backend": "dalle"}, "backend"), ({"prompt": "cat", "guidance": True}, "guidance"),
     ({"prompt": "cat", "seed": -1}, "seed")],
)
def test_generate_refuses_bad_input_field_by_field(as_client, payload, field):
    response = as_client.post("/api/v1/generate", payload, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "VALIDATION_ERROR"
    assert field in body["details"]["fields"]
    assert not Generation.objects.exists()


def test_unknown_backend_lists_the_allowed_ones(as_client):
    message = as_client.post("/api/v1/generate", {"prompt": "cat", "backend": "dalle"}, format="json").json()
    assert "procedural" in message["details"]["fields"]["backend"][0]


def test_generate_v2_validation_error_is_a_problem_with_pointers(as_client):
    response = as_client.post("/api/v2/generate", {"prompt": "cat", "steps": 5}, format="json")
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 400 and body["code"] == "VALIDATION_ERROR"
    assert [e["pointer"] for e in body["errors"]] == ["#/steps"]


def test_user_without_a_role_cannot_generate(db):
    from tests.api.conftest import token_client
    from tests.conftest import make_user

    response = token_client(make_user("viewer")).post("/api/v1/generate", {"prompt": "cat"}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "FORBIDDEN"
    assert not Generation.objects.exists()


def test_list_and_filter_generations(as_client):
    as_client.post("/api/v1/generate", {"prompt": "one cat"}, format="json")
    second = as_client.post("/api/v1/generate", {"prompt": "two cats"}, format="json").json()
    Generation.objects.filter(id=second["id"]).update(status=GenerationStatus.COMPLETED)
    assert as_client.get("/api/v1/generations").json()["count"] == 2
    completed = as_client.get("/api/v1/generations/?status=completed").json()["results"]
    assert [g["id"] for g in completed] == [second["id"]]
    assert set(as_client.get("/api/v2/generations").json()) == {"results", "next", "previous"}
    assert as_client.get("/api/v1/generations?status=nope").status_code == 400


def test_generation_lists_its_image_ids(as_client, make_image):
    generation = Generation.objects.get(id=as_client.post("/api/v1/generate", {"prompt": "cats"},
                                                         format="json").json()["id"])
    images = [make_image(generation=generation, batch_index=i) for i in range(2)]
    assert as_client.get(f"/api/v1/generations/{generation.id}").json()["image_ids"] == [i.id for i in images]


def test_cancel_then_cancel_again_is_invalid_state(as_client):
    generation = as_client.post("/api/v1/generate", {"prompt": "to be cancelled"}, format="json").json()
    response = as_client.post(f"/api/v1/generations/{generation['id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    again = as_client.post(f"/api/v1/generations/{generation['id']}/cancel/")
    assert again.status_code == 409 and again.json()["code"] == "INVALID_STATE"
    assert as_client.post("/api/v1/generations/gen_missing/cancel").status_code == 404
