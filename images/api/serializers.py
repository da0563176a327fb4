"""Input and output shapes of the images API (CONTRACT §4); input rules come from images.validation."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import ISO_8601, serializers
from rest_framework.request import Request
from rest_framework.reverse import reverse
from rest_framework.settings import api_settings

from api.fields import CleanCharField, IdField, IdListField, choice_field
from images import relations
from images.models import Generation, GenerationStatus, Image, ImageStatus, ImageTransition
from images.validation import validate_prompt

# --- Output ------------------------------------------------------------------------------------

class GenerationSerializer(serializers.ModelSerializer):
    """A generation with the ids of the images it has produced so far."""

    image_ids = serializers.SerializerMethodField()

    class Meta:
        model = Generation
        fields = [
            "id", "status", "prompt", "negative_prompt", "style", "genre", "backend", "params", "prompt_hash",
            "image_ids", "success_count", "failed_count", "error", "created_at", "started_at", "finished_at",
        ]
        read_only_fields = fields

    def get_image_ids(self, generation: Generation) -> list[str]:
        # Reads the prefetched `images` (ordered by batch index in the view's queryset).
        return [image.id for image in generation.images.all()]


class HistoryEntrySerializer(serializers.ModelSerializer):
    """One recorded status change."""

    actor = serializers.CharField(source="actor_label")

    class Meta:
        model = ImageTransition
        fields = ["from_status", "to_status", "actor", "via", "note", "created_at"]


class ImageProductSerializer(serializers.Serializer):
    """The product made from an image, when there is one."""

    id = serializers.CharField()
    status = serializers.CharField()
    external_url = serializers.CharField()


class QualityInfoSerializer(serializers.Serializer):
    resolution = serializers.DictField(child=serializers.IntegerField(), required=False)
    format = serializers.CharField(required=False)
    color_mode = serializers.CharField(required=False)
    dpi = serializers.IntegerField(required=False, allow_null=True)
    file_size_mb = serializers.FloatField(required=False)
    print_size_inches = serializers.DictField(child=serializers.FloatField(allow_null=True), required=False)
    has_transparency = serializers.BooleanField(required=False)


class QualitySerializer(serializers.Serializer):
    """The quality report of CONTRACT §6."""

    valid = serializers.BooleanField()
    errors = serializers.ListField(child=serializers.CharField())
    warnings = serializers.ListField(child=serializers.CharField())
    info = QualityInfoSerializer()


class ImageSerializer(serializers.ModelSerializer):
    """An image with its facts, quality report, history, product and the URLs of its bytes."""

    generation = serializers.CharField(source="generation_id", allow_null=True, read_only=True)
    quality = serializers.SerializerMethodField()
    history = HistoryEntrySerializer(many=True, read_only=True)
    product = serializers.SerializerMethodField()
    file_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = [
            "id", "status", "source", "generation", "prompt", "width", "height", "dpi", "format", "file_size",
            "sha256", "file_url", "thumbnail_url", "quality", "history", "product", "created_at", "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(ImageProductSerializer(allow_null=True))
    def get_product(self, image: Image) -> dict[str, Any] | None:
        return relations.product_summaries([image.id]).get(image.id)

    @extend_schema_field(QualitySerializer)
    def get_quality(self, image: Image) -> dict[str, Any]:
        return quality_data(image.quality, image.quality_valid)

    def _url(self, image: Image, name: str) -> str:
        request = self.context["request"]
        return reverse(name, kwargs={"pk": image.id}, request=request)

    @extend_schema_field(OpenApiTypes.URI)
    def get_file_url(self, image: Image) -> str:
        return self._url(image, "image-file")

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_thumbnail_url(self, image: Image) -> str | None:
        return self._url(image, "image-thumbnail") if image.thumbnail else None


def quality_data(quality: dict | None, quality_valid: bool) -> dict[str, Any]:
    """The `quality` member of an image's representation, from its stored report."""
    quality = quality or {}
    return {
        "valid": bool(quality.get("valid", quality_valid)),
        "errors": list(quality.get("errors", [])),
        "warnings": list(quality.get("warnings", [])),
        "info": quality.get("info", {}),
    }


# What `ImageSerializer` reads, as `.values()` columns, for `image_list_data`.
IMAGE_LIST_COLUMNS = (
    "id", "status", "source", "generation_id", "prompt", "width", "height", "dpi", "format", "file_size",
    "sha256", "thumbnail", "quality", "quality_valid", "created_at", "updated_at",
)
HISTORY_LIST_COLUMNS = ("image_id", "from_status", "to_status", "actor_label", "via", "note", "created_at")
_URL_SAFE_ID = re.compile(r"[A-Za-z0-9_-]+")
_PK_MARK = "pk-mark"


