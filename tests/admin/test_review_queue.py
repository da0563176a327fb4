"""The review queue in the admin: listing, files for staff, bulk actions, permissions, query counts."""

from __future__ import annotations

import os
import re

import pytest
from django.contrib.admin.utils import quote
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse, reverse_lazy

from images.models import Image, ImageTransition
from images.models import ImageStatus as S
from publishing.models import Product, ProductTemplate
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db

QUEUE = reverse_lazy("admin:images_image_changelist")


def admin_url(name: str, pk: str) -> str:
    return reverse(f"admin:{name}", args=[quote(pk)])


def act(client, action: str, images, **extra):
    data = {"action": action, "_selected_action": [i.pk for i in images], **extra}
    return client.post(QUEUE, data)


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def statuses(*images) -> list[str]:
    return [Image.objects.get(pk=i.pk).status for i in images]


# --- The queue ---------------------------------------------------------------------------------


def test_queue_lists_pending_first_with_thumbnail_quality_and_duplicate_marker(
    client, staff_reviewer, queue_image, make_generation
):
    first = make_generation(prompt="cat", prompt_hash="a" * 64)
    make_generation(prompt="cat again", prompt_hash="a" * 64)
    approved = queue_image(S.APPROVED, prompt="newest but approved")
    pending = queue_image(prompt="bold cat", generation=first, batch_index=0, warnings=["DPI under 300"])
    broken = queue_image(prompt="tiny dog", errors=["Resolution under 2400x2400"])
    Image.objects.filter(pk=approved.pk).update(created_at=broken.created_at.replace(year=2100))
    client.force_login(staff_reviewer)

    response = client.get(QUEUE)

    assert response.status_code == 200
    rows = [image.pk for image in response.context["cl"].result_list]
    assert rows.index(approved.pk) == 2, "pending images come before decided ones, however new"
    html = response.content.decode()
    assert admin_url("images_image_thumbnail", pending.pk) in html
    assert "/media/" not in html, "media is not served publicly; thumbnails go through the admin view"
    assert "1 warning" in html and "1 error" in html and "print-ready" in html
    assert html.count("duplicate prompt") == 1
    row = {image.pk: image for image in response.context["cl"].result_list}
    assert row[pending.pk].duplicate_prompt is True
    assert row[broken.pk].duplicate_prompt is False
    same_prompt = client.get(reverse("admin:images_generation_changelist") + "?prompt_hash=" + "a" * 64)
    assert same_prompt.status_code == 200 and same_prompt.context["cl"].result_count == 2


def test_queue_filters_by_status_quality_generation_and_searches_prompt(
    client, staff_reviewer, queue_image, make_generation
):
    generation = make_generation()
    ok = queue_image(prompt="neon tiger", generation=generation, batch_index=0)
    warned = queue_image(prompt="pastel whale", warnings=["DPI under 300"])
    broken = queue_image(S.REJECTED, prompt="neon bug", errors=["too small"])
    client.force_login(staff_reviewer)

    def listed(query: str) -> set[str]:
        return {image.pk for image in client.get(str(QUEUE) + query).context["cl"].result_list}

    assert listed("?status__exact=pending") == {ok.pk, warned.pk}
    assert listed("?quality=valid") == {ok.pk}
    assert listed("?quality=warnings") == {warned.pk}
    assert listed("?quality=errors") == {broken.pk}
    assert listed(f"?generation={generation.pk}") == {ok.pk}
    assert listed("?q=neon") == {ok.pk, broken.pk}


def test_queue_query_count_is_the_same_for_10_and_100_rows(client, staff_reviewer, queue_image, make_generation):
    client.force_login(staff_reviewer)
    generation = make_generation(prompt_hash="b" * 64)
    make_generation(prompt_hash="b" * 64)

    def queries_for_page() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(str(QUEUE) + "?all=")
        assert response.status_code == 200
        return len(captured)

    for n in range(10):
        queue_image(generation=generation if n % 2 else None, batch_index=n if n % 2 else None)
    ten = queries_for_page()
    for n in range(10, 100):
        queue_image(generation=generation if n % 2 else None, batch_index=n if n % 2 else None)
    hundred = queries_for_page()

    assert ten == hundred


