"""Input and output shapes of the publishing API (CONTRACT §4, §8)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from images.validation import clean_text
from publishing.models import Platform, Product, ProductStatus, ProductTemplate
from publishing.services import PRICE_MAX_CENTS, TITLE_MAX

MAX_BATCH_IDS = 500
ID_MAX_LENGTH = 40


class CleanText(serializers.CharField):
    """Trimmed, control characters removed (CONTRACT §4 input rules)."""

    def to_internal_value(self, data: Any) -> str:
        return clean_text(super().to_internal_value(data))


def _choice(choices: list[str]) -> serializers.ChoiceField:
    """An optional enum whose refusal names the allowed values (CONTRACT §4 input rules)."""
    return serializers.ChoiceField(
        choices=choices, required=False,
        error_messages={"invalid_choice": f'"{{input}}" is not a valid choice. Allowed: {", ".join(choices)}.'},
    )


class ProductFilterSerializer(serializers.Serializer):
    """Query parameters of `GET products`."""

    status = _choice(ProductStatus.values)
    platform = _choice(Platform.values)
    image = CleanText(max_length=ID_MAX_LENGTH, required=False)


class ProductSerializer(serializers.ModelSerializer):
    """A product: where one design is (being) published, with its external ids as they are learnt."""

    image = serializers.CharField(source="image_id", read_only=True)
    template = serializers.CharField(source="template_id", read_only=True, allow_null=True)

    class Meta:
        model = Product
        fields = [
            "id", "image", "status", "platform", "template", "title", "description", "price_cents", "tags",
            "external_upload_id", "external_id", "external_url", "error", "attempts", "created_at", "updated_at",
            "published_at",
        ]
        read_only_fields = fields


class ProductTemplateSerializer(serializers.ModelSerializer):
    """A template; for Printify it needs blueprint, provider and at least one variant."""

    name = CleanText(max_length=200)
    title_template = CleanText(max_length=500, required=False)
    description_template = CleanText(max_length=5000, required=False, allow_blank=True)
    platform = _choice(Platform.values)
    variant_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), max_length=500, required=False)
    tags = serializers.ListField(child=CleanText(max_length=100), max_length=50, required=False)
    price_cents = serializers.IntegerField(min_value=1, max_value=PRICE_MAX_CENTS, required=False)
    blueprint_id = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    print_provider_id = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    position = CleanText(max_length=32, required=False)
    x = serializers.FloatField(min_value=0, max_value=1, required=False)
    y = serializers.FloatField(min_value=0, max_value=1, required=False)
    scale = serializers.FloatField(min_value=0.01, max_value=10, required=False)
    angle = serializers.IntegerField(min_value=-360, max_value=360, required=False)
    # Declared so DRF adds no uniqueness check: marking a new default unmarks the old one (services).
    is_default = serializers.BooleanField(required=False)

    class Meta:
        model = ProductTemplate
        fields = [
            "id", "name", "platform", "blueprint_id", "print_provider_id", "variant_ids", "price_cents", "position",
            "x", "y", "scale", "angle", "title_template", "description_template", "tags", "is_default",
            "created_at", "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        def value(name: str) -> Any:
            if name in attrs:
                return attrs[name]
            if self.instance is not None:
                return getattr(self.instance, name)
            return ProductTemplate._meta.get_field(name).get_default()

        if value("platform") == Platform.PRINTIFY:
            errors = {
                name: ["Required for a Printify template."]
                for name in ("blueprint_id", "print_provider_id", "variant_ids")
                if not value(name)
            }
            if errors:
                raise serializers.ValidationError(errors)
        if "variant_ids" in attrs:
            attrs["variant_ids"] = list(dict.fromkeys(attrs["variant_ids"]))
        return attrs


class PublishInputSerializer(serializers.Serializer):
    """`POST images/{id}/publish`: an optional template and listing overrides."""

    template = CleanText(max_length=ID_MAX_LENGTH, required=False, allow_blank=True, allow_null=True)
    title = CleanText(max_length=TITLE_MAX, required=False)
    description = CleanText(max_length=20000, required=False, allow_blank=True)
    price_cents = serializers.IntegerField(min_value=1, max_value=PRICE_MAX_CENTS, required=False)


class BatchPublishInputSerializer(serializers.Serializer):
    """`POST batch/publish`: `image_ids` (1–500), optional `template` and `atomic`."""

    image_ids = serializers.ListField(
        child=CleanText(max_length=ID_MAX_LENGTH), min_length=1, max_length=MAX_BATCH_IDS
    )
    template = CleanText(max_length=ID_MAX_LENGTH, required=False, allow_blank=True, allow_null=True)
    atomic = serializers.BooleanField(default=False)
