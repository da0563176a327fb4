"""The review workspace with publishing's decision: `p` approves a design if needed and publishes it.

Publishing uses the default product template(s), through the same services as the API's publish and the
queue's publish action; only users with the publish permission see the key and its button.
"""

from __future__ import annotations

from django.db import transaction

from core.actors import Actor
from core.batch import BatchResult
from images.models import Image, ImageStatus
from images.review import ReviewAction, ReviewWorkspace
from images.services import image_approve, images_approve
from publishing.models import Product
from publishing.services import image_publish, images_publish

# A design still waiting (or rejected earlier) is approved first, in the same transaction as the publish.
UNDECIDED = [ImageStatus.PENDING, ImageStatus.REJECTED]


def approve_and_publish(image_id: str, actor: Actor, reason: str) -> Product:
    """Approve the image unless it already is, and start publishing it with the default template."""
    with transaction.atomic():
        if Image.objects.filter(pk=image_id, status__in=UNDECIDED).exists():
            image_approve(image_id=image_id, actor=actor)
        return image_publish(image_id=image_id, actor=actor)


def approve_and_publish_many(image_ids: list[str], actor: Actor, reason: str) -> BatchResult:
    """The same for a selection, set-wise: the undecided are approved in one go, then all are published."""
    with transaction.atomic():
        undecided = list(Image.objects.filter(pk__in=image_ids, status__in=UNDECIDED).values_list("pk", flat=True))
        if undecided:
            images_approve(image_ids=undecided, actor=actor)
        return images_publish(image_ids=image_ids, actor=actor, batch_action="publish")


PUBLISH = ReviewAction(
    name="publish", key="p", label="Publish", permission="publishing.publish_image", tier="publishing",
    status=ImageStatus.PUBLISHING, one=approve_and_publish, many=approve_and_publish_many,
)


class PublishingReviewWorkspace(ReviewWorkspace):
    """The workspace the admin serves: the review decisions plus publishing."""

    def actions(self) -> list[ReviewAction]:
        return [*super().actions(), PUBLISH]


workspace = PublishingReviewWorkspace()
