"""`GET images` renders its rows from `.values()` rows through ImageSerializer's own fields: each row must
equal the detail view's body, and a field added to the serializer must show up in both."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.urls import get_script_prefix, set_script_prefix
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from api.versioning import PathVersioning
from core.actors import Actor, Via
from images.api.serializers import HistoryEntrySerializer, ImageSerializer, RowRenderer
from images.api.views import ImageViewSet
from images.models import Generation, Image, ImageStatus
from images.services import images_approve, images_reject, images_transition
from publishing.models import Product

pytestmark = pytest.mark.django_db


@pytest.fixture
def varied_images(make_image, reviewer):
    """Images with and without history, product, thumbnail, generation, dpi and quality problems."""
    generation = Generation.objects.create(prompt="a generated sunset", backend="mock", prompt_hash="0" * 64)
    images = {
        "plain": make_image(),
        "generated": make_image(source="generated", generation=generation, batch_index=0, dpi=300),
        "reviewed": make_image(prompt="reviewed twice"),
        "published": make_image(
            status=ImageStatus.PUBLISHED, dpi=300,
            quality={"valid": False, "errors": ["too small"], "warnings": ["no icc"], "info": {"format": "PNG"}},
        ),
        "thumbnail": make_image(quality_valid=False, quality={"valid": False, "errors": ["blurry"]}),
        "uploaded": make_image(source="uploaded", prompt="", quality={}),
    }
    images_reject(image_ids=[images["reviewed"].id], actor=Actor(reviewer, Via.API), reason="blurry")
    images_approve(image_ids=[images["reviewed"].id, images["generated"].id], actor=Actor(reviewer, Via.ADMIN),
                   note="fixed")
    Product.objects.create(image=images["published"], platform="printify", status="published",
                           external_url="https://shop.example/p/1")
    images["thumbnail"].thumbnail.save("thumb.jpg", ContentFile(b"jpeg"), save=True)
    return images


def _rows_and_details(client, version: str, count: int) -> list[tuple[dict, dict]]:
    response = client.get(f"/api/{version}/images?page_size=50")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert len(rows) == count
    return [(row, client.get(f"/api/{version}/images/{row['id']}").json()) for row in rows]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_list_rows_equal_the_detail_bodies(as_reviewer, varied_images, version):
    pairs = _rows_and_details(as_reviewer, version, len(varied_images))
    for row, detail in pairs:
        assert list(row) == list(detail)  # same members in the same order
        assert row == detail
    images = varied_images
    by_id = {row["id"]: row for row, _ in pairs}
    assert [row["id"] for row, _ in pairs] == [image.id for image in reversed(images.values())]
    history = by_id[images["reviewed"].id]["history"]
    assert [(h["from_status"], h["to_status"], h["via"], h["note"]) for h in history] == [
        ("pending", "rejected", "api", "blurry"), ("rejected", "approved", "admin", "fixed"),
    ]
    assert by_id[images["plain"].id]["history"] == []
    assert by_id[images["generated"].id]["generation"] == images["generated"].generation_id
    assert by_id[images["published"].id]["product"]["external_url"] == "https://shop.example/p/1"
    assert by_id[images["published"].id]["quality"]["errors"] == ["too small"]
    assert by_id[images["thumbnail"].id]["thumbnail_url"].endswith(
        f"/api/{version}/images/{images['thumbnail'].id}/thumbnail"
    )
    plain = by_id[images["plain"].id]
    assert plain["product"] is None and plain["thumbnail_url"] is None and plain["generation"] is None


def test_list_and_detail_give_the_same_times_outside_utc(as_reviewer, varied_images, settings):
    settings.TIME_ZONE = "America/New_York"
    pairs = _rows_and_details(as_reviewer, "v1", len(varied_images))
    assert pairs[0][0]["created_at"].endswith(("-05:00", "-04:00"))
    assert all(row == detail for row, detail in pairs)


class ExtendedHistorySerializer(HistoryEntrySerializer):
    actor_id = serializers.IntegerField(allow_null=True)

    class Meta(HistoryEntrySerializer.Meta):
        fields = [*HistoryEntrySerializer.Meta.fields, "actor_id"]


class ExtendedImageSerializer(ImageSerializer):
    """ImageSerializer with a plain field more, one renamed, a method more and a nested field more."""

    color_mode = serializers.CharField()
    batch = serializers.IntegerField(source="batch_index", allow_null=True)
    prompt_length = serializers.SerializerMethodField()
    file_name = serializers.SerializerMethodField()
    history = ExtendedHistorySerializer(many=True, read_only=True)

    class Meta(ImageSerializer.Meta):
        fields = [*ImageSerializer.Meta.fields, "color_mode", "batch", "prompt_length", "file_name",
                  "quality_warnings"]

    def get_prompt_length(self, image: Image) -> int:
        return len(image.prompt)

    def get_file_name(self, image: Image) -> str:
        return f"{image.pk}: {image.file.name.rsplit('/', 1)[-1]}"


def test_a_field_added_to_the_image_serializer_is_in_the_list_rows_too(as_reviewer, varied_images, monkeypatch):
    monkeypatch.setattr(ImageViewSet, "serializer_class", ExtendedImageSerializer)
    pairs = _rows_and_details(as_reviewer, "v1", len(varied_images))
    for row, detail in pairs:
        assert {"color_mode", "batch", "prompt_length", "file_name", "quality_warnings"} <= set(row)
        assert all("actor_id" in entry for entry in row["history"])
        assert row == detail
    generated = next(row for row, _ in pairs if row["id"] == varied_images["generated"].id)
    assert generated["batch"] == 0 and generated["prompt_length"] == len("retro sunset cat")
    image = varied_images["generated"]
    assert generated["file_name"] == f"{image.pk}: {image.file.name.rsplit('/', 1)[-1]}"


class FieldsByVersion(ImageSerializer):
    """Fields chosen per request: v2 leaves out `product`."""

    def get_fields(self) -> dict:
        fields = super().get_fields()
        if self.context["request"].version == "v2":
            fields.pop("product")
        return fields


def test_fields_chosen_per_request_are_read_per_request(as_reviewer, varied_images, monkeypatch):
    monkeypatch.setattr(ImageViewSet, "serializer_class", FieldsByVersion)
    for version in ("v1", "v2", "v1"):
        for row, detail in _rows_and_details(as_reviewer, version, len(varied_images)):
            assert ("product" in row) is (version == "v1")
            assert row == detail


def _request() -> Request:
    request = Request(APIRequestFactory().get("/api/v1/images"))
    request.version, request.versioning_scheme = "v1", PathVersioning()
    return request


def _render(serializer_class: type[ImageSerializer]) -> list[dict]:
    context = {"request": _request(), "products": {}}
    renderer = RowRenderer(serializer_class(context=context))
    return renderer.render(list(Image.objects.values(*renderer.columns)))


def test_the_renderer_gives_what_the_serializer_gives_for_the_same_instances(varied_images):
    request = _request()
    rendered = _render(ExtendedImageSerializer)
    images = Image.objects.prefetch_related("history")
    products = {varied_images["published"].id: [{"id": "x"}]}
    context = {"request": request, "products": products}
    assert ExtendedImageSerializer(images, many=True, context=context).data == [
        row | {"products": products.get(row["id"], []), "product": (products.get(row["id"]) or [None])[0]}
        for row in rendered
    ]


class FromAProperty(ImageSerializer):
    generation_prompt = serializers.CharField(source="generation.prompt", allow_null=True)

    class Meta(ImageSerializer.Meta):
        fields = [*ImageSerializer.Meta.fields, "generation_prompt"]


class FromAFile(ImageSerializer):
    class Meta(ImageSerializer.Meta):
        fields = [*ImageSerializer.Meta.fields, "file"]


class FromARelatedObject(ImageSerializer):
    class Meta(ImageSerializer.Meta):
        fields = [*ImageSerializer.Meta.fields, "created_by"]


class OwnRepresentation(ImageSerializer):
    def to_representation(self, instance: Image) -> dict:
        return super().to_representation(instance) | {"extra": 1}


@pytest.mark.parametrize("serializer_class", [FromAProperty, FromAFile, FromARelatedObject, OwnRepresentation])
def test_a_field_rows_cannot_render_is_refused_when_the_renderer_is_made(serializer_class):
    with pytest.raises(ImproperlyConfigured, match="cannot be rendered from rows"):
        RowRenderer(serializer_class(context={"request": _request()}))


class ReadsARelatedObject(ImageSerializer):
    generation_prompt = serializers.SerializerMethodField()

    class Meta(ImageSerializer.Meta):
        fields = [*ImageSerializer.Meta.fields, "generation_prompt"]

    def get_generation_prompt(self, image: Image) -> str | None:
        generation = getattr(image, "generation", None)  # a silent None would hide the difference
        return generation.prompt if generation else None


def test_a_method_reading_what_rows_do_not_hold_fails_instead_of_differing(varied_images):
    with pytest.raises(ImproperlyConfigured, match="`generation` of Image is not a column"):
        _render(ReadsARelatedObject)


class DatesAsWritten(ImageSerializer):
    """The image's dates in a custom format beside the default ISO 8601 ones."""

    created_day = serializers.DateTimeField(source="created_at", format="%Y-%m-%d %H:%M")

    class Meta(ImageSerializer.Meta):
        fields = [*ImageSerializer.Meta.fields, "created_day"]


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris"])
def test_datetimes_render_as_the_serializer_writes_them_in_any_time_zone(varied_images, zone):
    from datetime import UTC, datetime

    from django.utils import timezone

    # Whole seconds too: isoformat() then has no fraction, and DRF's representation neither.
    Image.objects.filter(id=varied_images["plain"].id).update(created_at=datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC))
    with timezone.override(zone):
        rendered = {row["id"]: row for row in _render(DatesAsWritten)}
        context = {"request": _request(), "products": {}}
        expected = DatesAsWritten(Image.objects.prefetch_related("history"), many=True, context=context).data
    assert expected and all(rendered[row["id"]] == row for row in expected)
    plain = rendered[varied_images["plain"].id]
    if zone == "UTC":
        assert (plain["created_at"], plain["created_day"]) == ("2026-03-04T05:06:07Z", "2026-03-04 05:06")
    else:
        assert (plain["created_at"], plain["created_day"]) == ("2026-03-04T06:06:07+01:00", "2026-03-04 06:06")
    assert all(entry["created_at"].endswith("Z" if zone == "UTC" else "+01:00") or "+02:00" in entry["created_at"]
               for row in rendered.values() for entry in row["history"])