def image_list_data(
    rows: list[dict[str, Any]], history: Iterable[tuple], products: dict[str, dict[str, Any]], *, request: Request
) -> list[dict]:
    """`ImageSerializer(many=True).data` for a page, from `.values()` rows instead of model instances.

    Same members, order and values (tests compare the two); a page of 50 through the nested serializers
    cost ~10x the queries behind it: per-row instances, a serializer field walk per attribute, two
    `reverse()` calls per row. Here the URLs are one prefix per request and the fields plain lookups.
    `history` is `HISTORY_LIST_COLUMNS` tuples of the page's images in history order.
    """
    when = _datetime_text()
    entries: dict[str, list[dict]] = {}
    for image_id, from_status, to_status, actor, via, note, created_at in history:
        entries.setdefault(image_id, []).append({
            "from_status": from_status, "to_status": to_status, "actor": actor, "via": via, "note": note,
            "created_at": when(created_at),
        })
    file_url = _url_maker("image-file", request)
    thumbnail_url = _url_maker("image-thumbnail", request)
    results = []
    for row in rows:
        image_id = row["id"]
        results.append({
            "id": image_id,
            "status": row["status"],
            "source": row["source"],
            "generation": row["generation_id"],
            "prompt": row["prompt"],
            "width": row["width"],
            "height": row["height"],
            "dpi": row["dpi"],
            "format": row["format"],
            "file_size": row["file_size"],
            "sha256": row["sha256"],
            "file_url": file_url(image_id),
            "thumbnail_url": thumbnail_url(image_id) if row["thumbnail"] else None,
            "quality": quality_data(row["quality"], row["quality_valid"]),
            "history": entries.get(image_id, []),
            "product": products.get(image_id),
            "created_at": when(row["created_at"]),
            "updated_at": when(row["updated_at"]),
        })
    return results


def _datetime_text():
    """DRF `DateTimeField().to_representation`, with its settings and time zone looked up once."""
    field = serializers.DateTimeField()
    tz = field.default_timezone()
    field = serializers.DateTimeField(default_timezone=tz)
    if tz is None or getattr(field, "format", api_settings.DATETIME_FORMAT) != ISO_8601:
        return field.to_representation

    def text(value: Any) -> Any:
        # What DRF does for an aware datetime in ISO 8601 output: to the current zone, `Z` for UTC.
        if isinstance(value, datetime) and value.utcoffset() is not None:
            value = value.astimezone(tz).isoformat()
            return value[:-6] + "Z" if value.endswith("+00:00") else value
        return field.to_representation(value)

    return text


def _url_maker(name: str, request: Request):
    """`id → reverse(name, pk=id, request=request)`, reversing once and reusing the prefix and suffix."""
    before, _, after = reverse(name, kwargs={"pk": _PK_MARK}, request=request).partition(_PK_MARK)

    def url(image_id: str) -> str:
        if _URL_SAFE_ID.fullmatch(image_id):  # nothing for reverse() to quote
            return f"{before}{image_id}{after}"
        return reverse(name, kwargs={"pk": image_id}, request=request)

    return url


class BatchFailureSerializer(serializers.Serializer):
    image_id = serializers.CharField()
    error = serializers.CharField()
    code = serializers.CharField()


class BatchSkipSerializer(serializers.Serializer):
    image_id = serializers.CharField()
    reason = serializers.CharField()


class BatchCountsSerializer(serializers.Serializer):
    successful = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    total = serializers.IntegerField()


class BatchResultSerializer(serializers.Serializer):
    """Per-id outcome of a batch action."""

    successful = serializers.ListField(child=serializers.CharField())
    failed = BatchFailureSerializer(many=True)
    skipped = BatchSkipSerializer(many=True)
    counts = BatchCountsSerializer()


class CountsByStatusSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    by_status = serializers.DictField(child=serializers.IntegerField())


class StatsSerializer(serializers.Serializer):
    """Counts by status of images, generations and products."""

    images = CountsByStatusSerializer()
    generations = CountsByStatusSerializer()
    products = CountsByStatusSerializer()


# --- Input -------------------------------------------------------------------------------------

IMAGE_STATUSES = [choice.value for choice in ImageStatus]
IMAGE_ORDERING = ["created_at", "updated_at", "file_size", "width", "height"]
IMAGE_ORDERINGS = [prefix + name for name in IMAGE_ORDERING for prefix in ("", "-")]


class ImageFilterSerializer(serializers.Serializer):
    """Query parameters of `GET images`."""

    status = choice_field(IMAGE_STATUSES, required=False)
    generation = IdField(required=False)
    search = CleanCharField(max_length=200, required=False)
    ordering = choice_field(
        IMAGE_ORDERINGS,
        required=False,
        help_text="Sort field, `-` for descending; default `-created_at`.",
    )


GENERATION_STATUSES = [choice.value for choice in GenerationStatus]


class GenerationFilterSerializer(serializers.Serializer):
    """Query parameters of `GET generations`."""

    status = choice_field(GENERATION_STATUSES, required=False)


class ImageUploadSerializer(serializers.Serializer):
    """`POST images`: a PNG/JPEG made elsewhere, registered as pending."""

    file = serializers.FileField(allow_empty_file=False)
    prompt = CleanCharField(max_length=2000, required=False, allow_blank=True, default="")

    def validate_prompt(self, value: str) -> str:
        return validate_prompt(value) if value else ""


class ApproveInputSerializer(serializers.Serializer):
    note = CleanCharField(max_length=2000, required=False, allow_blank=True, default="")


class RejectInputSerializer(serializers.Serializer):
    reason = CleanCharField(max_length=2000, required=False, allow_blank=True, default="")


class DeleteInputSerializer(serializers.Serializer):
    force = serializers.BooleanField(default=False)


class BatchInputSerializer(serializers.Serializer):
    """`image_ids` (1–500) and `atomic` (all or nothing)."""

    image_ids = IdListField()
    atomic = serializers.BooleanField(default=False)


class BatchApproveInputSerializer(BatchInputSerializer):
    note = CleanCharField(max_length=2000, required=False, allow_blank=True, default="")


class BatchRejectInputSerializer(BatchInputSerializer):
    reason = CleanCharField(max_length=2000, required=False, allow_blank=True, default="")


class BatchDeleteInputSerializer(BatchInputSerializer):
    force = serializers.BooleanField(default=False)
