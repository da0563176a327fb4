"""The product lifecycle: one transition table, a history row and the event of every move, shown in API and admin."""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.actors import Actor, Via
from core.errors import InvalidStateError
from images.models import Generation, GenerationTransition
from images.models import ImageStatus as S
from images.services import generation_transition
from publishing.models import Product, ProductStatus, ProductTemplate, ProductTransition
from publishing.outcomes import PRODUCT_TRANSITIONS, product_progress, product_transition
from publishing.services import image_publish, product_retry, product_template_delete, product_templates_delete
from tests.conftest import make_user
from tests.publishing.conftest import run_worker
from tests.servers.printify import Fault
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db
P = ProductStatus


@pytest.fixture
def actor(publisher) -> Actor:
    return Actor(publisher, Via.API)


def test_product_transition_table_matches_the_contract():
    assert PRODUCT_TRANSITIONS == {
        P.QUEUED: {P.UPLOADING, P.CREATED, P.PUBLISHING, P.PUBLISHED, P.FAILED},
        P.UPLOADING: {P.CREATED, P.FAILED},
        P.CREATED: {P.PUBLISHING, P.FAILED},
        P.PUBLISHING: {P.PUBLISHED, P.FAILED},
        P.FAILED: {P.QUEUED},
        P.PUBLISHED: set(),
    }


ALLOWED = [(start, to) for start, targets in PRODUCT_TRANSITIONS.items() for to in targets]
REFUSED = [(start, to) for start in P.values for to in P.values
           if to != start and to not in PRODUCT_TRANSITIONS[start]]


@pytest.mark.parametrize(("start", "to"), ALLOWED)
def test_allowed_product_moves_write_history_and_their_event_once(make_image, start, to):
    product = Product.objects.create(image=make_image(status=S.PUBLISHING), platform="printify", status=start)
    assert product_transition(product=product, to_status=to, note="why", error="e" if to == P.FAILED else "")
    assert product.status == to and Product.objects.get(id=product.id).status == to
    row = ProductTransition.objects.get(product_id=product.id)
    assert (row.from_status, row.to_status, row.actor_label, row.via, row.note) == (start, to, "system", "system",
                                                                                   "why")
    events = list(WebhookEvent.objects.values_list("event_type", flat=True))
    assert events == {P.PUBLISHED: ["product.published"], P.FAILED: ["product.failed"]}.get(to, [])
    # A resumed worker repeating the move records nothing more.
    assert not product_transition(product=product, to_status=to)
    assert ProductTransition.objects.count() == 1 and WebhookEvent.objects.count() == len(events)


@pytest.mark.parametrize(("start", "to"), REFUSED)
def test_refused_product_moves_change_nothing(make_image, start, to):
    product = Product.objects.create(image=make_image(status=S.PUBLISHING), platform="printify", status=start)
    with pytest.raises(InvalidStateError):
        product_transition(product=product, to_status=to, external_id="x")
    product.refresh_from_db()
    assert product.status == start and product.external_id == ""
    assert not ProductTransition.objects.exists() and not WebhookEvent.objects.exists()


def test_progress_never_changes_the_status(make_image):
    product = Product.objects.create(image=make_image(status=S.PUBLISHING), platform="printify")
    with pytest.raises(TypeError):
        product_progress(product=product, status=P.PUBLISHED)
    assert Product.objects.get(id=product.id).status == P.QUEUED


def test_a_publish_records_every_step_with_who_and_how(printify, hoodie, approved, actor):
    (image,) = approved()
    product = image_publish(image_id=image.id, actor=actor)
    run_worker()
    rows = list(ProductTransition.objects.filter(product_id=product.id).values_list(
        "from_status", "to_status", "actor_label", "via"))
    assert rows == [
        ("", "queued", "publisher1", "api"),
        ("queued", "uploading", "system", "system"),
        ("uploading", "created", "system", "system"),
        ("created", "publishing", "system", "system"),
        ("publishing", "published", "system", "system"),
    ]
    assert WebhookEvent.objects.filter(event_type="product.published").count() == 1