def test_unfiltered_pages_read_the_table_as_it_is_now(as_reviewer, make_image):
    # The unfiltered list clones one prepared query per request: nothing of an earlier request stays in it.
    first = make_image()
    assert [row["id"] for row in as_reviewer.get("/api/v1/images").json()["results"]] == [first.id]
    second = make_image()
    body = as_reviewer.get("/api/v1/images?page_size=1&page=2").json()
    assert body["count"] == 2 and [row["id"] for row in body["results"]] == [first.id]
    assert [row["id"] for row in as_reviewer.get("/api/v1/images").json()["results"]] == [second.id, first.id]
    assert [row["id"] for row in as_reviewer.get("/api/v2/images").json()["results"]] == [second.id, first.id]


# --- Bodies kept between requests (RowMemo) -----------------------------------------------------

def _page(client, **extra) -> dict[str, dict]:
    response = client.get("/api/v1/images?page_size=50", **extra)
    assert response.status_code == 200
    return {row["id"]: row for row in response.json()["results"]}


def test_a_row_changed_any_way_is_rendered_anew(as_reviewer, varied_images):
    from django.db import connection

    plain, published = varied_images["plain"], varied_images["published"]
    before = _page(as_reviewer)
    assert before == _page(as_reviewer)  # the kept bodies give the same page
    # Written past the gateway's services: no updated_at, no signal.
    Image.objects.filter(id=plain.id).update(status=ImageStatus.REJECTED, quality={"valid": False, "errors": ["x"]})
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {Image._meta.db_table} SET prompt = %s WHERE id = %s", ["a new prompt", published.id])
    after = _page(as_reviewer)
    assert (after[plain.id]["status"], after[plain.id]["quality"]["errors"]) == ("rejected", ["x"])
    assert after[published.id]["prompt"] == "a new prompt"
    assert after[plain.id]["updated_at"] == before[plain.id]["updated_at"]
    unchanged = set(after) - {plain.id, published.id}
    assert all(after[image_id] == before[image_id] for image_id in unchanged)
    for image_id in (plain.id, published.id):
        assert after[image_id] == as_reviewer.get(f"/api/v1/images/{image_id}").json()


