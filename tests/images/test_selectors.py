"""The shared reads: the review queue, the image list's filters and the counts by status."""

from datetime import timedelta

import pytest
from django.utils import timezone

from images import selectors
from images.models import Generation, GenerationStatus, ImageStatus
from publishing.models import Product

pytestmark = pytest.mark.django_db


@pytest.fixture
def generation():
    return Generation.objects.create(prompt="a sunset", backend="mock", prompt_hash="0" * 64)


@pytest.fixture
def queue(make_image, generation):
    """Pending images an hour apart (oldest first), one of a generation, and decided ones around them."""
    start = timezone.now() - timedelta(days=1)
    return {
        "first": make_image(created_at=start),
        "of_generation": make_image(created_at=start + timedelta(hours=1), generation=generation, batch_index=0),
        "approved": make_image(status=ImageStatus.APPROVED, created_at=start + timedelta(hours=2)),
        "last": make_image(created_at=start + timedelta(hours=3), prompt="Neon CITY at night"),
        "rejected": make_image(status=ImageStatus.REJECTED, created_at=start + timedelta(hours=4)),
    }


def test_the_queue_holds_pending_images_oldest_first_or_newest_first(queue):
    oldest_first = [queue["first"].id, queue["of_generation"].id, queue["last"].id]
    assert [image.id for image in selectors.images_pending()] == oldest_first
    assert [image.id for image in selectors.images_pending(newest_first=True)] == oldest_first[::-1]
    assert selectors.image_pending_ids() == oldest_first
    assert selectors.image_pending_count() == 3


def test_the_queue_of_a_generation_holds_only_its_pending_images(queue, generation, make_image):
    make_image(status=ImageStatus.APPROVED, generation=generation, batch_index=1)
    assert selectors.image_pending_ids(generation_id=generation.id) == [queue["of_generation"].id]
    assert selectors.image_pending_ids(generation_id="gen_unknown") == []


def test_after_a_decision_the_next_image_is_the_newest_other_pending_one(queue):
    assert selectors.image_next_pending_id(after=queue["last"].id) == queue["of_generation"].id
    assert selectors.image_next_pending_id(after=queue["first"].id) == queue["last"].id


def test_there_is_no_next_image_when_nothing_else_is_pending(make_image):
    only = make_image()
    make_image(status=ImageStatus.APPROVED)
    assert selectors.image_next_pending_id(after=only.id) is None


def test_the_list_filters_narrow_by_status_generation_and_prompt(queue, generation):
    def ids(**filters) -> set[str]:
        return {image.id for image in selectors.images_filter(**filters)}

    assert ids() == {image.id for image in queue.values()}
    assert ids(status=ImageStatus.REJECTED) == {queue["rejected"].id}
    assert ids(generation_id=generation.id) == {queue["of_generation"].id}
    assert ids(search="neon city") == {queue["last"].id}  # any case
    assert ids(status=ImageStatus.PENDING, search="sunset") == {queue["first"].id, queue["of_generation"].id}
    assert ids(generation_id="", search="") == ids()  # empty parameters filter nothing


def test_the_list_filters_narrow_a_given_queryset(queue, generation):
    decided = selectors.images_filter(status=ImageStatus.APPROVED)
    assert list(selectors.images_filter(decided, generation_id=generation.id)) == []
    assert list(selectors.images_filter(decided, search="retro")) == [queue["approved"]]


def test_stats_count_images_generations_and_products_by_status(queue, generation):
    Generation.objects.create(prompt="another", backend="mock", prompt_hash="1" * 64, status=GenerationStatus.FAILED)
    Product.objects.create(image=queue["approved"], platform="printify", status="published")
    assert selectors.stats() == {
        "images": {"total": 5, "by_status": {"pending": 3, "approved": 1, "rejected": 1}},
        "generations": {"total": 2, "by_status": {"queued": 1, "failed": 1}},
        "products": {"total": 1, "by_status": {"published": 1}},
    }