def test_admin_index_points_reviewers_to_the_queue(client, staff_reviewer, queue_image):
    queue_image()
    queue_image()
    client.force_login(staff_reviewer)
    html = client.get(reverse("admin:index")).content.decode()
    assert "2 images waiting for review" in html
    assert str(QUEUE) + "?status__exact=pending" in html


# --- Files for staff ---------------------------------------------------------------------------


def test_thumbnail_and_file_are_streamed_to_staff_only(client, staff_reviewer, queue_image, django_user_model):
    image = queue_image()
    thumbnail_url = admin_url("images_image_thumbnail", image.pk)
    file_url = admin_url("images_image_file", image.pk)

    assert client.get(thumbnail_url).status_code == 302, "anonymous users are sent to the login page"
    outsider = django_user_model.objects.create_user("outsider", password="x", is_staff=True)
    client.force_login(outsider)
    assert client.get(thumbnail_url).status_code == 403

    client.force_login(staff_reviewer)
    thumb = client.get(thumbnail_url)
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    assert b"".join(thumb.streaming_content)[:3] == b"\xff\xd8\xff"
    full = client.get(file_url)
    assert full.status_code == 200 and full["Content-Type"] == "image/png"
    assert b"".join(full.streaming_content)[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get(admin_url("images_image_thumbnail", "img_missing")).status_code == 404


# --- Bulk actions ------------------------------------------------------------------------------


def test_approve_action_approves_and_reports_refusals(client, staff_reviewer, queue_image):
    a, b = queue_image(), queue_image()
    published = queue_image(S.PUBLISHED)
    client.force_login(staff_reviewer)

    response = act(client, "approve_images", [a, b, published])

    assert response.status_code == 302
    assert statuses(a, b, published) == [S.APPROVED, S.APPROVED, S.PUBLISHED]
    messages = texts(response)
    assert any(a.pk in m and b.pk in m and m.startswith("Approved 2 images") for m in messages)
    assert any(published.pk in m and "cannot approve an image that is published" in m for m in messages)
    row = ImageTransition.objects.get(image=a)
    assert (row.actor_label, row.via) == ("rev", "admin")
    assert WebhookEvent.objects.filter(event_type="image.approved").count() == 2


def test_reject_action_asks_for_a_reason_then_rejects(client, staff_reviewer, queue_image):
    a, b = queue_image(), queue_image()
    client.force_login(staff_reviewer)

    page = act(client, "reject_images", [a, b])
    assert page.status_code == 200
    assert b'name="reason"' in page.content and a.pk.encode() in page.content
    assert statuses(a, b) == [S.PENDING, S.PENDING], "nothing changes before the reason is given"

    done = act(client, "reject_images", [a, b], apply="1", reason="  blurry edges ")
    assert done.status_code == 302
    assert statuses(a, b) == [S.REJECTED, S.REJECTED]
    assert set(ImageTransition.objects.values_list("note", flat=True)) == {"blurry edges"}
    assert any(m.startswith("Rejected 2 images") for m in texts(done))


def test_reset_action_returns_decided_images_to_pending(client, staff_reviewer, queue_image):
    approved, rejected, pending = queue_image(S.APPROVED), queue_image(S.REJECTED), queue_image()
    client.force_login(staff_reviewer)

    response = act(client, "reset_images", [approved, rejected, pending])

    assert statuses(approved, rejected, pending) == [S.PENDING, S.PENDING, S.PENDING]
    assert any(pending.pk in m and "already pending" in m for m in texts(response))


def test_delete_action_confirms_then_deletes_only_undecided_or_rejected(
    client, staff_reviewer, queue_image, django_capture_on_commit_callbacks
):
    pending, rejected, approved = queue_image(), queue_image(S.REJECTED), queue_image(S.APPROVED)
    files = [pending.file.path, pending.thumbnail.path]
    client.force_login(staff_reviewer)

    page = act(client, "delete_images", [pending, rejected, approved])
    assert page.status_code == 200 and Image.objects.count() == 3

    with django_capture_on_commit_callbacks(execute=True):
        done = act(client, "delete_images", [pending, rejected, approved], apply="1")

    assert set(Image.objects.values_list("pk", flat=True)) == {approved.pk}
    assert any(approved.pk in m and "reset it to pending first" in m for m in texts(done))
    assert not any(os.path.exists(path) for path in files), "files go with the row"


def test_djangos_own_bulk_delete_is_not_offered(client, staff_reviewer, queue_image):
    image = queue_image(S.APPROVED)
    client.force_login(staff_reviewer)
    html = client.get(QUEUE).content.decode()
    assert 'value="delete_selected"' not in html and 'value="delete_images"' in html

    act(client, "delete_selected", [image], post="yes")
    assert Image.objects.filter(pk=image.pk).exists()


def test_publish_action_asks_for_templates_then_publishes_one_product_each(client, staff_publisher, queue_image):
    template = ProductTemplate.objects.create(name="Export tee", platform="export", is_default=True)
    other = ProductTemplate.objects.create(name="Mug", platform="export")
    approved, pending = queue_image(S.APPROVED), queue_image()
    client.force_login(staff_publisher)

    page = act(client, "publish_images", [approved, pending])
    assert page.status_code == 200
    html = page.content.decode()
    assert "Export tee" in html and "Mug" in html and 'name="templates"' in html
    assert re.search(rf'<input type="checkbox" name="templates" value="{template.pk}"[^>]* checked', html), \
        "the default template is ticked"
    assert not re.search(rf'<input type="checkbox" name="templates" value="{other.pk}"[^>]* checked', html)
    assert statuses(approved) == [S.APPROVED]

    done = act(client, "publish_images", [approved, pending], apply="1", templates=[template.pk, other.pk])

    assert done.status_code == 302
    assert statuses(approved, pending) == [S.PUBLISHING, S.PENDING]
    assert sorted(Product.objects.filter(image=approved).values_list("template_id", flat=True)) == sorted(
        [template.pk, other.pk])
    assert any(pending.pk in m and "cannot publish an image that is pending" in m for m in texts(done))


def test_publish_without_a_ticked_template_asks_again_and_changes_nothing(client, staff_publisher, queue_image):
    ProductTemplate.objects.create(name="Tee", platform="export")
    approved = queue_image(S.APPROVED)
    client.force_login(staff_publisher)

    response = act(client, "publish_images", [approved], apply="1")

    assert response.status_code == 200, "the template page is shown again"
    assert "Tick at least one template" in str(response.context["form"].errors["templates"])
    assert statuses(approved) == [S.APPROVED]


def test_publish_page_without_a_default_ticks_the_only_template_and_several_defaults_are_ticked(
    client, staff_publisher, queue_image
):
    template = ProductTemplate.objects.create(name="Hoodie", platform="export")
    approved = queue_image(S.APPROVED)
    client.force_login(staff_publisher)

    html = act(client, "publish_images", [approved]).content.decode()
    assert re.search(rf'value="{template.pk}"[^>]* checked', html)

    tee = ProductTemplate.objects.create(name="Tee", platform="export", is_default=True)
    mug = ProductTemplate.objects.create(name="Mug", platform="export", is_default=True)
    html = act(client, "publish_images", [approved]).content.decode()
    assert re.search(rf'value="{tee.pk}"[^>]* checked', html) and re.search(rf'value="{mug.pk}"[^>]* checked', html)
    assert not re.search(rf'value="{template.pk}"[^>]* checked', html)


def test_publish_page_without_templates_links_to_adding_one(client, staff_publisher, queue_image):
    approved = queue_image(S.APPROVED)
    client.force_login(staff_publisher)

    html = act(client, "publish_images", [approved]).content.decode()
    assert "No product templates yet" in html
    assert reverse("admin:publishing_producttemplate_add") in html


def test_reviewers_cannot_publish_and_view_only_staff_cannot_decide(
    client, staff_reviewer, staff_client_role, queue_image
):
    image = queue_image(S.APPROVED)
    pending = queue_image()

    client.force_login(staff_reviewer)
    html = client.get(QUEUE).content.decode()
    assert 'value="approve_images"' in html and 'value="publish_images"' not in html
    act(client, "publish_images", [image], apply="1")
    assert statuses(image) == [S.APPROVED]

    client.force_login(staff_client_role)
    response = client.get(QUEUE)
    assert response.status_code == 200, "viewers may look at the queue"
    assert 'name="action"' not in response.content.decode()
    for action in ("approve_images", "reject_images", "reset_images", "delete_images"):
        act(client, action, [pending, image], apply="1")
    assert statuses(pending, image) == [S.PENDING, S.APPROVED]


def test_non_staff_reviewer_cannot_enter_the_admin(client, reviewer, queue_image):
    queue_image()
    client.force_login(reviewer)
    response = client.get(QUEUE)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


# --- The image page ----------------------------------------------------------------------------


def test_image_page_is_read_only_with_history_quality_and_decision_buttons(
    client, staff_reviewer, queue_image, make_generation
):
    image = queue_image(warnings=["DPI under 300"], generation=make_generation(), batch_index=0)
    act(client, "approve_images", [image])  # anonymous: ignored
    client.force_login(staff_reviewer)
    act(client, "approve_images", [image])
    act(client, "reset_images", [image])

    html = client.get(admin_url("images_image_change", image.pk)).content.decode()
    compact = re.sub(r"\s+", "", html)

    assert 'name="status"' not in html, "status is never edited through the form"
    assert 'name="_save"' not in html
    assert admin_url("images_image_approve", image.pk) in html
    assert admin_url("images_image_reject", image.pk) in html
    assert "DPI under 300" in html and "Decision history" in html
    assert compact.count('<tdclass="field-by"><p>rev</p></td>') == 2, "both decisions, by whom"
    assert compact.count('<tdclass="field-via"><p>Admin</p></td>') == 2
    assert admin_url("images_image_file", image.pk) in html


def test_image_page_buttons_approve_and_reject_with_reason(client, staff_reviewer, queue_image):
    first, second = queue_image(), queue_image()
    client.force_login(staff_reviewer)

    approve = client.post(admin_url("images_image_approve", first.pk))
    assert statuses(first) == [S.APPROVED]
    assert approve["Location"] == admin_url("images_image_change", second.pk), "the next pending opens"

    reject = client.post(admin_url("images_image_reject", second.pk), {"reason": "off-brief"})
    assert statuses(second) == [S.REJECTED]
    assert ImageTransition.objects.get(image=second).note == "off-brief"
    assert reject["Location"] == QUEUE

    again = client.post(admin_url("images_image_reject", second.pk))
    assert any("already rejected" in m for m in texts(again))
    assert client.get(admin_url("images_image_approve", first.pk)).status_code == 405


def test_image_page_buttons_refuse_users_without_review_permission(client, staff_client_role, queue_image):
    image = queue_image()
    client.force_login(staff_client_role)

    page = client.get(admin_url("images_image_change", image.pk)).content.decode()
    assert admin_url("images_image_approve", image.pk) not in page
    assert client.post(admin_url("images_image_approve", image.pk)).status_code == 403
    assert client.post(admin_url("images_image_reject", image.pk)).status_code == 403
    assert statuses(image) == [S.PENDING]


def test_image_page_links_the_product_once_published(client, staff_reviewer, queue_image):
    image = queue_image(S.PUBLISHED)
    product = Product.objects.create(image=image, platform="printify", status="published",
                                     external_id="p-1", external_url="https://printify.example/p-1")
    client.force_login(staff_reviewer)

    html = client.get(admin_url("images_image_change", image.pk)).content.decode()

    assert admin_url("publishing_product_change", product.pk) in html
    assert "https://printify.example/p-1" in html
    assert admin_url("images_image_delete", image.pk) not in html, "published images are never deleted"


def test_deleting_from_the_image_page_uses_the_service_and_never_a_published_image(
    client, staff_reviewer, queue_image
):
    rejected, published = queue_image(S.REJECTED), queue_image(S.PUBLISHED)
    client.force_login(staff_reviewer)

    client.post(admin_url("images_image_delete", rejected.pk), {"post": "yes"})
    refused = client.post(admin_url("images_image_delete", published.pk), {"post": "yes"})

    assert not Image.objects.filter(pk=rejected.pk).exists()
    assert refused.status_code == 403 and statuses(published) == [S.PUBLISHED]