def test_products_and_history_are_read_per_request_under_a_kept_body(as_reviewer, varied_images, reviewer):
    plain = varied_images["plain"]
    before = _page(as_reviewer)[plain.id]
    assert before["products"] == [] and before["history"] == []
    Product.objects.create(image=plain, platform="printify", status="published", external_url="https://shop.example/p/2")
    # A history row written past the service: the image row itself does not change.
    plain.history.create(from_status="pending", to_status="pending", actor=reviewer, via="api", note="looked")
    after = _page(as_reviewer)[plain.id]
    assert after["product"]["external_url"] == "https://shop.example/p/2"
    assert [entry["note"] for entry in after["history"]] == ["looked"]
    assert list(after) == list(before)  # the members keep their places
    assert after == as_reviewer.get(f"/api/v1/images/{plain.id}").json()


class _CountedActor(serializers.CharField):
    rendered = 0

    def to_representation(self, value):
        _CountedActor.rendered += 1
        return super().to_representation(value)


def test_history_entries_are_rendered_once_for_the_same_rows(as_reviewer, varied_images, reviewer, monkeypatch):
    from images.api import serializers as image_serializers

    monkeypatch.setitem(HistoryEntrySerializer._declared_fields, "actor", _CountedActor(source="actor_label"))
    monkeypatch.setattr(image_serializers._RowPlan, "_of_class", {})  # planned anew with the counted field
    _CountedActor.rendered = 0
    reviewed = varied_images["reviewed"]
    first = _page(as_reviewer)
    entries = sum(len(row["history"]) for row in first.values())
    assert entries == 3 and _CountedActor.rendered == entries
    assert _page(as_reviewer) == first
    assert _CountedActor.rendered == entries  # kept: copied, not rendered again
    # The table is append-only: a new entry is the one rendered, the others are kept.
    images_transition(image_ids=[reviewed.id], to_status=ImageStatus.PENDING, actor=Actor(reviewer, Via.API),
                      note="changed")
    after = _page(as_reviewer)
    assert [entry["note"] for entry in after[reviewed.id]["history"]][-1] == "changed"
    assert _CountedActor.rendered == entries + 1
    assert after[reviewed.id] == as_reviewer.get(f"/api/v1/images/{reviewed.id}").json()
    # Each render has its own copies of the kept bodies.
    rendered = {row["id"]: row for row in _render(ImageSerializer)}
    rendered[reviewed.id]["history"][0]["note"] = "changed by the response's reader"
    assert {row["id"]: row for row in _render(ImageSerializer)}[reviewed.id]["history"][0]["note"] == "blurry"


