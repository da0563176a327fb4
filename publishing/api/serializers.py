"""Input and output shapes of the publishing API (CONTRACT §4, §8)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from api.fields import CleanCharField, IdField, IdListField, choice_field
from publishing.models import Platform, Product, ProductStatus, ProductTemplate
from publishing.services import PRICE_MAX_CENTS, TITLE_MAX


class ListingTextField(CleanCharField):
    """Listing texts: trimmed, control characters removed, newlines and HTML kept (Printify renders it)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(fold_newlines=False, allow_markup=True, **kwargs)


class ProductFilterSerializer(serializers.Serializer):
    """Query parameters of `GET products`."""

    status = choice_field(ProductStatus.values, required=False)
    platform = choice_field(Platform.values, required=False)
    image = IdField(required=False)


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

    name = ListingTextField(max_length=200)
    title_template = ListingTextField(max_length=500, required=False)
    description_template = ListingTextField(max_length=5000, required=False, allow_blank=True)
    platform = choice_field(Platform.values, required=False)
    variant_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), max_length=500, required=False)
    tags = serializers.ListField(child=ListingTextField(max_length=100), max_length=50, required=False)
    price_cents = serializers.IntegerField(min_value=1, max_value=PRICE_MAX_CENTS, required=False)
    blueprint_id = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    print_provider_id = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    position = ListingTextField(max_length=32, required=False)
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

    template = IdField(required=False, allow_blank=True, allow_null=True)
    title = ListingTextField(max_length=TITLE_MAX, required=False)
    description = ListingTextField(max_length=20000, required=False, allow_blank=True)
    price_cents = serializers.IntegerField(min_value=1, max_value=PRICE_MAX_CENTS, required=False)


class BatchPublishInputSerializer(serializers.Serializer):
    """`POST batch/publish`: `image_ids` (1–500), optional `template` and `atomic`."""

    image_ids = IdListField()
    template = IdField(required=False, allow_blank=True, allow_null=True)
    atomic = serializers.BooleanField(default=False)
