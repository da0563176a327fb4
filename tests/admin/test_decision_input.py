"""The admin's approve and reject buttons clean a note or reason as the API does, and refuse one it would refuse."""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote
from django.contrib.messages import get_messages
from django.urls import reverse

from images.models import ImageStatus, ImageTransition

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("view", "field", "value"),
    [
        ("images_image_approve", "note", "looks <b>fine</b>"),
        ("images_image_approve", "note", "x" * 1001),
        ("images_image_reject", "reason", "off javascript:brief()"),
        ("images_image_reject", "reason", "x" * 1001),
    ],
)
def test_a_bad_note_or_reason_changes_nothing_and_says_why(client, staff_reviewer, queue_image, view, field, value):
    image = queue_image()
    client.force_login(staff_reviewer)
    response = client.post(reverse(f"admin:{view}", args=[quote(image.pk)]), {field: value})
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:images_image_change", args=[quote(image.pk)])
    image.refresh_from_db()
    assert image.status == ImageStatus.PENDING and not ImageTransition.objects.filter(image=image).exists()
    assert any(str(m).startswith("Not changed:") for m in get_messages(response.wsgi_request))


def test_an_approval_note_is_recorded_trimmed(client, staff_reviewer, queue_image):
    image = queue_image()
    client.force_login(staff_reviewer)
    client.post(reverse("admin:images_image_approve", args=[quote(image.pk)]), {"note": "  sharp  "})
    assert ImageTransition.objects.get(image=image).note == "sharp"


def test_a_reason_loses_its_null_bytes_as_in_the_api(client, staff_reviewer, queue_image):
    image = queue_image()
    client.force_login(staff_reviewer)
    client.post(reverse("admin:images_image_reject", args=[quote(image.pk)]), {"reason": "off\x00brief"})
    image.refresh_from_db()
    assert image.status == ImageStatus.REJECTED
    assert ImageTransition.objects.get(image=image).note == "offbrief"