def test_urls_are_those_of_each_request(as_reviewer, varied_images):
    image = varied_images["thumbnail"]
    local = _page(as_reviewer)[image.id]
    other = _page(as_reviewer, HTTP_HOST="127.0.0.1")[image.id]
    assert local["file_url"].startswith("http://testserver/") and other["file_url"].startswith("http://127.0.0.1/")
    assert other["thumbnail_url"] == f"http://127.0.0.1/api/v1/images/{image.id}/thumbnail"
    assert as_reviewer.get("/api/v2/images").json()["results"][0]["file_url"].startswith("http://testserver/api/v2/")
    # The scheme and the script prefix (a gateway mounted under a path) are the request's too, on every
    # request: the URL stems reused between requests are those of the same host, prefix, scheme and version.
    for _ in range(2):
        assert _page(as_reviewer, secure=True)[image.id]["file_url"] == f"https://testserver/api/v1/images/{image.id}/file"
        mounted = _mounted_page(as_reviewer, "/pod/")[image.id]
        assert mounted["file_url"] == f"http://testserver/pod/api/v1/images/{image.id}/file"
        assert _page(as_reviewer)[image.id] == local


def _mounted_page(client, prefix: str) -> dict[str, dict]:
    """A page served under a script prefix, as the WSGI handler sets it (the test client does not)."""
    before = get_script_prefix()
    set_script_prefix(prefix)
    try:
        return _page(client)
    finally:
        set_script_prefix(before)


