"""History that outlives what it records, refused changes in the database itself, and the generation lifecycle."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.actors import Actor, Via
from core.errors import InvalidStateError
from images.generation import generation_cancel
from images.intake import image_optimize
from images.models import Generation, GenerationStatus, GenerationTransition, ImageTransition
from images.models import ImageStatus as S
from images.services import (
    GENERATION_TRANSITIONS,
    TRANSITIONS,
    generation_transition,
    image_approve,
    image_delete,
    image_transition,
)
from publishing.models import Product, ProductTransition
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db
HISTORY_MODELS = [ImageTransition, GenerationTransition, ProductTransition]
G = GenerationStatus


def make_generation(**fields) -> Generation:
    return Generation.objects.create(prompt="retro sunset cat", backend="procedural", prompt_hash="0" * 64,
                                     params={"batch_size": 1}, **fields)


# --- Deleting an image keeps its history ----------------------------------------------------------

def test_deleting_an_image_keeps_its_history_with_a_final_deleted_row(make_image, reviewer_actor):
    image = make_image()
    image_approve(image_id=image.id, actor=reviewer_actor)
    image_delete(image_id=image.id, actor=Actor(reviewer_actor.user, Via.ADMIN), force=True)
    rows = list(ImageTransition.objects.filter(image_id=image.id).values_list(
        "from_status", "to_status", "actor_label", "via"))
    assert rows == [("pending", "approved", "reviewer1", "api"), ("approved", "deleted", "reviewer1", "admin")]
    assert not type(image).objects.filter(id=image.id).exists()
    (event,) = WebhookEvent.objects.filter(event_type="image.deleted")
    assert event.data["image_id"] == image.id and event.data["via"] == "admin"


def test_a_refused_delete_writes_no_deleted_row(make_image, reviewer_actor):
    image = make_image(status=S.PUBLISHED)
    with pytest.raises(InvalidStateError):
        image_delete(image_id=image.id, actor=reviewer_actor, force=True)
    assert not ImageTransition.objects.filter(image_id=image.id).exists()
    assert not WebhookEvent.objects.filter(event_type="image.deleted").exists()


def test_optimising_a_print_file_records_the_old_and_new_file(make_image, reviewer_actor):
    image = make_image(status=S.APPROVED, file_size=1234)
    old_sha = image.sha256
    image_optimize(image_id=image.id, actor=reviewer_actor, width=2400, height=2400)
    image.refresh_from_db()
    (row,) = ImageTransition.objects.filter(image_id=image.id)
    assert (row.from_status, row.to_status, row.actor_label) == ("approved", "approved", "reviewer1")
    assert row.details["old"] == {"file_size": 1234, "sha256": old_sha, "width": 64, "height": 64}
    assert row.details["new"] == {"file_size": image.file_size, "sha256": image.sha256, "width": 2400,
                                  "height": 2400}
    assert image.sha256 != old_sha and image.file_size != 1234


# --- The database refuses changes to history -----------------------------------------------------

@pytest.fixture
def history_rows(make_image, reviewer_actor):
    image = make_image()
    image_approve(image_id=image.id, actor=reviewer_actor)
    generation = make_generation()
    generation_transition(generation_id=generation.id, to_status=G.RUNNING, actor=Actor.system())
    product = Product.objects.create(image=image, platform="printify")
    ProductTransition.objects.create(product=product, to_status="queued", actor_label="system", via="system")
    return {ImageTransition: image.id, GenerationTransition: generation.id, ProductTransition: product.id}


@pytest.mark.parametrize("model", HISTORY_MODELS, ids=lambda m: m.__name__)
def test_the_database_refuses_a_queryset_update_of_history(history_rows, model):
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        model.objects.update(note="rewritten")
    assert not model.objects.filter(note="rewritten").exists()


@pytest.mark.parametrize("model", HISTORY_MODELS, ids=lambda m: m.__name__)
def test_the_database_refuses_a_queryset_delete_of_history(history_rows, model):
    count = model.objects.count()
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        model.objects.all().delete()
    assert model.objects.count() == count == 1


@pytest.mark.parametrize("model", HISTORY_MODELS, ids=lambda m: m.__name__)
def test_the_database_refuses_raw_sql_changes_of_history(history_rows, model):
    table = connection.ops.quote_name(model._meta.db_table)
    for sql in (f"UPDATE {table} SET to_status = 'forged'", f"DELETE FROM {table}"):
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert not model.objects.filter(to_status="forged").exists() and model.objects.count() == 1


def test_deleting_a_user_empties_the_actor_and_keeps_the_username(make_image, reviewer):
    image = make_image()
    image_approve(image_id=image.id, actor=Actor(reviewer, Via.API))
    User.objects.filter(id=reviewer.id).delete()
    row = ImageTransition.objects.get(image_id=image.id)
    assert row.actor_id is None and row.actor_label == "reviewer1" and row.to_status == "approved"


def test_emptying_the_actor_together_with_another_column_is_refused(make_image, reviewer_actor):
    image = make_image()
    image_approve(image_id=image.id, actor=reviewer_actor)
    with pytest.raises(IntegrityError), transaction.atomic():
        ImageTransition.objects.update(actor=None, note="forged")
    assert ImageTransition.objects.get().actor_id == reviewer_actor.user.id


# --- The generation lifecycle --------------------------------------------------------------------

def test_generation_transition_table_matches_the_contract():
    assert GENERATION_TRANSITIONS == {
        G.QUEUED: {G.RUNNING, G.CANCELLED},
        G.RUNNING: {G.COMPLETED, G.FAILED, G.CANCELLED},
        G.COMPLETED: set(), G.FAILED: set(), G.CANCELLED: set(),
    }


@pytest.mark.parametrize(("start", "to"), [
    (G.QUEUED, G.RUNNING), (G.QUEUED, G.CANCELLED), (G.RUNNING, G.COMPLETED), (G.RUNNING, G.FAILED),
    (G.RUNNING, G.CANCELLED),
])
def test_allowed_generation_moves_write_history_and_one_event(start, to):
    generation = make_generation(status=start)
    move = generation_transition(generation_id=generation.id, to_status=to, actor=Actor.system(), note="why")
    assert move.moved and move.obj.status == to
    generation.refresh_from_db()
    assert generation.status == to
    row = GenerationTransition.objects.get(generation_id=generation.id)
    assert (row.from_status, row.to_status, row.actor_label, row.via, row.note) == (start, to, "system", "system",
                                                                                   "why")
    event_type = {G.RUNNING: "generation.started", G.COMPLETED: "generation.completed",
                  G.FAILED: "generation.failed", G.CANCELLED: "generation.cancelled"}[to]
    (event,) = WebhookEvent.objects.all()
    assert event.event_type == event_type and event.data["generation_id"] == generation.id
    # The same move again (a resumed worker) records nothing more.
    assert not generation_transition(generation_id=generation.id, to_status=to, actor=Actor.system()).moved
    assert GenerationTransition.objects.count() == 1 and WebhookEvent.objects.count() == 1


@pytest.mark.parametrize(("start", "to"), [
    (G.QUEUED, G.COMPLETED), (G.QUEUED, G.FAILED), (G.RUNNING, G.QUEUED), (G.COMPLETED, G.RUNNING),
    (G.FAILED, G.RUNNING), (G.CANCELLED, G.RUNNING), (G.COMPLETED, G.CANCELLED),
])
def test_refused_generation_moves_change_nothing(start, to):
    generation = make_generation(status=start)
    with pytest.raises(InvalidStateError):
        generation_transition(generation_id=generation.id, to_status=to, actor=Actor.system())
    generation.refresh_from_db()
    assert generation.status == start
    assert not GenerationTransition.objects.exists() and not WebhookEvent.objects.exists()


def test_cancelling_a_generation_records_who_and_emits_cancelled_once(reviewer):
    generation = make_generation(status=G.RUNNING)
    generation_cancel(generation_id=generation.id, actor=Actor(reviewer, Via.ADMIN))
    row = GenerationTransition.objects.get(generation_id=generation.id)
    assert (row.from_status, row.to_status, row.actor_label, row.via) == ("running", "cancelled", "reviewer1",
                                                                          "admin")
    with pytest.raises(InvalidStateError, match="already cancelled"):
        generation_cancel(generation_id=generation.id, actor=Actor(reviewer, Via.ADMIN))
    (event,) = WebhookEvent.objects.filter(event_type="generation.cancelled")
    assert event.data == {"generation_id": generation.id, "actor": "reviewer1", "via": "admin", "sequence": 1}


# --- The image lifecycle, move by move -----------------------------------------------------------

IMAGE_ALLOWED = [(start, to) for start, targets in TRANSITIONS.items() for to in targets]
IMAGE_REFUSED = [(start, to) for start in S.values for to in S.values if to != start and to not in TRANSITIONS[start]]
IMAGE_EVENTS = {S.APPROVED: "image.approved", S.REJECTED: "image.rejected"}


@pytest.mark.parametrize(("start", "to"), IMAGE_ALLOWED)
def test_allowed_image_moves_write_history_and_their_event_once(make_image, reviewer_actor, start, to):
    image = make_image(status=start)
    image_transition(image_id=image.id, to_status=to, actor=reviewer_actor, note="why")
    row = ImageTransition.objects.get(image_id=image.id)
    assert (row.from_status, row.to_status, row.actor_label, row.via, row.note) == (start, to, "reviewer1", "api",
                                                                                   "why")
    assert list(WebhookEvent.objects.values_list("event_type", flat=True)) == (
        [IMAGE_EVENTS[to]] if to in IMAGE_EVENTS else [])


@pytest.mark.parametrize(("start", "to"), IMAGE_REFUSED)
def test_refused_image_moves_change_nothing(make_image, reviewer_actor, start, to):
    image = make_image(status=start)
    with pytest.raises(InvalidStateError):
        image_transition(image_id=image.id, to_status=to, actor=reviewer_actor)
    image.refresh_from_db()
    assert image.status == start
    assert not ImageTransition.objects.exists() and not WebhookEvent.objects.exists()


def test_the_generation_resource_carries_its_history(client_user, settings):
    settings.RATE_LIMITS = {tier: (100_000, 3600) for tier in ("generation", "publishing", "approval", "read")}
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=client_user).key}")
    created = api.post("/api/v1/generate", {"prompt": "a retro sunset cat", "width": 512, "height": 512},
                       format="json").json()
    api.post(f"/api/v1/generations/{created['id']}/cancel")
    for version in ("v1", "v2"):
        history = api.get(f"/api/{version}/generations/{created['id']}").json()["history"]
        assert [(h["from_status"], h["to_status"], h["actor"], h["via"]) for h in history] == [
            ("", "queued", "client1", "api"), ("queued", "cancelled", "client1", "api")]
    assert api.get("/api/v2/generations").json()["results"][0]["history"][-1]["to_status"] == "cancelled"
