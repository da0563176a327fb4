"""Input and output shapes of the publishing API (CONTRACT §4, §8)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.fields import (
    CleanCharField,
    IdField,
    IdListField,
    StrictBooleanField,
    StrictFloatField,
    StrictIntegerField,
    choice_field,
)
from core.errors import InvalidInputError
from publishing.models import (
    ANGLE_MAX,
    ANGLE_MIN,
    DESCRIPTION_MAX,
    DESCRIPTION_TEMPLATE_MAX,
    POSITION_MAX,
    PRICE_MAX_CENTS,
    SCALE_MAX,
    SCALE_MIN,
    TAG_MAX,
    TAGS_MAX,
    TEMPLATE_NAME_MAX,
    TITLE_MAX,
    TITLE_TEMPLATE_MAX,
    VARIANTS_MAX,
    Platform,
    Product,
    ProductStatus,
    ProductTemplate,
    ProductTransition,
)
from publishing.services import product_template_validate


class ListingTextField(CleanCharField):
    """Listing texts: trimmed, control characters removed, newlines kept, markup refused (they reach Printify's
    listings and listing.json as they are; `publishing.services` applies the same rule to every door)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(fold_newlines=False, allow_markup=False, **kwargs)


class ProductFilterSerializer(serializers.Serializer):
    """Query parameters of `GET products`."""

    status = choice_field(ProductStatus.values, required=False)
    platform = choice_field(Platform.values, required=False)
    image = IdField(required=False)


class ProductHistoryEntrySerializer(serializers.ModelSerializer):
    """One recorded status change of a product."""

    actor = serializers.CharField(source="actor_label")

    class Meta:
        model = ProductTransition
        fields = ["from_status", "to_status", "actor", "via", "note", "created_at"]


class ProductSerializer(serializers.ModelSerializer):
    """A product: where one design is (being) published, with its external ids as they are learnt."""

    image = serializers.CharField(source="image_id", read_only=True)
    template = serializers.CharField(source="template_id", read_only=True, allow_null=True)
    history = ProductHistoryEntrySerializer(many=True, read_only=True)

    class Meta:
        model = Product
        fields = [
            "id", "image", "status", "platform", "template", "title", "description", "price_cents", "tags",
            "variant_prices", "external_upload_id", "external_id", "external_url", "mockups", "error", "attempts",
            "history", "created_at", "updated_at", "published_at",
        ]
        read_only_fields = fields


class ProductTemplateSerializer(serializers.ModelSerializer):
    """A template. Fields here only read JSON types; the rules are `product_template_validate`'s.

    The admin form and the commands use the same function, so all of them refuse the same input with
    the same field errors. A partial update is checked as the template it would make.
    """

    name = ListingTextField(allow_blank=True, help_text=f"1–{TEMPLATE_NAME_MAX} characters.")
    title_template = ListingTextField(
        required=False, allow_blank=True,
        help_text=f"Up to {TITLE_TEMPLATE_MAX} characters; `{{prompt}}` and `{{style}}` are replaced.",
    )
    description_template = ListingTextField(
        required=False, allow_blank=True, help_text=f"Up to {DESCRIPTION_TEMPLATE_MAX} characters."
    )
    platform = choice_field(Platform.values, required=False)
    variant_ids = serializers.ListField(
        child=StrictIntegerField(), required=False,
        help_text=f"Up to {VARIANTS_MAX} Printify variant ids; at least one for Printify.",
    )
    tags = serializers.ListField(
        child=ListingTextField(allow_blank=True), required=False,
        help_text=f"Up to {TAGS_MAX} tags of 1–{TAG_MAX} characters.",
    )
    price_cents = StrictIntegerField(required=False, help_text=f"1–{PRICE_MAX_CENTS}.")
    variant_prices = serializers.DictField(
        child=StrictIntegerField(), required=False,
        help_text="Variant id → price in cents for variants that cost more (larger sizes); others cost price_cents.",
    )
    blueprint_id = StrictIntegerField(required=False, allow_null=True, help_text="Required for Printify.")
    print_provider_id = StrictIntegerField(required=False, allow_null=True, help_text="Required for Printify.")
    position = ListingTextField(required=False, allow_blank=True, help_text=f"1–{POSITION_MAX} characters.")
    x = StrictFloatField(required=False, help_text="0–1.")
    y = StrictFloatField(required=False, help_text="0–1.")
    scale = StrictFloatField(required=False, help_text=f"{SCALE_MIN}–{SCALE_MAX}.")
    angle = StrictIntegerField(required=False, help_text=f"Degrees, {ANGLE_MIN}–{ANGLE_MAX}.")
    # Declared so DRF adds no uniqueness check: marking a new default unmarks the old one (services).
    is_default = StrictBooleanField(required=False)

    class Meta:
        model = ProductTemplate
        fields = [
            "id", "name", "platform", "blueprint_id", "print_provider_id", "variant_ids", "price_cents",
            "variant_prices", "position",
            "x", "y", "scale", "angle", "title_template", "description_template", "tags", "is_default",
            "created_at", "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            return product_template_validate(attrs, instance=self.instance)
        except InvalidInputError as exc:
            raise serializers.ValidationError(exc.fields) from exc


# The most templates one publish request names (a product per template and image).
TEMPLATES_MAX = 50


class PublishInputSerializer(serializers.Serializer):
    """`POST images/{id}/publish`: an optional template and listing overrides.

    The overrides' limits are applied by `publishing.services.image_publish`, the one place that refuses them.
    """

    template = IdField(required=False, allow_blank=True, allow_null=True)
    templates = serializers.ListField(child=IdField(), required=False, max_length=TEMPLATES_MAX,
                                      help_text="Templates to publish with (a product each); default: the defaults.")
    title = ListingTextField(required=False, help_text=f"1–{TITLE_MAX} characters.")
    description = ListingTextField(required=False, allow_blank=True, help_text=f"Up to {DESCRIPTION_MAX} characters.")
    price_cents = StrictIntegerField(required=False, help_text=f"1–{PRICE_MAX_CENTS}.")


class PublishResultSerializer(ProductSerializer):
    """`POST images/{id}/publish`: the first product started (as before), and every product started."""

    products = serializers.SerializerMethodField()
    warnings = serializers.SerializerMethodField()

    class Meta(ProductSerializer.Meta):
        fields = [*ProductSerializer.Meta.fields, "products", "warnings"]
        read_only_fields = fields

    @extend_schema_field(ProductSerializer(many=True))
    def get_products(self, product: Product) -> list[dict[str, Any]]:
        return ProductSerializer(self.context["products"], many=True).data

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_warnings(self, product: Product) -> list[str]:
        """The design is too small for a template's print area at 300 DPI (it is published all the same)."""
        return list(self.context.get("warnings", []))


class BatchPublishInputSerializer(serializers.Serializer):
    """`POST batch/publish`: `image_ids` (1–500), optional `template` and `atomic`."""

    image_ids = IdListField()
    template = IdField(required=False, allow_blank=True, allow_null=True)
    templates = serializers.ListField(child=IdField(), required=False, max_length=TEMPLATES_MAX,
                                      help_text="Templates to publish with (a product each); default: the defaults.")
    atomic = StrictBooleanField(default=False)