class CountedQuality(ImageSerializer):
    """ImageSerializer counting how often it renders a quality report; its bodies are kept as ImageSerializer's."""

    row_memo_per_request = ImageSerializer.row_memo_per_request
    rendered = 0

    def get_quality(self, image: Image) -> dict:
        CountedQuality.rendered += 1
        return super().get_quality(image)


class NotDeclared(CountedQuality):
    """A subclass that does not declare its own: it could read anything, so nothing of it is kept."""


@pytest.mark.parametrize("serializer_class", [CountedQuality, NotDeclared])
def test_a_body_is_rendered_once_for_the_same_row_only_where_the_class_declares_it(
    as_reviewer, varied_images, monkeypatch, serializer_class
):
    monkeypatch.setattr(ImageViewSet, "serializer_class", serializer_class)
    CountedQuality.rendered = 0
    first = _page(as_reviewer)
    assert CountedQuality.rendered == len(varied_images)
    assert _page(as_reviewer) == first
    kept = serializer_class is CountedQuality
    assert CountedQuality.rendered == len(varied_images) * (1 if kept else 2)
    Image.objects.filter(id=varied_images["plain"].id).update(prompt="changed")
    assert _page(as_reviewer)[varied_images["plain"].id]["prompt"] == "changed"
    assert CountedQuality.rendered == len(varied_images) * (1 if kept else 3) + (1 if kept else 0)


def test_kept_bodies_are_bounded_and_forgotten_when_a_setting_changes(varied_images, settings):
    from images.api.serializers import RowMemo

    memo = RowMemo(Image, ["id", "quality"], per_request=[])
    memo.put(memo.key("ctx", {"id": "a", "quality": {"b": 1, "a": [2]}}), {"id": "a"})
    assert memo.get(memo.key("ctx", {"id": "a", "quality": {"a": [2], "b": 1}})) == {"id": "a"}  # JSON as its text
    assert memo.get(memo.key("ctx", {"id": "a", "quality": {"a": [2], "b": 1.0}})) is None
    assert memo.get(memo.key("other", {"id": "a", "quality": {"a": [2], "b": 1}})) is None
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK}
    assert memo.get(memo.key("ctx", {"id": "a", "quality": {"a": [2], "b": 1}})) is None
    for n in range(RowMemo.MAX_ROWS + 1):
        memo.put(memo.key("ctx", {"id": str(n), "quality": {}}), {"id": str(n)})
    assert memo.get(memo.key("ctx", {"id": "0", "quality": {}})) is None  # started over
    assert memo.get(memo.key("ctx", {"id": str(RowMemo.MAX_ROWS), "quality": {}})) is not None


def test_a_kept_body_is_not_given_under_another_time_zone(varied_images):
    from django.utils import timezone

    utc = {row["id"]: row for row in _render(ImageSerializer)}
    with timezone.override("Europe/Paris"):  # activated for the request: no setting changes
        paris = {row["id"]: row for row in _render(ImageSerializer)}
    assert utc.keys() == paris.keys()
    assert all(row["created_at"].endswith("Z") for row in utc.values())
    assert all(row["created_at"].endswith(("+01:00", "+02:00")) for row in paris.values())
    # The history entries' renderer, shared by the requests, is the current time zone's too.
    entries = [(entry, row["history"][n])
               for row in paris.values() for n, entry in enumerate(utc[row["id"]]["history"])]
    assert entries and all(entry["created_at"].endswith("Z") for entry, _ in entries)
    assert all(there["created_at"].endswith(("+01:00", "+02:00")) for _, there in entries)
    again = {row["id"]: row for row in _render(ImageSerializer)}
    assert all(entry["created_at"].endswith("Z") for row in again.values() for entry in row["history"])