def test_a_failed_product_retried_records_the_retry_and_continues(printify, hoodie, approved, actor):
    (image,) = approved()
    printify.inject("publish", *[Fault(status=500)] * 4)
    product = image_publish(image_id=image.id, actor=actor)
    run_worker()
    product_retry(product_id=product.id, actor=actor)
    run_worker()
    rows = list(ProductTransition.objects.filter(product_id=product.id).values_list("from_status", "to_status"))
    assert rows[-5:] == [("created", "publishing"), ("publishing", "failed"), ("failed", "queued"),
                         ("queued", "publishing"), ("publishing", "published")]
    assert ProductTransition.objects.get(from_status="failed").actor_label == "publisher1"
    assert WebhookEvent.objects.filter(event_type="product.failed").count() == 1
    assert WebhookEvent.objects.filter(event_type="product.published").count() == 1


def test_the_product_resource_carries_its_history(printify, hoodie, approved, publisher):
    (image,) = approved()
    product = image_publish(image_id=image.id, actor=Actor(publisher, Via.API))
    run_worker()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=publisher).key}")
    for path in (f"/api/v1/products/{product.id}", f"/api/v2/products/{product.id}"):
        history = client.get(path).json()["history"]
        assert [entry["to_status"] for entry in history] == ["queued", "uploading", "created", "publishing",
                                                            "published"]
        assert history[0] == {**history[0], "from_status": "", "actor": "publisher1", "via": "api"}
    listed = client.get("/api/v1/products").json()["results"][0]
    assert [entry["to_status"] for entry in listed["history"]][-1] == "published"


# --- Admin: product and generation history ----------------------------------------------------

def test_the_admin_shows_product_and_generation_history(client, make_image):
    staff = make_user("pub", "publishers", is_staff=True)
    product = Product.objects.create(image=make_image(status=S.PUBLISHING), platform="printify")
    product_transition(product=product, to_status=P.FAILED, note="Printify said no", error="no")
    generation = Generation.objects.create(prompt="neon fox", backend="procedural", prompt_hash="1" * 64,
                                           params={"batch_size": 1})
    generation_transition(generation_id=generation.id, to_status="cancelled", actor=Actor(staff, Via.ADMIN),
                          note="not needed")
    assert GenerationTransition.objects.count() == 1
    client.force_login(staff)
    page = client.get(reverse("admin:publishing_product_change", args=[quote(product.pk)])).content.decode()
    assert "Status history" in page and "Printify said no" in page
    page = client.get(reverse("admin:images_generation_change", args=[quote(generation.pk)])).content.decode()
    assert "Status history" in page and "not needed" in page and "pub" in page


# --- Templates: a refused bulk delete deletes nothing ------------------------------------------

def test_a_refused_bulk_template_delete_leaves_every_template_in_place(make_image, actor):
    free, busy, other = (ProductTemplate.objects.create(name=n, platform="export") for n in ("a", "b", "c"))
    Product.objects.create(image=make_image(status=S.PUBLISHING), platform="export", template=busy)
    with pytest.raises(InvalidStateError, match=busy.id):
        product_templates_delete(template_ids=[free.id, busy.id, other.id], actor=actor)
    assert ProductTemplate.objects.count() == 3
    with pytest.raises(InvalidStateError):
        product_template_delete(template_id=busy.id, actor=actor)
    assert product_templates_delete(template_ids=[free.id, other.id], actor=actor) == 2
    assert list(ProductTemplate.objects.values_list("id", flat=True)) == [busy.id]


def test_the_admins_bulk_template_delete_is_all_or_nothing(client, make_image):
    staff = make_user("pub", "publishers", is_staff=True)
    free, busy = (ProductTemplate.objects.create(name=n, platform="export") for n in ("a", "b"))
    Product.objects.create(image=make_image(status=S.PUBLISHING), platform="export", template=busy)
    client.force_login(staff)
    response = client.post(reverse("admin:publishing_producttemplate_changelist"),
                           {"action": "delete_selected", "_selected_action": [free.pk, busy.pk], "post": "yes"})
    assert response.status_code == 403
    assert ProductTemplate.objects.count() == 2
