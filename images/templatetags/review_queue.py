"""The admin index's pointer to the review queue, with the number of images waiting."""

from django import template
from django.http import HttpRequest

from images.selectors import image_pending_count

register = template.Library()


@register.simple_tag
def pending_review_count(request: HttpRequest) -> int | None:
    """Images waiting for a decision, or None for a user who may not see the queue."""
    user = request.user
    if not (user.has_perm("images.view_image") or user.has_perm("images.change_image")):
        return None
    return image_pending_count()