def test_datetimes_follow_a_changed_format_setting(as_reviewer, varied_images, settings):
    image = varied_images["reviewed"]
    assert _page(as_reviewer)[image.id]["created_at"].endswith("Z")  # the fields are bound and kept
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DATETIME_FORMAT": "%Y"}
    row = _page(as_reviewer)[image.id]
    assert row["created_at"] == str(image.created_at.year)
    assert {entry["created_at"] for entry in row["history"]} == {str(image.created_at.year)}


class HostField(serializers.CharField):
    """A column field of its own that reads the request: bound per request, never shared."""

    def to_representation(self, value):
        return f"{self.context['request'].get_host()}:{value}"


class WithHost(ImageSerializer):
    """Nothing of it is kept (it declares no row_memo_per_request): each row's field is read per request."""

    hosted_format = HostField(source="format")

    class Meta(ImageSerializer.Meta):
        fields = [*ImageSerializer.Meta.fields, "hosted_format"]


def test_a_column_field_of_its_own_reads_each_requests_context(as_reviewer, varied_images, monkeypatch):
    monkeypatch.setattr(ImageViewSet, "serializer_class", WithHost)
    image = varied_images["plain"]
    assert _page(as_reviewer)[image.id]["hosted_format"] == f"testserver:{image.format}"
    assert _page(as_reviewer, HTTP_HOST="127.0.0.1")[image.id]["hosted_format"] == f"127.0.0.1:{image.format}"


class HostedEntry(HistoryEntrySerializer):
    """A history entry with a field that reads the request: its renderer is not shared by requests."""

    hosted_via = HostField(source="via")

    class Meta(HistoryEntrySerializer.Meta):
        fields = [*HistoryEntrySerializer.Meta.fields, "hosted_via"]


class WithHostedHistory(ImageSerializer):
    history = HostedEntry(many=True, read_only=True)


def test_nested_items_reading_the_request_read_each_requests_context(as_reviewer, varied_images, monkeypatch):
    monkeypatch.setattr(ImageViewSet, "serializer_class", WithHostedHistory)
    image = varied_images["reviewed"]
    first = _page(as_reviewer)[image.id]["history"]
    assert first and all(entry["hosted_via"].startswith("testserver:") for entry in first)
    other = _page(as_reviewer, HTTP_HOST="127.0.0.1")[image.id]["history"]
    assert all(entry["hosted_via"].startswith("127.0.0.1:") for entry in other)


def test_a_memo_no_plan_holds_is_not_kept_alive_for_setting_changes():
    import gc
    import weakref

    from images.api.serializers import RowMemo

    memo = RowMemo(Image, ["id"], per_request=[])
    gone = weakref.ref(memo)
    del memo
    gc.collect()
    assert gone() is None


class ReadsAnotherColumn(ImageSerializer):
    """A method of its own reading a column ImageSerializer's methods do not: its class names no columns."""

    color = serializers.SerializerMethodField()

    class Meta(ImageSerializer.Meta):
        fields = [*ImageSerializer.Meta.fields, "color"]

    def get_color(self, image: Image) -> str:
        return image.color_mode


def test_the_columns_selected_are_those_the_fields_and_the_named_methods_read(as_reviewer, varied_images,
                                                                             monkeypatch):
    image = varied_images["plain"]
    image_columns = set(RowRenderer(ImageSerializer(context={"request": _request()})).columns)
    assert {"quality", "quality_valid", "thumbnail", "status", "created_at"} <= image_columns
    assert not image_columns & {"batch_index", "color_mode", "created_by_id", "review_rank"}
    assert _page(as_reviewer)[image.id] == as_reviewer.get(f"/api/v1/images/{image.id}").json()
    # A subclass's method reads any column: it is selected for it.
    monkeypatch.setattr(ImageViewSet, "serializer_class", ReadsAnotherColumn)
    assert "color_mode" in RowRenderer(ReadsAnotherColumn(context={"request": _request()})).columns
    assert _page(as_reviewer)[image.id]["color"] == image.color_mode
